// Webhook subscriptions, pure: backoff, the delivery decision after each attempt, the fold of
// their events, the checks on recorded progress, the record's encoding and URL parsing.

#include <catch2/catch.hpp>

#include "domain/webhook.hpp"

using namespace pointex;
using namespace pointex::domain;

namespace {

WebhookSpec spec() {
  WebhookSpec s;
  s.url = "http://127.0.0.1:9000/hooks";
  s.secret = "0123456789abcdef";
  s.events = webhook_events::transfer;
  return s;
}

DeadLetter letter(std::uint64_t position, std::uint32_t attempts = 3) {
  return {position, attempts, 503, 1000 + position};
}

/// Given a subscription created at position 10 with these progress events applied.
WebhookTable given(const std::vector<WebhookProgress>& progress) {
  WebhookTable t;
  apply_webhook_event(t, 10, WebhookCreated{spec(), 77});
  std::uint64_t position = 11;
  for (const WebhookProgress& p : progress)
    apply_webhook_event(t, position++, WebhookProgressed{p, 0});
  return t;
}

}  // namespace

TEST_CASE("backoff doubles from the base up to the cap, without overflow", "[webhook]") {
  const RetryPolicy p{8, 500, 60'000};
  CHECK(backoff_ms(p, 1) == 500);
  CHECK(backoff_ms(p, 2) == 1000);
  CHECK(backoff_ms(p, 3) == 2000);
  CHECK(backoff_ms(p, 7) == 32'000);
  CHECK(backoff_ms(p, 8) == 60'000);
  CHECK(backoff_ms(p, 4'000'000'000U) == 60'000);
  const RetryPolicy huge{8, UINT64_MAX / 3, UINT64_MAX};
  CHECK(backoff_ms(huge, 2) == UINT64_MAX / 3 * 2);
  CHECK(backoff_ms(huge, 200) == UINT64_MAX);
  const RetryPolicy flat{8, 100, 100};
  CHECK(backoff_ms(flat, 5) == 100);
}

TEST_CASE(
    "after an attempt: 2xx delivered, else retry with backoff until attempts_max, then dead "
    "letter",
    "[webhook]") {
  const RetryPolicy p{3, 100, 1000};
  for (const int ok : {200, 201, 204, 299}) {
    INFO(ok);
    CHECK(decide_delivery(p, 1, ok).step == DeliveryStep::delivered);
    CHECK(decide_delivery(p, 3, ok).step == DeliveryStep::delivered);  // even the last attempt
  }
  for (const int bad : {0, 199, 300, 301, 400, 404, 429, 500, 503}) {
    INFO(bad);
    DeliveryDecision d = decide_delivery(p, 1, bad);
    CHECK(d.step == DeliveryStep::retry);
    CHECK(d.retry_in_ms == 100);
    d = decide_delivery(p, 2, bad);
    CHECK(d.step == DeliveryStep::retry);
    CHECK(d.retry_in_ms == 200);
    CHECK(decide_delivery(p, 3, bad).step == DeliveryStep::dead_letter);
  }
  CHECK(decide_delivery({1, 100, 1000}, 1, 500).step == DeliveryStep::dead_letter);
}

TEST_CASE("a subscription is the fold of its events: created at its position, progress, deleted",
          "[webhook]") {
  WebhookTable t = given({{10, 25, {letter(12), letter(20)}, {}}});
  REQUIRE(t.count(10) == 1);
  const WebhookRecord& r = t.at(10);
  CHECK(r.webhook.id == 10);
  CHECK(r.webhook.spec == spec());
  CHECK(r.webhook.timestamp == 77);
  CHECK(r.webhook.cursor == 25);
  CHECK(r.webhook.dead_letters == 2);
  CHECK(r.dead_letters.at(20) == letter(20));

  // A redelivery removes its dead letter; a failed redelivery updates it.
  apply_webhook_event(t, 30, WebhookProgressed{{10, 25, {letter(20, 4)}, {12}}, 0});
  CHECK(t.at(10).dead_letters.size() == 1);
  CHECK(t.at(10).dead_letters.at(20).attempts == 4);
  CHECK(t.at(10).webhook.dead_letters == 1);

  // Progress and deletion of unknown subscriptions change nothing; other events neither.
  apply_webhook_event(t, 31, WebhookProgressed{{99, 40, {}, {}}, 0});
  apply_webhook_event(t, 32, WebhookDeleted{99, 0});
  apply_webhook_event(t, 33, AccountClosed{5, 0});
  CHECK(t.size() == 1);
  CHECK(t.at(10).webhook.cursor == 25);
  apply_webhook_event(t, 34, WebhookDeleted{10, 0});
  CHECK(t.empty());
}

TEST_CASE("progress is refused when it goes back, invents dead letters or passes the bound",
          "[webhook]") {
  const WebhookTable t = given({{10, 25, {letter(12)}, {}}});
  const WebhookRecord& r = t.at(10);
  CHECK(check_progress(r, {10, 25, {}, {}}, 10) == WebhookResult::ok);
  CHECK(check_progress(r, {10, 40, {letter(26), letter(40)}, {12}}, 10) == WebhookResult::ok);
  CHECK(check_progress(r, {10, 24, {}, {}}, 10) == WebhookResult::invalid_cursor);
  // A dead letter before the old cursor that is not one already, or past the new cursor.
  CHECK(check_progress(r, {10, 40, {letter(20)}, {}}, 10) == WebhookResult::invalid);
  CHECK(check_progress(r, {10, 40, {letter(41)}, {}}, 10) == WebhookResult::invalid);
  CHECK(check_progress(r, {10, 25, {letter(12, 9)}, {}}, 10) == WebhookResult::ok);  // update
  CHECK(check_progress(r, {10, 25, {}, {13}}, 10) == WebhookResult::not_found);
  CHECK(check_progress(r, {10, 40, {letter(30)}, {}}, 1) == WebhookResult::too_many_dead_letters);
  CHECK(check_progress(r, {10, 40, {letter(30)}, {12}}, 1) == WebhookResult::ok);
  WebhookProgress big{10, 5000, {}, {}};
  for (std::uint64_t p = 26; p < 26 + webhook_progress_entries_max + 1; ++p) {
    big.dead_lettered.push_back(letter(p));
  }
  CHECK(check_progress(r, big, 100'000) == WebhookResult::invalid);
}

TEST_CASE("webhook records encode and decode strictly", "[webhook]") {
  const WebhookTable t = given({{10, 25, {letter(12), letter(UINT64_MAX)}, {}}});
  const std::string bytes = encode_webhook_record(t.at(10));
  WebhookRecord back;
  REQUIRE(decode_webhook_record(bytes, &back) == DecodeError::none);
  CHECK(back == t.at(10));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO(n);
    CHECK(decode_webhook_record(bytes.substr(0, n), &back) != DecodeError::none);
  }
  CHECK(decode_webhook_record(bytes + "x", &back) == DecodeError::trailing_bytes);
  std::string other = bytes;
  other[0] = 2;
  CHECK(decode_webhook_record(other, &back) == DecodeError::unknown_version);
}

TEST_CASE("webhook URLs: http only, host, port, path", "[webhook]") {
  std::string host;
  std::uint16_t port = 0;
  std::string target;
  REQUIRE(parse_http_url("http://127.0.0.1:9000/hooks?a=1", &host, &port, &target));
  CHECK(host == "127.0.0.1");
  CHECK(port == 9000);
  CHECK(target == "/hooks?a=1");
  REQUIRE(parse_http_url("http://example.com", &host, &port, &target));
  CHECK(host == "example.com");
  CHECK(port == 80);
  CHECK(target == "/");
  REQUIRE(parse_http_url("http://[::1]:8080/x", &host, &port, &target));
  CHECK(host == "::1");
  CHECK(port == 8080);
  for (const char* bad :
       {"https://example.com/", "ftp://x", "http://", "http:///path", "http://host:/x",
        "http://host:0/", "http://host:65536/", "http://host:12a/", "http://us er@host/",
        "http://host/a b", "http://host/#frag", "http://[::1/", "http://[zz]:1/", "example.com",
        "HTTP://example.com"}) {
    INFO(bad);
    CHECK_FALSE(parse_http_url(bad, &host, &port, &target));
  }
  CHECK_FALSE(
      parse_http_url("http://h/" + std::string(webhook_url_bytes_max, 'p'), &host, &port, &target));
}

TEST_CASE("a subscription spec is valid with a URL, a secret, known event types, sorted ledgers",
          "[webhook]") {
  CHECK(valid_spec(spec()));
  WebhookSpec s = spec();
  s.secret.clear();
  CHECK_FALSE(valid_spec(s));
  s = spec();
  s.events = 0;
  CHECK_FALSE(valid_spec(s));
  s.events = webhook_events::all + 1;
  CHECK_FALSE(valid_spec(s));
  s = spec();
  s.ledgers = {2, 1};
  CHECK_FALSE(valid_spec(s));
  s.ledgers = {1, 1};
  CHECK_FALSE(valid_spec(s));
  s.ledgers = {1, 2};
  CHECK(valid_spec(s));
  s.url = "https://x/";
  CHECK_FALSE(valid_spec(s));
}

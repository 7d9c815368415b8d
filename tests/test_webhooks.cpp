// End-to-end webhooks: the real pointexd delivering to a real local receiver (receiver.hpp):
// signed bodies, order, nothing missing, a receiver down and back, dead letters and their
// redelivery, deletion, and a SIGKILL in the middle of delivering.

#include <algorithm>
#include <set>

#include "daemon_support.hpp"
#include "receiver.hpp"
#include "server/hmac.hpp"

using namespace pointex;
using namespace pointex::test;
using nlohmann::json;

namespace {

constexpr const char* secret = "webhook-secret-0123456789";

/// Fast retries and frequent progress records, so that the tests run in seconds.
json fast_webhooks(json more = json::object()) {
  json hooks = {{"backoff_base_ms", 20},
                {"backoff_max_ms", 200},
                {"flush_interval_ms", 50},
                {"poll_interval_ms", 10},
                {"timeout_ms", 2000}};
  hooks.merge_patch(more);
  return {{"webhooks", hooks}};
}

/// Ledger 1: issuer 1000, members 2001, 2002. Ledger 2: issuer 3000, member 3001.
void setup(client::HttpClient& c) {
  REQUIRE(call(c, "POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall"})").status == 201);
  REQUIRE(call(c, "POST", "/v1/ledgers", R"({"id":2,"code":"AIR","name":"Air"})").status == 201);
  const Answer a = call(c, "POST", "/v1/accounts",
                        R"([{"id":1000,"ledger":1,"kind":"issuer"},
                            {"id":2001,"ledger":1,"kind":"member"},
                            {"id":2002,"ledger":1,"kind":"member"},
                            {"id":3000,"ledger":2,"kind":"issuer"},
                            {"id":3001,"ledger":2,"kind":"member"}])");
  REQUIRE(a.status == 200);
}

std::uint64_t subscribe(client::HttpClient& c, const std::string& url, const json& events,
                        const char* key = admin_key) {
  const Answer a =
      call(c, "POST", "/v1/subscriptions",
           json({{"url", url}, {"events", events}, {"secret", secret}}).dump(), auth(key));
  REQUIRE(a.status == 201);
  return a.body["id"];
}

/// `n` transfers over both ledgers (ids from `first_id`); their positions in order.
std::vector<std::uint64_t> transfers(client::HttpClient& c, std::uint64_t n,
                                     std::uint64_t first_id) {
  json batch = json::array();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t id = first_id + i;
    const bool air = i % 3 == 2;
    batch.push_back({{"id", id},
                     {"debit_account", air ? 3000 : 1000},
                     {"credit_account", air ? 3001 : (i % 2 == 0 ? 2001 : 2002)},
                     {"amount", 1 + i % 7},
                     {"ledger", air ? 2 : 1},
                     {"code", 1}});
  }
  const Answer a = call(c, "POST", "/v1/transfers", batch.dump());
  REQUIRE(a.status == 200);
  std::vector<std::uint64_t> positions;
  for (const json& r : a.body) {
    REQUIRE(r["result"] == "ok");
    positions.push_back(r["position"]);
  }
  std::sort(positions.begin(), positions.end());
  return positions;
}

std::uint64_t position_of(const Received& r) {
  return std::stoull(r.header("x-pointex-position"));
}

/// The positions delivered with a 2xx, in arrival order.
std::vector<std::uint64_t> delivered(const std::vector<Received>& got) {
  std::vector<std::uint64_t> out;
  for (const Received& r : got) {
    if (r.status >= 200 && r.status < 300) out.push_back(position_of(r));
  }
  return out;
}

/// Whether every position in `want` was delivered.
bool all_delivered(const std::vector<Received>& got, const std::vector<std::uint64_t>& want) {
  const std::vector<std::uint64_t> d = delivered(got);
  const std::set<std::uint64_t> have(d.begin(), d.end());
  return std::all_of(want.begin(), want.end(), [&](std::uint64_t p) { return have.count(p); });
}

/// Each position once, at its first delivery: what a receiver deduplicating on the
/// idempotency key keeps.
std::vector<std::uint64_t> first_deliveries(const std::vector<Received>& got) {
  std::vector<std::uint64_t> out;
  std::set<std::uint64_t> seen;
  for (std::uint64_t p : delivered(got)) {
    if (seen.insert(p).second) out.push_back(p);
  }
  return out;
}

/// The value of one metric line of a subscription (0 if absent).
std::uint64_t metric(client::HttpClient& c, const std::string& name, std::uint64_t id) {
  const std::string text = call(c, "GET", "/metrics", {}, {}).text;
  const std::string key = name + "{subscription=\"" + std::to_string(id) + "\"} ";
  const auto at = text.find(key);
  return at == std::string::npos ? 0 : std::stoull(text.substr(at + key.size()));
}

constexpr auto patience = std::chrono::seconds(20);

/// A receiver, and pointexd (fast webhook settings, merged with `more`) with two ledgers.
struct Hooked {
  explicit Hooked(const json& more = json::object())
      : d(dir.path(), fast_webhooks(more)), c("127.0.0.1", d.port()) {
    setup(c);
  }
  TempDir dir;
  Receiver rx;
  Daemon d;
  client::HttpClient c;
};

}  // namespace

TEST_CASE("webhooks: every event after the subscription is delivered once, signed, in log order",
          "[daemon][webhooks]") {
  Hooked h;
  auto& [dir, rx, d, c] = h;
  const std::uint64_t id = subscribe(c, rx.url(), {"transfer", "account_created"});
  const Answer acct = call(c, "POST", "/v1/accounts", R"({"id":2003,"ledger":1,"kind":"member"})");
  REQUIRE(acct.status == 200);
  std::vector<std::uint64_t> want = transfers(c, 40, 1);
  const std::vector<std::uint64_t> more = transfers(c, 20, 100);
  want.insert(want.end(), more.begin(), more.end());
  REQUIRE(rx.wait_until([&](const auto& got) { return got.size() >= want.size() + 1; }, patience));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // nothing more comes
  const std::vector<Received> got = rx.received();
  REQUIRE(got.size() == want.size() + 1);  // 2003's creation, then the transfers

  // The bodies are the events of GET /v1/events, byte for byte the same JSON.
  const Answer page = call(c, "GET", "/v1/events?after=" + std::to_string(id) + "&limit=1000", {});
  REQUIRE(page.status == 200);
  std::map<std::uint64_t, json> events;
  for (const json& e : page.body["events"]) events[e["position"]] = e;
  std::vector<std::uint64_t> positions;
  for (const Received& r : got) {
    INFO(r.body);
    CHECK(r.method == "POST");
    CHECK(r.target == "/hooks");
    CHECK(r.header("content-type") == "application/json");
    CHECK(r.header("x-signature") == client::hmac_sha256_hex(secret, r.body));
    CHECK(r.header("x-pointex-subscription") == std::to_string(id));
    const json body = json::parse(r.body);
    CHECK(body == events.at(body["position"]));
    CHECK(r.header("x-pointex-position") == std::to_string(body["position"].get<std::uint64_t>()));
    CHECK(r.header("idempotency-key") == std::to_string(id) + "-" + r.header("x-pointex-position"));
    CHECK(r.header("x-pointex-event") == body["type"]);
    CHECK(r.header("x-pointex-attempt") == "1");
    positions.push_back(body["position"]);
  }
  CHECK(json::parse(got[0].body)["account"]["id"] == 2003);  // older accounts: not delivered
  CHECK(std::is_sorted(positions.begin(), positions.end()));
  CHECK(std::adjacent_find(positions.begin(), positions.end()) == positions.end());
  CHECK(std::vector<std::uint64_t>(positions.begin() + 1, positions.end()) == want);
  CHECK(metric(c, "pointex_webhook_delivered_total", id) == want.size() + 1);
  CHECK(metric(c, "pointex_webhook_retries_total", id) == 0);
  // The cursor is recorded: GET shows it at (or past) the last delivery.
  REQUIRE(rx.wait_until(
      [&](const auto&) {
        return call(c, "GET", "/v1/subscriptions/" + std::to_string(id)).body["cursor"] >=
               want.back();
      },
      patience));
}

TEST_CASE("webhooks: an issuer's subscription gets its ledgers' events only",
          "[daemon][webhooks]") {
  Hooked h;
  auto& [dir, rx, d, c] = h;
  subscribe(c, rx.url(), {"transfer"}, issuer_key);
  const std::vector<std::uint64_t> all = transfers(c, 30, 1);  // a third on ledger 2
  REQUIRE(rx.wait_until([&](const auto& got) { return got.size() >= 20; }, patience));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::vector<Received> got = rx.received();
  CHECK(got.size() == 20);
  for (const Received& r : got) CHECK(json::parse(r.body)["transfer"]["ledger"] == 1);
}

TEST_CASE(
    "webhooks: while the receiver is down deliveries are retried, and back up it gets everything",
    "[daemon][webhooks]") {
  Hooked h(json{{"attempts_max", 1000}});
  auto& [dir, rx, d, c] = h;
  const std::uint64_t id = subscribe(c, rx.url(), {"transfer"});
  std::vector<std::uint64_t> want = transfers(c, 5, 1);
  REQUIRE(rx.wait_until([&](const auto& got) { return all_delivered(got, want); }, patience));

  rx.stop();  // down: connections refused
  const std::vector<std::uint64_t> later = transfers(c, 25, 100);
  want.insert(want.end(), later.begin(), later.end());
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (metric(c, "pointex_webhook_retries_total", id) < 3 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(metric(c, "pointex_webhook_retries_total", id) >= 3);
  // A scripted failure too: the receiver back, answering 503 twice before it takes them.
  rx.script({503, 503});
  rx.start();
  REQUIRE(rx.wait_until([&](const auto& got) { return all_delivered(got, want); }, patience));
  const std::vector<Received> got = rx.received();
  CHECK(got.at(5).status == 503);
  CHECK(got.at(6).status == 503);
  CHECK(position_of(got.at(5)) == later.front());  // the same event again, until it is taken
  CHECK(position_of(got.at(7)) == later.front());
  CHECK(got.at(7).header("x-pointex-attempt") != "1");
  CHECK(first_deliveries(got) == want);  // in order, nothing missing
  CHECK(metric(c, "pointex_webhook_dead_letters_total", id) == 0);
}

TEST_CASE(
    "webhooks: dead-lettered after attempts_max, kept across restarts, redelivered on request",
    "[daemon][webhooks]") {
  Hooked h(json{{"attempts_max", 3}});
  auto& [dir, rx, d, c] = h;
  const std::uint64_t id = subscribe(c, rx.url(), {"transfer"});
  const std::string path = "/v1/subscriptions/" + std::to_string(id);
  rx.script({500, 502, 404});  // the first event fails three times
  const std::vector<std::uint64_t> want = transfers(c, 3, 1);
  REQUIRE(rx.wait_until(
      [&](const auto& got) {
        return all_delivered(got, {want[1], want[2]});
      },
      patience));
  std::vector<Received> got = rx.received();
  REQUIRE(got.size() == 5);
  for (int i = 0; i < 3; ++i) CHECK(position_of(got[i]) == want[0]);
  CHECK(first_deliveries(got) == std::vector<std::uint64_t>{want[1], want[2]});
  CHECK(metric(c, "pointex_webhook_dead_letters_total", id) == 1);
  CHECK(metric(c, "pointex_webhook_retries_total", id) == 2);

  // Recorded in the log: a restart keeps it.
  REQUIRE(rx.wait_until([&](const auto&) { return call(c, "GET", path).body["dead_letters"] == 1; },
                        patience));
  REQUIRE(d.signal_and_wait(SIGTERM) == 0);
  d.start();
  client::HttpClient c2("127.0.0.1", d.port());
  Answer letters = call(c2, "GET", path + "/dead_letters");
  REQUIRE(letters.status == 200);
  REQUIRE(letters.body["dead_letters"].size() == 1);
  CHECK(letters.body["dead_letters"][0]["position"] == want[0]);
  CHECK(letters.body["dead_letters"][0]["attempts"] == 3);
  CHECK(letters.body["dead_letters"][0]["last_status"] == 404);
  CHECK(letters.body["next"].is_null());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(rx.received().size() == 5);  // nothing redelivered by the restart itself

  // A redelivery that fails keeps it (one more attempt counted); one that succeeds removes it.
  const std::string retry = path + "/dead_letters/" + std::to_string(want[0]) + "/retry";
  rx.script({503});
  REQUIRE(call(c2, "POST", retry).status == 202);
  REQUIRE(rx.wait_until([&](const auto& g) { return g.size() == 6; }, patience));
  REQUIRE(rx.wait_until(
      [&](const auto&) {
        const json l = call(c2, "GET", path + "/dead_letters").body["dead_letters"];
        return l.size() == 1 && l[0]["attempts"] == 4;
      },
      patience));
  CHECK(call(c2, "GET", path + "/dead_letters").body["dead_letters"][0]["last_status"] == 503);
  REQUIRE(call(c2, "POST", retry).status == 202);
  REQUIRE(rx.wait_until([&](const auto& g) { return g.size() == 7; }, patience));
  got = rx.received();
  CHECK(got[6].status == 200);
  CHECK(position_of(got[6]) == want[0]);
  CHECK(got[6].header("x-signature") == client::hmac_sha256_hex(secret, got[6].body));
  REQUIRE(rx.wait_until(
      [&](const auto&) {
        return call(c2, "GET", path + "/dead_letters").body["dead_letters"].empty();
      },
      patience));
  CHECK(call(c2, "GET", path).body["dead_letters"] == 0);
  CHECK(call(c2, "POST", retry).status == 404);  // nothing left to redeliver
  CHECK(metric(c2, "pointex_webhook_redelivered_total", id) == 1);
}

TEST_CASE("webhooks: a deleted subscription gets nothing more", "[daemon][webhooks]") {
  Hooked h;
  auto& [dir, rx, d, c] = h;
  const std::uint64_t id = subscribe(c, rx.url(), {"transfer"});
  const std::uint64_t other = subscribe(c, rx.url("/other"), {"transfer"});
  const std::vector<std::uint64_t> first = transfers(c, 3, 1);
  REQUIRE(rx.wait_until([&](const auto& got) { return got.size() == 6; }, patience));
  REQUIRE(call(c, "DELETE", "/v1/subscriptions/" + std::to_string(id)).status == 200);
  const std::vector<std::uint64_t> second = transfers(c, 5, 100);
  // The other subscription gets the new events: when it has them all, the deleted one would
  // have had time too.
  REQUIRE(rx.wait_until(
      [&](const auto& got) {
        return std::count_if(got.begin(), got.end(),
                             [](const Received& r) { return r.target == "/other"; }) == 8;
      },
      patience));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (const Received& r : rx.received()) {
    if (r.header("x-pointex-subscription") == std::to_string(id)) {
      CHECK(position_of(r) <= first.back());
    }
  }
  CHECK(call(c, "GET", "/v1/subscriptions").body["subscriptions"].size() == 1);
  CHECK(metric(c, "pointex_webhook_delivered_total", other) == 8);
}

TEST_CASE(
    "webhooks: SIGKILL of pointexd mid-delivery, restart: every event at least once, in order",
    "[daemon][webhooks]") {
  Hooked h(json{{"flush_interval_ms", 100}, {"flush_events_max", 64}});
  auto& [dir, rx, d, c] = h;
  rx.set_delay(std::chrono::milliseconds(2));  // slow enough to be killed in the middle
  // Every fifth answer a failure: progress is recorded while an event waits for its retry.
  std::vector<int> script;
  for (int i = 1; i <= 2000; ++i) script.push_back(i % 5 == 0 ? 503 : 200);
  rx.script(script);
  const std::uint64_t id = subscribe(c, rx.url(), {"transfer"});
  std::vector<std::uint64_t> want;
  for (std::uint64_t batch = 0; batch < 6; ++batch) {
    const std::vector<std::uint64_t> p = transfers(c, 100, 1 + batch * 1000);
    want.insert(want.end(), p.begin(), p.end());
  }
  REQUIRE(rx.wait_until([&](const auto& got) { return got.size() >= 150; }, patience));
  REQUIRE(d.signal_and_wait(SIGKILL) == 128 + SIGKILL);
  const std::size_t before = rx.received().size();
  INFO("delivered before the kill: " << before);
  CHECK(before < want.size());  // killed in the middle
  rx.set_delay(std::chrono::milliseconds(0));
  d.start();
  REQUIRE(rx.wait_until([&](const auto& got) { return all_delivered(got, want); }, patience));
  const std::vector<Received> got = rx.received();
  CHECK(first_deliveries(got) == want);  // none skipped, in log order
  // Resumed from the last recorded cursor: at most what came after it is delivered again.
  std::vector<std::uint64_t> all = delivered(got);
  const std::size_t again = all.size() - want.size();
  INFO("delivered twice: " << again);
  CHECK(again <= before);
  for (std::size_t i = before; i < all.size(); ++i) {
    if (i > before) CHECK(all[i] > all[i - 1]);  // after the restart, in order again
  }
  for (const Received& r : got) {
    CHECK(r.header("x-signature") == client::hmac_sha256_hex(secret, r.body));
    CHECK(r.header("x-pointex-subscription") == std::to_string(id));
  }
}

// End-to-end: the real pointexd binary on a free loopback port, over HTTP with a real client.

#include <atomic>
#include <mutex>
#include <set>

#include "daemon_support.hpp"

using namespace pointex;
using namespace pointex::test;
using nlohmann::json;

namespace {

/// Ledger 1 MALL: issuer 1000, members 2001, 2002. Ledger 2 AIR: issuer 3000, member 3001.
void setup_ledgers(client::HttpClient& c) {
  REQUIRE(call(c, "POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall points"})").status ==
          201);
  REQUIRE(call(c, "POST", "/v1/ledgers", R"({"id":2,"code":"AIR","name":"Air miles"})").status ==
          201);
  const Answer a = call(c, "POST", "/v1/accounts",
                        R"([{"id":1000,"ledger":1,"kind":"issuer","owner":"mall issuance"},
                            {"id":2001,"ledger":1,"kind":"member","owner":"alice"},
                            {"id":2002,"ledger":1,"kind":"member","owner":"bob"},
                            {"id":3000,"ledger":2,"kind":"issuer","owner":"air issuance"},
                            {"id":3001,"ledger":2,"kind":"member","owner":"carol"}])");
  REQUIRE(a.status == 200);
  for (const json& r : a.body) REQUIRE(r["result"] == "ok");
}

json transfer(std::uint64_t id, std::uint64_t debit, std::uint64_t credit, std::uint64_t amount,
              std::uint64_t ledger = 1, std::uint64_t code = 1) {
  return {{"id", id},         {"debit_account", debit}, {"credit_account", credit},
          {"amount", amount}, {"ledger", ledger},       {"code", code}};
}

}  // namespace

TEST_CASE("pointexd: ledgers, accounts, transfers, history, close over HTTP", "[daemon]") {
  TempDir dir;
  Daemon d(dir.path());
  client::HttpClient c("127.0.0.1", d.port());
  CHECK(call(c, "GET", "/healthz", {}, {}).body == json{{"status", "ok"}});
  setup_ledgers(c);

  // Ledgers: same values 200, other values 409, list and show, unknown 404.
  Answer a = call(c, "POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall points"})");
  CHECK(a.status == 200);
  CHECK(a.body["code"] == "MALL");
  CHECK(call(c, "POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"x"})").status == 409);
  CHECK(call(c, "POST", "/v1/ledgers", R"({"id":3,"code":"bad code"})").status == 400);
  CHECK(call(c, "GET", "/v1/ledgers").body["ledgers"].size() == 2);
  CHECK(call(c, "GET", "/v1/ledgers/2").body["code"] == "AIR");
  CHECK(call(c, "GET", "/v1/ledgers/9").status == 404);

  // Accounts: per-item results; exists; flags as given; unknown ledger.
  a = call(c, "POST", "/v1/accounts",
           R"([{"id":2001,"ledger":1,"kind":"member","owner":"alice"},
               {"id":2001,"ledger":1,"kind":"member","owner":"mallory"},
               {"id":0,"ledger":1,"kind":"member"},
               {"id":2003,"ledger":7,"kind":"member"},
               {"id":2004,"ledger":1,"kind":"member","flags":[]},
               {"id":2005,"ledger":1,"kind":"system",
                "flags":["debits_must_not_exceed_credits","credits_must_not_exceed_debits"]}])");
  REQUIRE(a.status == 200);
  std::vector<std::string> results;
  for (const json& r : a.body) results.push_back(r["result"]);
  CHECK(results == std::vector<std::string>{"exists", "exists_with_different_fields",
                                            "id_must_not_be_zero", "ledger_not_found", "ok",
                                            "flags_are_mutually_exclusive"});

  // Transfers: issue, spend more than held, a two-phase pending then a partial post.
  a = call(c, "POST", "/v1/transfers",
           json::array({transfer(1, 1000, 2001, 500), transfer(2, 2001, 2002, 900, 1, 2)}).dump());
  REQUIRE(a.status == 200);
  CHECK(a.body[0]["result"] == "ok");
  CHECK(a.body[1]["result"] == "exceeds_credits");
  const std::uint64_t p1 = a.body[0]["position"];
  json pending = transfer(3, 2001, 2002, 200, 1, 2);
  pending["flags"] = {"pending"};
  a = call(c, "POST", "/v1/transfers", pending.dump());
  CHECK(a.body[0]["result"] == "ok");
  a = call(c, "POST", "/v1/transfers",
           R"({"id":4,"debit_account":2001,"pending_id":3,"amount":150,"flags":["post_pending"]})");
  CHECK(a.body[0]["result"] == "ok");
  const std::uint64_t p4 = a.body[0]["position"];
  CHECK(p4 > p1);
  // A retry answers exists with the original position.
  a = call(c, "POST", "/v1/transfers", transfer(1, 1000, 2001, 500).dump());
  CHECK(a.body[0]["result"] == "exists");
  CHECK(a.body[0]["position"] == p1);

  // Read your writes with min_position.
  a = call(c, "GET", "/v1/accounts/2001?min_position=" + std::to_string(p4));
  REQUIRE(a.status == 200);
  CHECK(a.body["balance"] == 350);
  CHECK(a.body["available"] == 350);
  CHECK(a.body["debits_posted"] == 150);
  CHECK(a.body["credits_posted"] == 500);
  CHECK(a.body["flags"] == json{"debits_must_not_exceed_credits"});
  CHECK(a.body["expiring"] == json::array());
  CHECK(call(c, "GET", "/v1/accounts/1000?min_position=" + std::to_string(p4)).body["balance"] ==
        -500);
  CHECK(call(c, "GET", "/v1/accounts/4242").status == 404);
  a = call(c, "GET", "/v1/accounts/2001?min_position=99999999");
  CHECK(a.status == 503);
  CHECK(a.body["error"] == "not_caught_up");

  // History, newest first, paged with the cursor.
  a = call(c, "GET", "/v1/accounts/2001/transfers?limit=2&min_position=" + std::to_string(p4));
  REQUIRE(a.status == 200);
  REQUIRE(a.body["transfers"].size() == 2);
  CHECK(a.body["transfers"][0]["id"] == 4);
  CHECK(a.body["transfers"][1]["id"] == 3);
  CHECK(a.body["transfers"][1]["state"] == "posted");
  REQUIRE(a.body["next"].is_number());
  a = call(c, "GET", "/v1/accounts/2001/transfers?limit=2&after=" + a.body["next"].dump());
  REQUIRE(a.body["transfers"].size() == 1);
  CHECK(a.body["transfers"][0]["id"] == 1);
  CHECK(a.body["next"].is_null());
  a = call(c, "GET", "/v1/accounts/2001/transfers?code=2&min_position=" + std::to_string(p4));
  CHECK(a.body["transfers"].size() == 2);
  a = call(c, "GET", "/v1/accounts/2001/balances?limit=1");
  REQUIRE(a.body["balances"].size() == 1);
  CHECK(a.body["balances"][0]["transfer_id"] == 4);
  CHECK(a.body["balances"][0]["balance"] == 350);
  CHECK(call(c, "GET", "/v1/accounts/2001/transfers?limit=1001").status == 400);
  CHECK(call(c, "GET", "/v1/accounts/4242/transfers").status == 404);

  // A pending transfer voided: the reservation is released, the state is voided.
  pending = transfer(5, 2001, 2002, 30, 1, 2);
  pending["flags"] = {"pending"};
  REQUIRE(call(c, "POST", "/v1/transfers", pending.dump()).body[0]["result"] == "ok");
  a = call(c, "POST", "/v1/transfers",
           R"({"id":6,"debit_account":2001,"pending_id":5,"flags":["void_pending"]})");
  CHECK(a.body[0]["result"] == "ok");
  a = call(c, "GET",
           "/v1/transfers/5?debit_account=2001&min_position=" + a.body[0]["position"].dump());
  CHECK(a.body["state"] == "voided");
  // Transfers by id: unique, ambiguous (two debit accounts used id 1), by debit account.
  a = call(c, "GET", "/v1/transfers/4?min_position=" + std::to_string(p4));
  CHECK(a.status == 200);
  CHECK(a.body["amount"] == 150);
  a = call(c, "GET", "/v1/transfers/3");
  CHECK(a.body["state"] == "posted");
  a = call(c, "POST", "/v1/transfers", transfer(1, 3000, 3001, 10, 2).dump());
  REQUIRE(a.body[0]["result"] == "ok");
  const std::uint64_t p5 = a.body[0]["position"];
  a = call(c, "GET", "/v1/transfers/1?min_position=" + std::to_string(p5));
  CHECK(a.status == 409);
  CHECK(a.body["error"] == "ambiguous_id");
  CHECK(a.body["debit_accounts"].size() == 2);
  a = call(c, "GET", "/v1/transfers/1?debit_account=3000");
  CHECK(a.status == 200);
  CHECK(a.body["ledger"] == 2);
  CHECK(call(c, "GET", "/v1/transfers/2").status == 404);  // failed transfers are not stored

  // Close: not empty 409, empty 200 with flag closed (twice the same), unknown 404.
  CHECK(call(c, "POST", "/v1/accounts/2001/close").body["error"] == "account_not_empty");
  a = call(c, "POST", "/v1/accounts/2004/close");
  CHECK(a.status == 200);
  CHECK(a.body["flags"] == json{"closed"});
  // The close answers its position: a read at it sees the account closed.
  REQUIRE(a.body["position"].is_number_unsigned());
  const std::string closed_at = a.body["position"].dump();
  a = call(c, "GET", "/v1/accounts/2004?min_position=" + closed_at);
  CHECK(a.status == 200);
  CHECK(a.body["flags"] == json{"closed"});
  CHECK(call(c, "POST", "/v1/accounts/2004/close").status == 200);
  CHECK(call(c, "POST", "/v1/accounts/4242/close").status == 404);
  CHECK(call(c, "POST", "/v1/transfers", transfer(9, 1000, 2004, 1).dump()).body[0]["result"] ==
        "account_closed");

  // Metrics: Prometheus text with the counters this session moved.
  a = call(c, "GET", "/metrics", {}, {});
  CHECK(a.status == 200);
  CHECK(a.text.find("pointex_http_requests_total{endpoint=\"transfers_create\",status=\"200\"}") !=
        std::string::npos);
  CHECK(a.text.find("pointex_transfers_total{result=\"ok\"}") != std::string::npos);
  CHECK(a.text.find("pointex_transfers_total{result=\"exceeds_credits\"} 1") != std::string::npos);
  CHECK(a.text.find("pointex_projection_lag_events") != std::string::npos);
  CHECK(a.text.find("pointex_http_request_seconds_bucket") != std::string::npos);
  CHECK(a.text.find("\npointex_accounts_in_memory ") != std::string::npos);
  CHECK(a.text.find("\npointex_accounts_passivated 0\n") != std::string::npos);
  CHECK(a.text.find("\npointex_event_log_failed 0\n") != std::string::npos);
  CHECK(a.text.find("\npointex_read_models_failed 0\n") != std::string::npos);
  CHECK(a.text.find("\npointex_async_reads 0\n") != std::string::npos);
  CHECK(d.signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("pointexd: no key, bad key, issuer outside its ledgers: refused, nothing changed",
          "[daemon]") {
  TempDir dir;
  Daemon d(dir.path());
  client::HttpClient c("127.0.0.1", d.port());
  setup_ledgers(c);
  const client::Headers issuer = auth(issuer_key);

  Answer a = call(c, "GET", "/v1/ledgers", {}, {});
  CHECK(a.status == 401);
  CHECK(a.body["error"] == "unauthorized");
  CHECK(call(c, "GET", "/v1/ledgers", {}, auth("not-a-key-0123456789abcdef")).status == 401);
  CHECK(call(c, "GET", "/v1/ledgers", {}, {{"Authorization", "Basic eDp5"}}).status == 401);
  CHECK(call(c, "POST", "/v1/transfers", transfer(50, 1000, 2001, 5).dump(), {}).status == 401);
  CHECK(call(c, "POST", "/v1/ledgers", R"({"id":5,"code":"X"})", issuer).status == 403);
  CHECK(call(c, "GET", "/v1/ledgers/5").status == 404);

  // The issuer sees and moves its own ledger.
  a = call(c, "GET", "/v1/ledgers", {}, issuer);
  REQUIRE(a.body["ledgers"].size() == 1);
  CHECK(a.body["ledgers"][0]["id"] == 1);
  a = call(c, "POST", "/v1/transfers", transfer(60, 1000, 2001, 5).dump(), issuer);
  CHECK(a.body[0]["result"] == "ok");
  const std::uint64_t p = a.body[0]["position"];

  // A batch with one item outside ledger 1 (named by ledger, or by account only): 403 whole.
  a = call(c, "POST", "/v1/transfers",
           json::array({transfer(61, 1000, 2001, 5), transfer(62, 3000, 3001, 5, 2)}).dump(),
           issuer);
  CHECK(a.status == 403);
  CHECK(a.body["error"] == "forbidden");
  json by_account = {
      {"id", 63}, {"debit_account", 3000}, {"credit_account", 3001}, {"amount", 5}, {"code", 1}};
  CHECK(call(c, "POST", "/v1/transfers",
             json::array({transfer(64, 1000, 2001, 5), by_account}).dump(), issuer)
            .status == 403);
  CHECK(
      call(c, "POST", "/v1/accounts", R"({"id":3005,"ledger":2,"kind":"member"})", issuer).status ==
      403);
  CHECK(call(c, "GET", "/v1/accounts/3001?min_position=" + std::to_string(p), {}, issuer).status ==
        403);
  CHECK(call(c, "GET", "/v1/accounts/3001/balances", {}, issuer).status == 403);
  CHECK(call(c, "POST", "/v1/accounts/3001/close", {}, issuer).status == 403);
  CHECK(call(c, "GET", "/v1/ledgers/2", {}, issuer).status == 403);

  // Nothing of the refused requests happened.
  a = call(c, "GET", "/v1/accounts/2001?min_position=" + std::to_string(p));
  CHECK(a.body["credits_posted"] == 5);
  CHECK(call(c, "GET", "/v1/accounts/3001").body["credits_posted"] == 0);
  CHECK(call(c, "GET", "/v1/accounts/3005").status == 404);
  CHECK(call(c, "GET", "/v1/accounts/3001").body["flags"] ==
        json{"debits_must_not_exceed_credits"});
  for (int id : {61, 62, 63, 64})
    CHECK(call(c, "GET", "/v1/transfers/" + std::to_string(id)).status == 404);

  // Events: the issuer sees ledger 1's only.
  a = call(c, "POST", "/v1/transfers", transfer(70, 3000, 3001, 5, 2).dump());
  REQUIRE(a.status == 200);
  const std::string p70 = a.body[0]["position"].dump();
  a = call(c, "GET", "/v1/accounts/3001?min_position=" + p70);  // the read models have it all
  a = call(c, "GET", "/v1/events?limit=1000", {}, issuer);
  REQUIRE(a.status == 200);
  std::size_t transfers = 0;
  for (const json& e : a.body["events"]) {
    if (e["type"] == "transfer") {
      CHECK(e["transfer"]["ledger"] == 1);
      ++transfers;
    }
    if (e["type"] == "ledger_created") CHECK(e["ledger"]["id"] == 1);
    if (e["type"] == "account_created") CHECK(e["account"]["ledger"] == 1);
  }
  CHECK(transfers == 1);
  CHECK(a.body["next"] == json::parse(p70));  // it looked up to the tail
  // After the issuer's last event only other ledgers' follow: an empty page whose `next` is
  // the tail (read on from there), not `after`.
  const json last_mine = a.body["events"].back()["position"];
  REQUIRE(last_mine < json::parse(p70));
  a = call(c, "GET", "/v1/events?limit=1000&after=" + last_mine.dump(), {}, issuer);
  CHECK(a.body["events"].empty());
  CHECK(a.body["next"] == json::parse(p70));
  a = call(c, "GET", "/v1/transfers/70?min_position=" + p70, {}, issuer);
  CHECK(a.status == 403);
  CHECK(d.signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("pointexd: bad input gets the documented status, in the documented order", "[daemon]") {
  TempDir dir;
  Daemon d(dir.path());
  client::HttpClient c("127.0.0.1", d.port());
  setup_ledgers(c);

  Answer a = call(c, "PUT", "/v1/transfers");
  CHECK(a.status == 405);
  CHECK(a.headers["allow"] == "POST");
  CHECK(call(c, "DELETE", "/v1/accounts/1", {}, {}).headers["allow"] == "GET");
  CHECK(call(c, "POST", "/v1/purchases").status == 400);  // routed: no body
  CHECK(call(c, "DELETE", "/v1/purchases/1").headers["allow"] == "GET");
  CHECK(call(c, "DELETE", "/v1/ledgers/1/rules").headers["allow"] == "GET, PUT");
  CHECK(call(c, "DELETE", "/v1/orders/1").headers["allow"] == "GET");
  CHECK(call(c, "GET", "/v1/payments/acme/callback", {}, {}).headers["allow"] == "POST");
  CHECK(call(c, "DELETE", "/v1/rates/1/2").headers["allow"] == "GET, PUT");
  CHECK(call(c, "GET", "/v1/nothing", {}, {}).status == 404);  // 404 before 401
  // 401 before 415, 415 before 413, 413 before 400.
  const std::string big(70'000, '[');
  CHECK(call(c, "POST", "/v1/transfers", big, {{"Content-Type", "text/plain"}}).status == 401);
  client::Headers text = auth();
  text.emplace_back("Content-Type", "text/plain");
  CHECK(call(c, "POST", "/v1/transfers", big, text).status == 415);
  a = call(c, "POST", "/v1/transfers", big);
  CHECK(a.status == 413);
  CHECK(a.body["error"] == "body_too_large");
  client::Headers charset = auth();
  charset.emplace_back("Content-Type", "application/json; charset=utf-8");
  CHECK(call(c, "POST", "/v1/transfers", transfer(1, 1000, 2001, 1).dump(), charset).status == 200);

  a = call(c, "POST", "/v1/transfers", R"({"id":2,"debit_account":1000,"amout":5})");
  CHECK(a.status == 400);
  CHECK(a.body["error"] == "unknown_field");
  CHECK(a.body["field"] == "amout");
  for (const char* amount : {"\"5\"", "5.0", "-5", "18446744073709551616", "1e2", "null"}) {
    INFO(amount);
    a = call(
        c, "POST", "/v1/transfers",
        std::string(
            R"({"id":3,"debit_account":1000,"credit_account":2001,"ledger":1,"code":1,"amount":)") +
            amount + "}");
    CHECK(a.status == 400);
    CHECK(a.body["field"] == "amount");
  }
  CHECK(call(c, "POST", "/v1/transfers", R"({"id":3,"code":70000})").status == 400);
  CHECK(call(c, "POST", "/v1/transfers", "{not json").body["error"] == "invalid_json");
  CHECK(call(c, "POST", "/v1/transfers", "").status == 400);
  // A malformed batch applies nothing, even its good items.
  a = call(c, "POST", "/v1/transfers",
           json::array({transfer(4, 1000, 2001, 1), {{"id", "5"}}}).dump());
  CHECK(a.status == 400);
  CHECK(call(c, "GET", "/v1/transfers/4").status == 404);
  json batch = json::array();
  for (int i = 0; i < 8191; ++i) batch.push_back({{"id", i + 1}});
  CHECK(call(c, "POST", "/v1/transfers", batch.dump()).status == 413);  // over 64 KiB here
  CHECK(call(c, "GET", "/v1/accounts/2001?min_positon=1").body["error"] == "unknown_field");
  CHECK(call(c, "GET", "/v1/events?limit=0").status == 400);
  CHECK(call(c, "GET", "/v1/events?after=abc").status == 400);
  CHECK(call(c, "GET", "/v1/accounts/" + std::string(2100, '1')).status == 400);

  // Not HTTP at all, or a header that never ends: an error, then the connection closes.
  const std::string junk = c.raw("HELLO\r\n\r\n");
  CHECK(junk.rfind("HTTP/1.1 400", 0) == 0);
  const std::string huge =
      c.raw("GET /healthz HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n");
  CHECK(huge.rfind("HTTP/1.1 400", 0) == 0);
  // A chunked body over the limit is cut off at the limit: 413.
  std::stringstream chunk;
  chunk << std::hex << 70'000;
  const std::string chunked =
      c.raw(std::string("POST /v1/transfers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") +
            admin_key + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
            chunk.str() + "\r\n" + std::string(70'000, ' ') + "\r\n0\r\n\r\n");
  CHECK(chunked.rfind("HTTP/1.1 413", 0) == 0);
  // Expect: 100-continue gets its interim answer (curl waits for it on bodies over 1 KiB).
  const std::string body = transfer(10, 1000, 2001, 1).dump();
  const std::string expect = c.raw(
      std::string("POST /v1/transfers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n") +
      "Authorization: Bearer " + admin_key + "\r\nContent-Type: application/json\r\n" +
      "Expect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  CHECK(expect.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", 0) == 0);
  // Still serving.
  CHECK(call(c, "GET", "/healthz", {}, {}).status == 200);
  CHECK(d.signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("pointexd: events paging, and the SSE stream delivers live events", "[daemon]") {
  TempDir dir;
  Daemon d(dir.path());
  client::HttpClient c("127.0.0.1", d.port());
  setup_ledgers(c);
  // The feed serves what the read models include: wait for the 7 setup events.
  REQUIRE(call(c, "GET", "/v1/accounts/3001?min_position=7").status == 200);

  Answer a = call(c, "GET", "/v1/events?limit=3");
  REQUIRE(a.status == 200);
  REQUIRE(a.body["events"].size() == 3);
  CHECK(a.body["events"][0]["position"] == 1);
  CHECK(a.body["events"][0]["type"] == "ledger_created");
  CHECK(a.body["next"] == 3);
  a = call(c, "GET", "/v1/events?limit=1000&after=3");
  CHECK(a.body["events"].size() == 4);  // the other ledger and 5 accounts: 7 events in all
  CHECK(a.body["events"][0]["position"] == 4);
  const std::uint64_t tail = a.body["next"];
  CHECK(tail == 7);
  a = call(c, "GET", "/v1/events?after=" + std::to_string(tail));
  CHECK(a.body["events"].empty());
  CHECK(a.body["next"] == tail);

  // The stream from the tail gets the transfer made after it opened, with balances.
  std::string received;
  std::mutex mutex;
  std::atomic<bool> opened{false};
  std::atomic<int> status{0};
  std::thread reader([&] {
    client::HttpClient s("127.0.0.1", d.port());
    std::string error;
    status = s.stream(
        "/v1/events/stream?after=" + std::to_string(tail), auth(issuer_key),
        [&](std::string_view data) {
          opened = true;
          std::lock_guard<std::mutex> lock(mutex);
          received.append(data);
          return received.find("\"id\":2,") == std::string::npos;
        },
        std::chrono::seconds(10), &error);
  });
  while (!opened) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // header arrived
  REQUIRE(call(c, "POST", "/v1/transfers", transfer(1, 3000, 3001, 9, 2).dump()).status == 200);
  REQUIRE(call(c, "POST", "/v1/transfers", transfer(2, 1000, 2001, 7).dump()).status == 200);
  reader.join();
  CHECK(status == 200);
  CHECK(received.find("event: transfer") != std::string::npos);
  CHECK(received.find("\"balance\":7") != std::string::npos);
  CHECK(received.find("\"ledger\":2") == std::string::npos);  // the issuer key sees ledger 1 only
  CHECK(received.find("id: 9\n") != std::string::npos);       // SSE id = position

  // An open stream does not hold up SIGTERM.
  std::atomic<bool> ended{false};
  std::thread idle([&] {
    client::HttpClient s("127.0.0.1", d.port());
    std::string error;
    s.stream(
        "/v1/events/stream", auth(), [](std::string_view) { return true; },
        std::chrono::seconds(20), &error);
    ended = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(d.signal_and_wait(SIGTERM) == 0);
  idle.join();
  CHECK(ended);
}

TEST_CASE("pointexd: SIGTERM answers the requests in flight, then exits 0", "[daemon]") {
  TempDir dir;
  Daemon d(dir.path(), {{"engine", {{"read_wait_ms_max", 1500}}}});
  client::HttpClient c("127.0.0.1", d.port());
  setup_ledgers(c);
  // A read waiting for a position nobody will write is in flight for 1.5 s.
  std::atomic<int> status{0};
  std::string body;
  std::thread waiting([&] {
    client::HttpClient w("127.0.0.1", d.port());
    const client::HttpResult r =
        w.request("GET", "/v1/accounts/2001?min_position=999999", {}, auth());
    body = r.body;
    status = r.status;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(d.signal_and_wait(SIGTERM) == 0);
  waiting.join();
  CHECK(std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(800));
  CHECK(status == 503);  // answered (not cut off): the read timed out
  CHECK(body.find("not_caught_up") != std::string::npos);
  CHECK(d.log().find("stopped: engine closed") != std::string::npos);
}

TEST_CASE("pointexd: SIGKILL under load, then restart: every acknowledged transfer is there",
          "[daemon]") {
  TempDir dir;
  Daemon d(dir.path());
  {
    client::HttpClient c("127.0.0.1", d.port());
    setup_ledgers(c);
  }
  // Four clients issue points, one transfer or a batch of 20 at a time, and record what was
  // acknowledged; the daemon is killed in the middle.
  std::mutex mutex;
  std::vector<std::uint64_t> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int k = 0; k < 4; ++k) {
    clients.emplace_back([&, k] {
      client::HttpClient c("127.0.0.1", d.port(), std::chrono::seconds(5));
      std::uint64_t next = 1'000'000ULL * (k + 1);
      while (!stop) {
        json batch = json::array();
        const int n = k % 2 == 0 ? 1 : 20;
        for (int i = 0; i < n; ++i) batch.push_back(transfer(next++, 1000, 2001 + (k % 2), 1));
        const client::HttpResult r = c.request("POST", "/v1/transfers", batch.dump(), auth());
        if (r.status != 200) break;
        const json results = json::parse(r.body);
        std::lock_guard<std::mutex> lock(mutex);
        for (const json& item : results) {
          if (item["result"] == "ok") acked.push_back(item["id"]);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK(d.signal_and_wait(SIGKILL) == 128 + SIGKILL);
  stop = true;
  for (std::thread& t : clients) t.join();
  REQUIRE(acked.size() > 100);

  d.start();
  client::HttpClient c("127.0.0.1", d.port());
  // Wait for the read models to include everything recovered, then look each one up.
  std::uint64_t committed = 0;
  const Answer m = call(c, "GET", "/metrics", {}, {});
  const auto at = m.text.find("\npointex_committed_position ");
  REQUIRE(at != std::string::npos);
  committed = std::stoull(m.text.substr(at + 28));
  std::size_t missing = 0;
  for (std::size_t i = 0; i < acked.size(); ++i) {
    const std::uint64_t id = acked[i];
    const std::uint64_t debit = 1000;
    const Answer a =
        call(c, "GET",
             "/v1/transfers/" + std::to_string(id) + "?debit_account=" + std::to_string(debit) +
                 "&min_position=" + std::to_string(committed));
    if (a.status != 200) ++missing;
  }
  INFO(acked.size() << " acknowledged");
  CHECK(missing == 0);
  const Answer sum = call(c, "GET", "/v1/accounts/1000?min_position=" + std::to_string(committed));
  CHECK(sum.body["debits_posted"].get<std::uint64_t>() >= acked.size());
  CHECK(d.signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("pointexd: a bad config is a precise error at start, exit 1", "[daemon]") {
  TempDir dir;
  std::filesystem::create_directories(dir.path());
  const std::string config = dir.path() + "/bad.json";
  std::ofstream(config) << R"({"listen":"127.0.0.1:0","server":{"body_limit":5}})";
  const std::string command = std::string(POINTEXD) + " --config " + config + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[1024];
  std::size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(out.find("server.body_limit: unknown field") != std::string::npos);
}

namespace {

struct CliRun {
  int status = -1;
  std::string out;
};

/// Runs `pointex ARGS` against the daemon (stderr to stdout).
CliRun pointex_cli(const Daemon& d, const std::string& args, const char* key = admin_key) {
  const std::string command = "POINTEX_URL=http://127.0.0.1:" + std::to_string(d.port()) +
                              " POINTEX_KEY=" + key + " " + POINTEX_CLI + " " + args + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  CliRun r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

TEST_CASE("pointex CLI online: ledger, account, transfer, history, tail and exit codes",
          "[daemon][cli]") {
  TempDir dir;
  Daemon d(dir.path());
  CliRun r = pointex_cli(d, "ledger create --id 1 --code MALL --name 'Mall points'");
  CHECK(r.status == 0);
  CHECK(r.out.find("\"code\": \"MALL\"") != std::string::npos);
  CHECK(pointex_cli(d, "ledger list").out.find("Mall points") != std::string::npos);
  CHECK(pointex_cli(d, "ledger show 1").status == 0);
  CHECK(
      pointex_cli(d, "account create --id 1000 --ledger 1 --kind issuer --owner issuance").status ==
      0);
  CHECK(pointex_cli(d, "account create --id 2001 --ledger 1 --owner alice").status == 0);
  r = pointex_cli(d,
                  "transfer create --id 1 --debit 1000 --credit 2001 --amount 500 --ledger 1 "
                  "--code 1");
  CHECK(r.status == 0);
  CHECK(r.out.find("\"result\": \"ok\"") != std::string::npos);
  r = pointex_cli(d,
                  "transfer create --id 2 --debit 2001 --credit 1000 --amount 501 --ledger 1 "
                  "--code 2");
  CHECK(r.status == 1);  // a business failure
  CHECK(r.out.find("exceeds_credits") != std::string::npos);
  r = pointex_cli(d, "account show 2001 --min-position 4");
  CHECK(r.status == 0);
  CHECK(r.out.find("\"balance\": 500") != std::string::npos);
  r = pointex_cli(d, "account history 2001 --min-position 4 --limit 5");
  CHECK(r.status == 0);
  CHECK(r.out.find("\"transfers\"") != std::string::npos);
  CHECK(pointex_cli(d, "transfer show 1").out.find("\"state\": \"posted\"") != std::string::npos);
  r = pointex_cli(d, "transfer show 99");
  CHECK(r.status == 1);
  CHECK(r.out.find("HTTP 404: not_found") != std::string::npos);
  r = pointex_cli(d, "ledger list", "wrong-key-0123456789abc");
  CHECK(r.status == 1);
  CHECK(r.out.find("HTTP 401") != std::string::npos);
  r = pointex_cli(d, "tail --after 0 --count 4");
  CHECK(r.status == 0);
  CHECK(r.out.find("\"type\":\"ledger_created\"") != std::string::npos);
  CHECK(r.out.find("\"type\":\"transfer\"") != std::string::npos);
  CHECK(pointex_cli(d, "transfer create --id 1").status == 2);  // usage: --debit missing
  CHECK(d.signal_and_wait(SIGTERM) == 0);
  r = pointex_cli(d, "ledger list");  // nobody listens on that port any more
  CHECK(r.status == 2);
}

TEST_CASE("pointexd: a stalled SSE client holds up neither writes nor other streams", "[daemon]") {
  TempDir dir;
  Daemon d(dir.path(),
           {{"server", {{"stream_buffer_bytes_max", 1024}, {"body_bytes_max", 1 << 20}}},
            {"engine", {{"feed_buffer_events_max", 256}}}});
  client::HttpClient c("127.0.0.1", d.port());
  setup_ledgers(c);
  // This client reads the first bytes, then stops reading: its socket buffers fill up.
  std::atomic<bool> release{false};
  std::atomic<bool> stalled{false};
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag = true; }
  };
  std::thread stuck([&] {
    client::HttpClient s("127.0.0.1", d.port());
    std::string error;
    s.stream(
        "/v1/events/stream", auth(),
        [&](std::string_view) {
          stalled = true;
          while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(10));
          return false;
        },
        std::chrono::seconds(30), &error);
  });
  while (!stalled) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  struct Join {
    std::thread& t;
    ~Join() { t.join(); }
  } join{stuck};
  Release released{release};  // destroyed before `join`: a failed REQUIRE does not hang
  std::uint64_t last = 0;
  std::uint64_t id = 1;
  for (int b = 0; b < 20; ++b) {
    json batch = json::array();
    for (int i = 0; i < 1000; ++i) batch.push_back(transfer(id++, 1000, 2001, 1));
    const auto t0 = std::chrono::steady_clock::now();
    const Answer a = call(c, "POST", "/v1/transfers", batch.dump());
    REQUIRE(a.status == 200);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
    last = a.body[999]["position"];
  }
  // Another stream still gets the newest event.
  client::HttpClient s("127.0.0.1", d.port());
  std::string received;
  std::string error;
  s.stream(
      "/v1/events/stream?after=" + std::to_string(last - 1), auth(),
      [&](std::string_view data) {
        received.append(data);
        return received.find("id: " + std::to_string(last) + "\n") == std::string::npos;
      },
      std::chrono::seconds(10), &error);
  CHECK(received.find("id: " + std::to_string(last) + "\n") != std::string::npos);
  // The stalled stream is still open (the other one closed when its client left).
  bool one_stream = false;
  for (int i = 0; i < 100 && !one_stream; ++i) {
    one_stream = call(c, "GET", "/metrics", {}, {}).text.find("pointex_event_streams 1\n") !=
                 std::string::npos;
    if (!one_stream) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(one_stream);
  CHECK(d.signal_and_wait(SIGTERM) == 0);  // the stalled stream does not hold up the stop
}

TEST_CASE("pointexd: connections are bounded, a slow header times out", "[daemon]") {
  TempDir dir;
  Daemon d(dir.path(), {{"server", {{"connections_max", 2}, {"header_timeout_ms", 300}}}});
  client::HttpClient a("127.0.0.1", d.port());
  client::HttpClient b("127.0.0.1", d.port());
  REQUIRE(a.request("GET", "/healthz").status == 200);  // a and b keep their connections
  REQUIRE(b.request("GET", "/healthz").status == 200);
  // A third connection is closed at once, without an answer.
  client::HttpClient c("127.0.0.1", d.port(), std::chrono::seconds(5));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(c.raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").empty());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  const Answer m = call(a, "GET", "/metrics", {}, {});
  CHECK(m.text.find("pointex_http_connections_refused_total 1") != std::string::npos);
  // Idle kept-alive connections are closed after the header timeout, which frees room.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  client::HttpClient e("127.0.0.1", d.port(), std::chrono::seconds(5));
  CHECK(e.raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .rfind("HTTP/1.1 200", 0) == 0);
  // A header that never ends: the connection is closed after the timeout.
  const auto t1 = std::chrono::steady_clock::now();
  const std::string partial = e.raw("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  const auto waited = std::chrono::steady_clock::now() - t1;
  CHECK(partial.empty());
  CHECK(waited >= std::chrono::milliseconds(250));
  CHECK(waited < std::chrono::seconds(3));
  CHECK(d.signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("pointexd: a rate and an exchange over HTTP, kept across a restart", "[daemon]") {
  TempDir dir;
  {
    Daemon d(dir.path());
    client::HttpClient c("127.0.0.1", d.port());
    setup_ledgers(c);
    REQUIRE(call(c, "POST", "/v1/transfers", transfer(1, 1000, 2001, 500).dump()).status == 200);
    Answer a = call(c, "PUT", "/v1/rates/1/2",
                    R"({"numerator":2,"denominator":1,"fee_bps":0,
                        "from_exchange_account":1000,"to_exchange_account":3000})");
    REQUIRE(a.status == 200);
    CHECK(a.body["numerator"] == 2);
    a = call(c, "POST", "/v1/exchanges",
             R"({"id":5,"from_account":2001,"to_account":3001,"amount":100})");
    REQUIRE(a.status == 200);
    CHECK(a.body == json::parse(R"({"id":5,"result":"ok","debited":100,"credited":200,"fee":0})"));
    CHECK(call(c, "GET", "/v1/exchanges/5").body["step"] == "completed");
    CHECK(d.signal_and_wait(SIGTERM) == 0);
  }
  Daemon d(dir.path());
  client::HttpClient c("127.0.0.1", d.port());
  CHECK(call(c, "GET", "/v1/rates/1/2").body["to_exchange_account"] == 3000);
  const Answer x = call(c, "GET", "/v1/exchanges/5");
  CHECK(x.body["result"] == "ok");
  CHECK(x.body["credited"] == 200);
  CHECK(call(c, "GET", "/v1/accounts/2001").body["balance"] == 400);
  CHECK(call(c, "GET", "/v1/accounts/3001").body["balance"] == 200);
  // A retry after the restart answers the recorded outcome.
  CHECK(call(c, "POST", "/v1/exchanges",
             R"({"id":5,"from_account":2001,"to_account":3001,"amount":100})")
            .body["result"] == "exists");
}

// End-to-end check-backs: the real pointexd asking a real local endpoint (receiver.hpp) with
// signed POSTs: commit posts, rollback voids, the client's own post means no request, an
// endpoint down or answering 500 or garbage counts as unknown until the case parks, the
// operator lists and resolves it over HTTP; refusals with their fields; a restart of
// pointexd while a case waits.

#include <thread>

#include "daemon_support.hpp"
#include "receiver.hpp"
#include "server/hmac.hpp"

using namespace pointex;
using namespace pointex::test;
using nlohmann::json;

namespace {

constexpr const char* check_secret = "check-secret-0123456789";

json check_config() {
  return {{"check_back",
           {{"secret", check_secret},
            {"timeout_ms", 1000},
            {"threads", 2},
            {"checks_default", 3},
            {"backoff_base_ms", 100},
            {"backoff_max_ms", 200}}}};
}

/// Ledger 1: issuer 1000, member 2001 with 1000 points.
void setup(client::HttpClient& c) {
  REQUIRE(call(c, "POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall"})").status == 201);
  REQUIRE(call(c, "POST", "/v1/accounts",
               R"([{"id":1000,"ledger":1,"kind":"issuer"},{"id":2001,"ledger":1,"kind":"member"}])")
              .status == 200);
  REQUIRE(call(c, "POST", "/v1/transfers",
               R"({"id":1,"debit_account":1000,"credit_account":2001,"amount":1000,"ledger":1,
                   "code":1})")
              .status == 200);
}

std::string case_body(std::uint64_t id, const std::string& url, int checks_max = 0) {
  json j = {{"transfer",
             {{"id", id},
              {"debit_account", 2001},
              {"credit_account", 1000},
              {"amount", 100},
              {"ledger", 1},
              {"code", 7},
              {"flags", {"pending"}}}},
            {"url", url},
            {"check_after_s", 1}};
  if (checks_max != 0) j["checks_max"] = checks_max;
  return j.dump();
}

/// GET the case until its status is `status` and nothing is under way.
json until(client::HttpClient& c, std::uint64_t id, const std::string& status) {
  for (int i = 0; i < 800; ++i) {
    const Answer a = call(c, "GET", "/v1/checked-transfers/" + std::to_string(id));
    REQUIRE(a.status == 200);
    if (a.body["status"] == status && (a.body["settled"] == true || status == "parked")) {
      return a.body;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL("check-back " << id << " never reached " << status);
  return {};
}

json account(client::HttpClient& c) {
  return call(c, "GET", "/v1/accounts/2001?min_position=1").body;
}

}  // namespace

TEST_CASE("check-backs: a real endpoint answers commit, rollback, and the client's post needs none",
          "[daemon]") {
  TempDir dir;
  Receiver endpoint;
  // The body says what to answer: the transfer id's last digit.
  endpoint.set_default_status(200);
  endpoint.set_body([](const Received& r) {
    const json j = json::parse(r.body, nullptr, false);
    const std::uint64_t id = j.is_object() ? j.value("transfer_id", 0ULL) : 0;
    return json{{"outcome", id % 10 == 1 ? "commit" : "rollback"}}.dump();
  });
  Daemon d(dir.path(), check_config());
  client::HttpClient c("127.0.0.1", d.port());
  setup(c);

  Answer a = call(c, "POST", "/v1/checked-transfers", case_body(11, endpoint.url("/check")));
  REQUIRE(a.status == 200);
  CHECK(a.body["result"] == "ok");
  CHECK(a.body["status"] == "pending");
  CHECK(a.body["checks_max"] == 3);  // the configured default
  CHECK(call(c, "POST", "/v1/checked-transfers", case_body(11, endpoint.url("/check")))
            .body["result"] == "exists");
  CHECK(call(c, "POST", "/v1/checked-transfers", case_body(11, endpoint.url("/other"))).status ==
        409);
  REQUIRE(call(c, "POST", "/v1/checked-transfers", case_body(12, endpoint.url("/check"))).status ==
          200);
  REQUIRE(call(c, "POST", "/v1/checked-transfers", case_body(13, endpoint.url("/check"))).status ==
          200);
  // Its client posts 13 itself.
  REQUIRE(call(c, "POST", "/v1/transfers",
               R"({"id":50,"debit_account":2001,"pending_id":13,"flags":["post_pending"]})")
              .body[0]["result"] == "ok");

  json j = until(c, 11, "committed");
  CHECK(j["by_client"] == false);
  CHECK(j["checks"][0]["answer"] == "commit");
  j = until(c, 12, "rolled_back");
  CHECK(j["by_client"] == false);
  j = until(c, 13, "committed");
  CHECK(j["by_client"] == true);
  CHECK(j["checks"].empty());
  // Every check the endpoint got is signed, and names its transfer; none for 13.
  const std::vector<Received> got = endpoint.received();
  REQUIRE(got.size() == 2);
  for (const Received& r : got) {
    CHECK(client::hmac_sha256_verify(check_secret, r.body, r.header("x-signature")));
    const json body = json::parse(r.body);
    CHECK(body["attempt"] == 1);
    CHECK(body["debit_account"] == 2001);
    CHECK(body["transfer_id"] != 13);
  }
  CHECK(account(c)["balance"] == 800);
  CHECK(account(c)["debits_pending"] == 0);
}

TEST_CASE(
    "check-backs: an endpoint down, failing or talking nonsense parks the case, an operator "
    "resolves it, and a restart keeps what waits",
    "[daemon]") {
  TempDir dir;
  Receiver endpoint;
  endpoint.script({500});
  endpoint.set_default_status(200);
  endpoint.set_body([](const Received&) { return std::string("not json"); });
  Daemon d(dir.path(), check_config());
  client::HttpClient c("127.0.0.1", d.port());
  setup(c);

  // Refusals name their field; nothing is stored.
  const auto refused = [&](const std::string& body, int status, const char* code,
                           const char* field) {
    const Answer a = call(c, "POST", "/v1/checked-transfers", body);
    INFO(body << " -> " << a.body.dump());
    CHECK(a.status == status);
    CHECK(a.body["error"] == code);
    CHECK(a.body["field"] == field);
  };
  refused(R"({"url":"http://127.0.0.1:1/x"})", 400, "missing_field", "transfer");
  refused(R"({"transfer":{"id":1},"url":"http://127.0.0.1:1/x","x":1})", 400, "unknown_field", "x");
  refused(R"({"transfer":{"id":20,"debit_account":2001,"credit_account":1000,"amount":1,
               "ledger":1,"code":7,"flags":["pending"],"colour":1},"url":"http://127.0.0.1:1/x"})",
          400, "unknown_field", "transfer.colour");
  refused(R"({"transfer":{"id":20,"debit_account":2001,"credit_account":1000,"amount":1,
               "ledger":1,"code":7},"url":"http://127.0.0.1:1/x"})",
          400, "transfer_invalid", "transfer");
  refused(R"({"transfer":{"id":20,"debit_account":2001,"credit_account":1000,"amount":1,
               "ledger":1,"code":7,"flags":["pending"]},"url":"ftp://x"})",
          400, "url_invalid", "url");
  refused(R"({"transfer":{"id":20,"debit_account":2001,"credit_account":1000,"amount":1,
               "ledger":1,"code":7,"flags":["pending"]},"url":"http://a/x","check_after_s":0})",
          400, "check_after_invalid", "check_after_s");
  CHECK(call(c, "GET", "/v1/checked-transfers/20").status == 404);
  CHECK(call(c, "GET", "/v1/checked-transfers").status == 400);  // state=parked is required
  CHECK(call(c, "POST", "/v1/checked-transfers/20/resolve", R"({"note":"x"})", auth(issuer_key))
            .status == 403);

  // Case 21: a 500, then nonsense, then nonsense: three unknowns, parked (voided).
  REQUIRE(call(c, "POST", "/v1/checked-transfers", case_body(21, endpoint.url("/check"))).status ==
          200);
  json j = until(c, 21, "parked");
  REQUIRE(j["checks"].size() == 3);
  CHECK(j["checks"][0]["detail"] == "answered 500");
  CHECK(j["checks"][1]["answer"] == "unknown");
  CHECK(account(c)["debits_pending"] == 0);
  CHECK(account(c)["balance"] == 1000);
  Answer list = call(c, "GET", "/v1/checked-transfers?state=parked");
  REQUIRE(list.status == 200);
  REQUIRE(list.body["check_backs"].size() == 1);
  CHECK(list.body["check_backs"][0]["id"] == 21);

  // Case 22: the endpoint is down; pointexd restarts while it waits; the endpoint comes back
  // and commits.
  endpoint.stop();
  REQUIRE(call(c, "POST", "/v1/checked-transfers", case_body(22, "http://127.0.0.1:9/check", 100))
              .status == 200);
  REQUIRE(d.signal_and_wait(SIGKILL) == 128 + SIGKILL);
  d.start();
  client::HttpClient c2("127.0.0.1", d.port());
  // Still parked after the restart, and still listed.
  CHECK(call(c2, "GET", "/v1/checked-transfers?state=parked").body["check_backs"].size() == 1);
  for (int i = 0; i < 1000; ++i) {
    const json k = call(c2, "GET", "/v1/checked-transfers/22").body;
    if (k["checks"].size() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  j = call(c2, "GET", "/v1/checked-transfers/22").body;
  REQUIRE(j["checks"].size() >= 2);
  CHECK(j["status"] == "pending");
  CHECK(std::string(j["checks"][0]["detail"]).rfind("no answer", 0) == 0);
  CHECK(account(c2)["debits_pending"] == 100);

  // The operator resolves 21.
  Answer r = call(c2, "POST", "/v1/checked-transfers/21/resolve", R"({"note":"paid by hand"})");
  REQUIRE(r.status == 200);
  CHECK(r.body["status"] == "resolved");
  CHECK(r.body["note"] == "paid by hand");
  CHECK(call(c2, "POST", "/v1/checked-transfers/21/resolve", R"({"note":"again"})").status == 409);
  CHECK(call(c2, "POST", "/v1/checked-transfers/22/resolve", R"({"note":"no"})").status == 409);
  CHECK(call(c2, "GET", "/v1/checked-transfers?state=parked").body["check_backs"].empty());
  // 22's client voids it at last: the case ends rolled back by its client.
  REQUIRE(call(c2, "POST", "/v1/transfers",
               R"({"id":51,"debit_account":2001,"pending_id":22,"flags":["void_pending"]})")
              .body[0]["result"] == "ok");
  j = until(c2, 22, "rolled_back");
  CHECK(j["by_client"] == true);
  CHECK(account(c2)["debits_pending"] == 0);
}

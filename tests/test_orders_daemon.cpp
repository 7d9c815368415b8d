// End-to-end orders: the real pointexd creating payments at a real local provider
// (provider_server.hpp) and taking its signed callbacks: the happy path with balances, replays,
// signature refusals, unknown providers and payments, a provider down and back (retries, a
// failed creation), a late success after the deadline, and a SIGKILL while an order waits.

#include <thread>

#include "daemon_support.hpp"
#include "provider_server.hpp"

using namespace pointex;
using namespace pointex::test;
using nlohmann::json;

namespace {

constexpr const char* provider_secret = "provider-secret-0123456789";

json provider_config(const ProviderServer& provider, std::uint32_t threads = 4) {
  return {{"payment_providers",
           {{{"name", "acme"},
             {"type", "http"},
             {"secret", provider_secret},
             {"url", provider.url()},
             {"timeout_ms", 1000},
             {"attempts_max", 3},
             {"threads", threads}}}}};
}

/// Ledger 1: issuer 1000, shop 1500, member 2001 with 1000 points.
void setup(client::HttpClient& c) {
  REQUIRE(call(c, "POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall"})").status == 201);
  REQUIRE(call(c, "POST", "/v1/accounts",
               R"([{"id":1000,"ledger":1,"kind":"issuer"},{"id":1500,"ledger":1,"kind":"member"},
                   {"id":2001,"ledger":1,"kind":"member"}])")
              .status == 200);
  REQUIRE(call(c, "POST", "/v1/transfers",
               R"({"id":1,"debit_account":1000,"credit_account":2001,"amount":1000,"ledger":1,
                   "code":1})")
              .status == 200);
}

std::string order_body(std::uint64_t id, std::uint64_t timeout_s = 0) {
  json j = {{"id", id},
            {"member_account", 2001},
            {"merchant_account", 1500},
            {"points", 300},
            {"cash", {{"amount", 1250}, {"currency", "EUR"}}}};
  if (timeout_s != 0) j["timeout_s"] = timeout_s;
  return j.dump();
}

/// GET the order until its step is `completed` (a callback answers once the order is decided).
json completed(client::HttpClient& c, std::uint64_t id) {
  for (int i = 0; i < 500; ++i) {
    const Answer a = call(c, "GET", "/v1/orders/" + std::to_string(id));
    REQUIRE(a.status == 200);
    if (a.body["step"] == "completed") return a.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL("order " << id << " did not complete");
  return {};
}

json account(client::HttpClient& c, std::uint64_t id) {
  return call(c, "GET", "/v1/accounts/" + std::to_string(id) + "?min_position=1").body;
}

/// A provider, pointexd configured with it as `acme`, a client, and the accounts of setup().
struct Fixture {
  TempDir dir;
  ProviderServer provider{provider_secret};
  Daemon d{dir.path(), provider_config(provider)};
  client::HttpClient c{"127.0.0.1", d.port()};

  Fixture() { setup(c); }
};

}  // namespace

TEST_CASE("orders: a real provider creates the payment, its signed callback pays the order",
          "[daemon][orders]") {
  Fixture f;
  auto& [dir, provider, d, c] = f;
  Answer a = call(c, "POST", "/v1/orders", order_body(1));
  REQUIRE(a.status == 200);
  CHECK(a.body["status"] == "awaiting_payment");
  CHECK(a.body["payment"]["provider"] == "acme");
  const std::string payment_id = a.body["payment"]["payment_id"];
  CHECK(a.body["payment"]["reference"] == "https://pay.test/" + payment_id);
  // What the provider got: the payment, signed, with pointexd's own callback URL.
  const std::vector<json> payments = provider.payments();
  REQUIRE(payments.size() == 1);
  const json& p = payments[0];
  CHECK(p["payment_id"] == payment_id);
  CHECK(p["order_id"] == 1);
  CHECK(p["amount"] == 1250);
  CHECK(p["currency"] == "EUR");
  CHECK(p["callback_url"] ==
        "http://127.0.0.1:" + std::to_string(d.port()) + "/v1/payments/acme/callback");
  CHECK(provider.requests()[0].header("idempotency-key") == payment_id);
  CHECK(account(c, 2001)["available"] == 700);

  // Refused callbacks record nothing: no signature, another secret, a changed body.
  for (const auto signing : {ProviderServer::Signing::none, ProviderServer::Signing::wrong_secret,
                             ProviderServer::Signing::body_changed}) {
    const client::HttpResult r = provider.report(p, "succeeded", signing);
    CHECK(r.status == 401);
    CHECK(json::parse(r.body)["error"] == "bad_signature");
  }
  a = call(c, "GET", "/v1/orders/1");
  CHECK(a.body["status"] == "awaiting_payment");
  CHECK(a.body["steps"].size() == 3);
  // An unknown provider; an unknown payment (signed right): 404.
  json other = p;
  other["callback_url"] =
      "http://127.0.0.1:" + std::to_string(d.port()) + "/v1/payments/nobody/callback";
  CHECK(provider.report(other, "succeeded").status == 404);
  other = p;
  other["payment_id"] = "po-1-1";
  client::HttpResult r = provider.report(other, "succeeded");
  CHECK(r.status == 404);
  CHECK(json::parse(r.body)["error"] == "payment_not_found");

  // The provider reports the success: applied once, replays answer 200.
  r = provider.report(p, "succeeded");
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["result"] == "applied");
  const json done = completed(c, 1);
  CHECK(done["status"] == "completed");
  r = provider.report(p, "succeeded");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["result"] == "replayed");
  CHECK(account(c, 2001)["balance"] == 700);
  CHECK(account(c, 1500)["balance"] == 300);
  CHECK(account(c, 2001)["debits_pending"] == 0);
  // A cancel after the success is refused.
  a = call(c, "POST", "/v1/orders/1/cancel");
  CHECK(a.status == 409);
  CHECK(a.body["error"] == "already_completed");
  const std::string metrics = call(c, "GET", "/metrics", {}, {}).text;
  CHECK(metrics.find("pointex_payment_callbacks_total{result=\"bad_signature\"} 3") !=
        std::string::npos);
  CHECK(metrics.find("pointex_payment_results_unknown_total 1") != std::string::npos);
}

TEST_CASE("orders: a provider down is retried, then the order fails, and back it pays",
          "[daemon][orders]") {
  Fixture f;
  auto& [dir, provider, d, c] = f;
  // Answers 503 twice, then creates: the same payment, created on the third attempt.
  provider.script({503, 503});
  Answer a = call(c, "POST", "/v1/orders", order_body(1));
  REQUIRE(a.status == 200);
  CHECK(a.body["status"] == "awaiting_payment");
  REQUIRE(provider.requests().size() == 3);
  for (const Received& r : provider.requests()) {
    CHECK(json::parse(r.body)["payment_id"] == a.body["payment"]["payment_id"]);
  }
  // Down: three attempts get no answer; the order fails and its points come back.
  provider.down();
  a = call(c, "POST", "/v1/orders", order_body(2));
  REQUIRE(a.status == 200);
  CHECK(a.body["status"] == "failed");
  CHECK(a.body["reason"] == "payment_not_created");
  CHECK(a.body["payment_error"].get<std::string>().find("no answer") != std::string::npos);
  CHECK(account(c, 2001)["debits_pending"] == 300);  // order 1 only
  // A 4xx is a refusal, not retried.
  provider.up();
  provider.script({402});
  const std::size_t before = provider.requests().size();
  a = call(c, "POST", "/v1/orders", order_body(3));
  CHECK(a.body["status"] == "failed");
  CHECK(provider.requests().size() == before + 1);
  // Back: the next order is created and paid.
  a = call(c, "POST", "/v1/orders", order_body(4));
  CHECK(a.body["status"] == "awaiting_payment");
  const json p = provider.payments().back();
  CHECK(p["order_id"] == 4);
  CHECK(provider.report(p, "failed").status == 200);
  CHECK(completed(c, 4)["status"] == "failed");
  CHECK(completed(c, 4)["reason"] == "payment_failed");
  CHECK(account(c, 2001)["debits_pending"] == 300);
}

TEST_CASE("orders: a late success after the deadline, and a SIGKILL while an order waits",
          "[daemon][orders]") {
  Fixture f;
  auto& [dir, provider, d, c] = f;
  Answer a = call(c, "POST", "/v1/orders", order_body(1, 1));
  REQUIRE(a.body["status"] == "awaiting_payment");
  a = call(c, "POST", "/v1/orders", order_body(2));
  REQUIRE(a.body["status"] == "awaiting_payment");
  const std::vector<json> payments = provider.payments();
  REQUIRE(payments.size() == 2);
  CHECK(completed(c, 1)["status"] == "expired");
  // The provider took the cash after the deadline: 200, recorded on the order, points stay.
  client::HttpResult r = provider.report(payments[0], "succeeded");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["result"] == "late");
  a = call(c, "GET", "/v1/orders/1");
  CHECK(a.body["refund_due"] == true);
  CHECK(a.body["steps"].back()["step"] == "late_result");
  CHECK(account(c, 1500)["balance"] == 0);
  // Killed while order 2 waits: after the restart it still waits, and its callback pays it.
  CHECK(d.signal_and_wait(SIGKILL) == 128 + SIGKILL);
  d.start();
  client::HttpClient again("127.0.0.1", d.port());
  a = call(again, "GET", "/v1/orders/2");
  CHECK(a.body["status"] == "awaiting_payment");
  // The callback URL the provider holds names the old port: report to the new one.
  json p = payments[1];
  p["callback_url"] = "http://127.0.0.1:" + std::to_string(d.port()) + "/v1/payments/acme/callback";
  r = provider.report(p, "succeeded");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["result"] == "applied");
  CHECK(completed(again, 2)["status"] == "completed");
  CHECK(account(again, 1500)["balance"] == 300);
  CHECK(account(again, 2001)["balance"] == 700);
  CHECK(account(again, 2001)["debits_pending"] == 0);
}

TEST_CASE("orders: a slow provider gets creations in parallel, up to the provider's threads",
          "[daemon][orders]") {
  for (const std::uint32_t threads : {1U, 3U}) {
    DYNAMIC_SECTION(threads << " creation threads") {
      TempDir dir;
      ProviderServer provider{provider_secret};
      provider.set_delay(std::chrono::milliseconds(300));
      Daemon d{dir.path(), provider_config(provider, threads)};
      client::HttpClient c{"127.0.0.1", d.port()};
      setup(c);
      // Four orders at once, each from a client of its own; each creation takes 300 ms.
      std::vector<std::thread> clients;
      std::vector<int> statuses(4, 0);
      for (std::uint64_t id = 1; id <= 4; ++id) {
        clients.emplace_back([&, id] {
          client::HttpClient own{"127.0.0.1", d.port()};
          json body = json::parse(order_body(id));
          body["points"] = 100;
          statuses[id - 1] = own.request("POST", "/v1/orders", body.dump(),
                                         {{"Content-Type", "application/json"},
                                          {"Authorization", "Bearer " + std::string(admin_key)}})
                                 .status;
        });
      }
      for (std::thread& t : clients) t.join();
      for (const int s : statuses) CHECK(s == 200);
      REQUIRE(provider.payments().size() == 4);
      // One thread: one creation at a time; three: three held by the provider at once.
      CHECK(provider.max_in_flight() == threads);
    }
  }
}

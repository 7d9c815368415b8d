// The daemon's API without sockets: JSON mapping, config parsing, and Api::handle on a real
// engine (routing, auth, check order, issuer refusals that apply nothing).

#include <catch2/catch.hpp>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/api.hpp"
#include "server/config.hpp"
#include "server/hmac.hpp"
#include "server/json_map.hpp"
#include "server/payment_http.hpp"
#include "support.hpp"

using namespace pointex;
using namespace pointex::server;
using nlohmann::json;
using pointex::test::TempDir;

namespace {

constexpr const char* admin_key = "admin-key-0123456789abcdef";
constexpr const char* issuer_key = "issuer-key-ledger1-0123456789";

bool transfers_of(const std::string& body, std::vector<Transfer>* out, ApiError* err) {
  json j;
  return parse_body(body, &j, err) && map_transfers(j, 8190, out, err);
}

bool accounts_of(const std::string& body, std::vector<AccountSpec>* out, ApiError* err) {
  json j;
  return parse_body(body, &j, err) && map_accounts(j, 8190, out, err);
}

}  // namespace

TEST_CASE("transfer bodies: u64 numbers only, unknown fields and flags rejected", "[server]") {
  std::vector<Transfer> t;
  ApiError err;
  REQUIRE(
      transfers_of(R"({"id":1,"debit_account":2,"credit_account":3,"amount":18446744073709551615,
                          "ledger":1,"code":65535,"flags":["pending"],"timeout_s":5,"user_data":7})",
                   &t, &err));
  REQUIRE(t.size() == 1);
  CHECK(t[0].amount == 18446744073709551615ULL);
  CHECK(t[0].code == 65535);
  CHECK(t[0].flags == transfer_flags::pending);

  for (const char* bad : {R"({"id":"1"})", R"({"id":1.0})", R"({"id":-1})",
                          R"({"id":18446744073709551616})", R"({"amount":1e3})", R"({"id":true})",
                          R"({"code":65536})", R"({"timeout_s":4294967296})"}) {
    t.clear();
    err = {};
    INFO(bad);
    CHECK_FALSE(transfers_of(bad, &t, &err));
    CHECK(err.status == 400);
    CHECK(err.error == "invalid_field");
  }
  CHECK_FALSE(transfers_of(R"([{"id":1},{"id":2,"amout":5}])", &t, &err));
  CHECK(err.error == "unknown_field");
  CHECK(err.field == "amout");
  CHECK(err.message.find("[1]") != std::string::npos);
  CHECK(error_body(err) ==
        R"({"error":"unknown_field","field":"amout","message":"[1].amout: unknown field"})");

  CHECK_FALSE(transfers_of(R"({"id":1,"flags":["pendin"]})", &t, &err));
  CHECK(err.field == "flags");
  CHECK_FALSE(transfers_of(R"({"id":1,)", &t, &err));
  CHECK(err.error == "invalid_json");
  CHECK_FALSE(transfers_of(R"([[[[[[[[[[1]]]]]]]]]])", &t, &err));
  CHECK(err.error == "invalid_json");
  CHECK_FALSE(transfers_of("[1]", &t, &err));
  CHECK(err.error == "invalid_json");

  json big = json::array();
  for (int i = 0; i < 3; ++i) big.push_back({{"id", i + 1}});
  json parsed;
  t.clear();
  CHECK_FALSE(map_transfers(big, 2, &t, &err));
  CHECK(err.error == "batch_too_large");
}

TEST_CASE("transfer bodies read in one pass give what the JSON tree path gives, errors included",
          "[server]") {
  const std::vector<std::string> bodies = {
      R"({"id":1,"debit_account":2,"credit_account":3,"amount":4,"ledger":5,"code":6})",
      R"([{"id":1,"debit_account":2,"credit_account":3,"amount":4,"ledger":5,"code":65535,
           "flags":["pending"],"timeout_s":4294967295,"user_data":18446744073709551615},
          {"id":2,"pending_id":1,"flags":["post_pending","post_pending"]}])",
      R"({"id":1,"id":2,"flags":["pending"],"flags":["void_pending"]})",
      R"([])",
      R"({})",
      R"([{}])",
      R"([1,2,3])",
      R"(null)",
      R"("x")",
      R"([[{"id":1}]])",
      R"({"id":1,"extra":2})",
      R"({"id":"1"})",
      R"({"id":-1})",
      R"({"id":1.5})",
      R"({"id":18446744073709551616})",
      R"({"code":65536})",
      R"({"timeout_s":4294967296})",
      R"({"flags":"pending"})",
      R"({"flags":["pending",1]})",
      R"({"flags":["sometimes"]})",
      R"({"flags":[["pending"]]})",
      R"({"id":{"a":1}})",
      R"({"id":1} {"id":2})",
      R"({"id":1,)",
      R"([{"id":1},{"id":2},{"id":3}])",
      R"([[[[[[[[[[1]]]]]]]]]])",
      R"({"id":true})",
      R"({"id":null})",
      "",
  };
  for (const std::string& body : bodies) {
    INFO(body);
    std::vector<Transfer> fast;
    std::vector<Transfer> tree;
    ApiError fast_err;
    ApiError tree_err;
    const bool fast_ok = parse_transfers(body, 2, &fast, &fast_err);
    json j;
    const bool tree_ok = parse_body(body, &j, &tree_err) && map_transfers(j, 2, &tree, &tree_err);
    REQUIRE(fast_ok == tree_ok);
    CHECK(fast == tree);
    CHECK(fast_err.status == tree_err.status);
    CHECK(fast_err.error == tree_err.error);
    CHECK(fast_err.message == tree_err.message);
    CHECK(fast_err.field == tree_err.field);
  }
}

TEST_CASE("account bodies: flags default by kind when absent, as given when present", "[server]") {
  std::vector<AccountSpec> a;
  ApiError err;
  REQUIRE(accounts_of(R"([{"id":1,"ledger":1,"kind":"member"},
                         {"id":2,"ledger":1,"kind":"member","flags":[]},
                         {"id":3,"ledger":1,"kind":"issuer"},
                         {"id":4,"ledger":1,"kind":"system","flags":["credits_must_not_exceed_debits"]}])",
                      &a, &err));
  REQUIRE(a.size() == 4);
  CHECK(a[0].flags == account_flags::debits_must_not_exceed_credits);
  CHECK(a[1].flags == 0);
  CHECK(a[2].flags == 0);
  CHECK(a[2].kind == AccountKind::issuer);
  CHECK(a[3].flags == account_flags::credits_must_not_exceed_debits);
  CHECK_FALSE(accounts_of(R"({"id":1,"ledger":1})", &a, &err));
  CHECK(err.error == "missing_field");
  CHECK_FALSE(accounts_of(R"({"id":1,"ledger":1,"kind":"wallet"})", &a, &err));
  CHECK(err.field == "kind");
  CHECK_FALSE(accounts_of(
      R"({"id":1,"ledger":1,"kind":"member","owner":")" + std::string(257, 'x') + R"("})", &a,
      &err));
  CHECK(err.field == "owner");
}

TEST_CASE("queries: known names only, u64 values, ranges", "[server]") {
  std::map<std::string, std::string> q;
  ApiError err;
  REQUIRE(parse_query("limit=5&after=9", {"limit", "after"}, &q, &err));
  std::uint64_t limit = 0;
  REQUIRE(query_uint(q, "limit", 1, 1000, &limit, &err));
  CHECK(limit == 5);
  q.clear();
  CHECK_FALSE(parse_query("limt=5", {"limit"}, &q, &err));
  CHECK(err.error == "unknown_field");
  CHECK(err.field == "limt");
  q.clear();
  REQUIRE(parse_query("limit=1001", {"limit"}, &q, &err));
  CHECK_FALSE(query_uint(q, "limit", 1, 1000, &limit, &err));
  q.clear();
  REQUIRE(parse_query("limit=-1", {"limit"}, &q, &err));
  CHECK_FALSE(query_uint(q, "limit", 1, 1000, &limit, &err));
  std::uint64_t id = 0;
  CHECK(parse_id("18446744073709551615", &id));
  CHECK_FALSE(parse_id("18446744073709551616", &id));
  CHECK_FALSE(parse_id("12a", &id));
}

TEST_CASE("config: defaults, overrides, precise errors", "[server]") {
  Config c;
  std::string err;
  REQUIRE(parse_config(R"(// comment
    {"listen":"0.0.0.0:9000","durability":"async","server":{"body_bytes_max":1024},
     "engine":{"projection_lag_max":0,"live_actors_max":1000,"account_idle_s":60,
               "transfer_records_in_memory_max":0},
     "api_keys":[{"key":"0123456789abcdef","role":"issuer","ledgers":[3,1,3]}],
     "payment_providers":[{"name":"acme","type":"http","secret":"0123456789abcdef",
                           "url":"http://127.0.0.1:9/pay"}]})",
                       &c, &err));
  CHECK(c.listen == "0.0.0.0:9000");
  CHECK(c.engine.durability == Durability::async);
  CHECK(c.engine.data_dir == "./data");
  CHECK(c.server.body_bytes_max == 1024);
  CHECK(c.engine.projection_lag_max == 0);
  CHECK(c.engine.live_actors_max == 1000);
  CHECK(c.engine.account_idle_s == 60);
  CHECK(c.engine.accounts_in_memory_max == EngineOptions{}.accounts_in_memory_max);
  CHECK(c.engine.transfer_records_in_memory_max == 0);
  CHECK(EngineOptions{}.transfer_records_in_memory_max == 4'000'000);
  CHECK(c.api_keys.at(0).ledgers == std::vector<LedgerId>{1, 3});
  CHECK(c.engine.read_threads == EngineOptions{}.read_threads);

  // The engine's reader threads and read queue, and their old server-side names.
  Config r;
  REQUIRE(parse_config(R"({"engine":{"read_threads":3,"async_reads_max":100}})", &r, &err));
  CHECK(r.engine.read_threads == 3);
  CHECK(r.engine.async_reads_max == 100);
  Config old;
  REQUIRE(parse_config(R"({"server":{"worker_threads":5,"worker_queue_max":7}})", &old, &err));
  CHECK(old.engine.read_threads == 5);
  CHECK(old.engine.async_reads_max == 7);

  struct Bad {
    const char* text;
    const char* error;
  };
  for (const Bad& b :
       {Bad{R"({"shards":4})", "shards: unknown field"},
        Bad{R"({"server":{"body_bytes":1}})", "server.body_bytes: unknown field"},
        Bad{R"({"threads":"2"})", "threads: expected an unsigned integer"},
        Bad{R"({"engine":{"live_actors_max":0}})", "engine.live_actors_max: must be between 1"},
        Bad{R"({"engine":{"transfer_records_in_memory_max":-1}})",
            "engine.transfer_records_in_memory_max: expected an unsigned integer"},
        Bad{R"({"durability":"fast"})", "durability: must be sync or async"},
        Bad{R"({"listen":"8420"})", "listen: expected host:port"},
        Bad{R"({"api_keys":[{"key":"0123456789abcdef","role":"issuer"}]})",
            "api_keys[0].ledgers: an issuer key needs at least one ledger"},
        Bad{R"({"api_keys":[{"key":"short","role":"admin"}]})",
            "api_keys[0].key: must be at least 16 characters"},
        Bad{R"({"payment_providers":[{"name":"x"}]})", "payment_providers[0].type: required"},
        Bad{R"({"payment_providers":[{"name":"x","type":"http","url":"http://h/p"}]})",
            "payment_providers[0].secret: required"},
        Bad{"{", "not valid JSON"}}) {
    Config d;
    INFO(b.text);
    CHECK_FALSE(parse_config(b.text, &d, &err));
    CHECK(err.rfind(b.error, 0) == 0);
  }
}

namespace {

/// An Api on a real engine, called without sockets.
struct ApiFixture {
  explicit ApiFixture(std::uint32_t requests_max = 4096, std::uint32_t transfers_max = 1U << 20,
                      std::uint32_t read_wait_ms = 300,
                      const std::function<void(Config&)>& adjust = {}) {
    Config c;
    c.server.inflight_requests_max = requests_max;
    c.engine.inflight_transfers_max = transfers_max;
    c.engine.batch_items_max = std::min<std::uint32_t>(transfers_max, 8190);
    c.engine.data_dir = dir.path();
    c.engine.threads = 2;
    c.server.body_bytes_max = 1024;
    c.engine.read_threads = 2;
    c.engine.read_wait_ms_max = read_wait_ms;
    c.api_keys = {{admin_key, Role::admin, {}}, {issuer_key, Role::issuer, {1}}};
    if (adjust) adjust(c);
    REQUIRE(Engine::open(c.engine, &engine).is_ok());
    options = c.engine;
    api = std::make_unique<Api>(c, &metrics);
  }
  ~ApiFixture() { api.reset(); }

  /// Closes the engine and opens it again on the same data dir (nothing in memory then).
  void reopen() {
    api->set_engine(nullptr);
    engine.reset();
    REQUIRE(Engine::open(options, &engine).is_ok());
    api->set_engine(engine.get());
  }

  void call_async(const std::string& method, const std::string& target, std::promise<Response>* p,
                  const char* key = admin_key) {
    Request r;
    r.method = method;
    r.target = target;
    r.authorization = std::string("Bearer ") + key;
    api->handle(std::move(r), [p](Response res) { p->set_value(std::move(res)); });
  }

  Response call(const std::string& method, const std::string& target, const std::string& body = {},
                const char* key = admin_key, const char* type = "application/json") {
    Request r;
    r.method = method;
    r.target = target;
    if (key != nullptr) r.authorization = std::string("Bearer ") + key;
    if (!body.empty() && type != nullptr) r.content_type = type;
    r.content_length = body.size();
    r.body = body;
    std::promise<Response> p;
    auto f = p.get_future();
    api->handle(std::move(r), [&p](Response res) { p.set_value(std::move(res)); });
    return f.get();
  }

  TempDir dir;
  EngineOptions options;
  std::unique_ptr<Engine> engine;
  Metrics metrics;
  std::unique_ptr<Api> api;
};

}  // namespace

TEST_CASE("Api: ready only with an engine, and the check order 404/405, 401/403, 415, 413",
          "[server]") {
  ApiFixture f;
  CHECK(f.call("GET", "/healthz", {}, nullptr).status == 503);
  CHECK(f.call("GET", "/v1/ledgers").status == 503);
  f.api->set_engine(f.engine.get());
  CHECK(f.call("GET", "/healthz", {}, nullptr).body == R"({"status":"ok"})");

  CHECK(f.call("GET", "/v1/nothing", {}, nullptr).status == 404);
  CHECK(f.call("GET", "/v1/accounts/abc").status == 404);
  const Response m = f.call("DELETE", "/v1/ledgers", {}, nullptr);
  CHECK(m.status == 405);
  CHECK(m.allow == "GET, POST");
  CHECK(f.call("POST", "/v1/transfers", "{}", nullptr).status == 401);
  CHECK(f.call("POST", "/v1/transfers", "{}", "wrong-key-0123456789abcdef").status == 401);
  CHECK(f.call("POST", "/v1/ledgers", "{}", issuer_key, "text/plain").status == 403);
  CHECK(f.call("POST", "/v1/transfers", "{}", admin_key, "text/plain").status == 415);
  CHECK(f.call("POST", "/v1/transfers", std::string(2000, ' '), admin_key, "text/plain").status ==
        415);
  CHECK(f.call("POST", "/v1/transfers", std::string(2000, ' ')).status == 413);
  CHECK(f.call("POST", "/v1/transfers", R"({"id":1})", admin_key, "Application/JSON; charset=utf-8")
            .status == 200);
  CHECK(f.call("GET", "/v1/events?limit=1&x=" + std::string(2100, 'a')).status == 400);
  Request stream;
  stream.method = "GET";
  stream.target = "/v1/events/stream";
  stream.authorization = std::string("Bearer ") + admin_key;
  stream.last_event_id = "42";
  std::promise<Response> p;
  f.api->handle(stream, [&p](Response res) { p.set_value(std::move(res)); });
  const Response accepted = p.get_future().get();
  CHECK(accepted.stream);
  CHECK(accepted.stream_after == 42);
}

namespace {

/// Ledgers 1 (MALL: issuer 10, member 11) and 2 (AIR: issuer 20, member 21).
void two_ledgers(ApiFixture& f) {
  REQUIRE(f.call("POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall"})").status == 201);
  REQUIRE(f.call("POST", "/v1/ledgers", R"({"id":2,"code":"AIR","name":"Air"})").status == 201);
  REQUIRE(f.call("POST", "/v1/accounts",
                 R"([{"id":10,"ledger":1,"kind":"issuer"},{"id":11,"ledger":1,"kind":"member"},
                     {"id":20,"ledger":2,"kind":"issuer"},{"id":21,"ledger":2,"kind":"member"}])")
              .status == 200);
}

std::string transfer_body(std::uint64_t id, AccountId debit, AccountId credit, LedgerId ledger) {
  return json({{"id", id},
               {"debit_account", debit},
               {"credit_account", credit},
               {"amount", 5},
               {"ledger", ledger},
               {"code", 1}})
      .dump();
}

}  // namespace

TEST_CASE("Api: an issuer key outside its ledgers is refused whole and changes nothing",
          "[server]") {
  ApiFixture f;
  f.api->set_engine(f.engine.get());
  two_ledgers(f);
  CHECK(f.call("POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall"})").status == 200);
  CHECK(f.call("POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Other"})").status == 409);

  // Accounts: one item on ledger 2 refuses the whole batch.
  Response r = f.call(
      "POST", "/v1/accounts",
      R"([{"id":12,"ledger":1,"kind":"member"},{"id":22,"ledger":2,"kind":"member"}])", issuer_key);
  CHECK(r.status == 403);
  std::vector<std::optional<Account>> found;
  REQUIRE(f.engine->lookup_accounts({12, 22}, &found).is_ok());
  CHECK_FALSE(found[0]);
  CHECK_FALSE(found[1]);

  // Transfers: an account of ledger 2 (even without a ledger field) refuses the whole batch.
  r = f.call("POST", "/v1/transfers",
             R"([{"id":1,"debit_account":10,"credit_account":11,"amount":5,"ledger":1,"code":1},
                 {"id":2,"debit_account":20,"credit_account":21,"amount":5,"code":1}])",
             issuer_key);
  CHECK(r.status == 403);
  REQUIRE(f.engine->lookup_accounts({11, 21}, &found).is_ok());
  CHECK(found[0]->credits_posted == 0);
  CHECK(found[1]->credits_posted == 0);

  r = f.call("POST", "/v1/transfers",
             R"({"id":1,"debit_account":10,"credit_account":11,"amount":5,"ledger":1,"code":1})",
             issuer_key);
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)[0]["result"] == "ok");
  const std::string position = json::parse(r.body)[0]["position"].dump();
  CHECK(json::parse(f.call("GET", "/v1/ledgers", {}, issuer_key).body)["ledgers"].size() == 1);
  CHECK(f.call("GET", "/v1/ledgers/2", {}, issuer_key).status == 403);
  CHECK(f.call("GET", "/v1/accounts/21?min_position=" + position, {}, issuer_key).status == 403);
  CHECK(f.call("POST", "/v1/accounts/21/close", {}, issuer_key).status == 403);
  CHECK(f.call("GET", "/v1/accounts/21/transfers", {}, issuer_key).status == 403);
  CHECK(f.call("GET", "/v1/accounts/11?min_position=1000000", {}, issuer_key).status == 503);
}

TEST_CASE("Api: back-pressure answers 429 and applies nothing", "[server]") {
  SECTION("requests in flight over server.inflight_requests_max") {
    ApiFixture f(1);
    f.api->set_engine(f.engine.get());
    REQUIRE(f.call("POST", "/v1/ledgers", R"({"id":1,"code":"MALL"})").status == 201);
    std::promise<Response> waiting;
    f.call_async("GET", "/v1/ledgers/1?min_position=999999", &waiting);  // not a read that waits
    std::promise<Response> slow;
    f.call_async("GET", "/v1/accounts/1?min_position=999999", &slow);  // waits 300 ms
    const Response r = f.call("POST", "/v1/accounts", R"({"id":5,"ledger":1,"kind":"member"})");
    CHECK(r.status == 429);
    CHECK(r.body.find("overloaded") != std::string::npos);
    CHECK(slow.get_future().get().status == 503);
    std::vector<std::optional<Account>> found;
    REQUIRE(f.engine->lookup_accounts({5}, &found).is_ok());
    CHECK_FALSE(found[0]);
  }
  SECTION("the engine's inflight_transfers_max") {
    // Room for one batch of 2: concurrent batches beyond it are refused whole.
    ApiFixture f(4096, 2);
    f.api->set_engine(f.engine.get());
    REQUIRE(f.call("POST", "/v1/ledgers", R"({"id":1,"code":"MALL"})").status == 201);
    REQUIRE(f.call("POST", "/v1/accounts", R"({"id":10,"ledger":1,"kind":"issuer"})").status ==
            200);
    REQUIRE(f.call("POST", "/v1/accounts", R"({"id":11,"ledger":1,"kind":"member"})").status ==
            200);
    constexpr int requests = 32;
    std::vector<std::promise<Response>> answers(requests);
    for (int i = 0; i < requests; ++i) {
      Request r;
      r.method = "POST";
      r.target = "/v1/transfers";
      r.authorization = std::string("Bearer ") + admin_key;
      r.content_type = "application/json";
      r.body = json::array({{{"id", 2 * i + 1},
                             {"debit_account", 10},
                             {"credit_account", 11},
                             {"amount", 1},
                             {"ledger", 1},
                             {"code", 1}},
                            {{"id", 2 * i + 2},
                             {"debit_account", 10},
                             {"credit_account", 11},
                             {"amount", 1},
                             {"ledger", 1},
                             {"code", 1}}})
                   .dump();
      f.api->handle(std::move(r), [&answers, i](Response res) { answers[i].set_value(res); });
    }
    std::uint64_t applied = 0;
    int refused = 0;
    for (auto& a : answers) {
      const Response r = a.get_future().get();
      if (r.status == 429) {
        ++refused;
        CHECK(r.body.find("overloaded") != std::string::npos);
      } else {
        REQUIRE(r.status == 200);
        for (const json& item : json::parse(r.body)) applied += item["result"] == "ok";
      }
    }
    CHECK(refused > 0);
    std::vector<std::optional<Account>> found;
    REQUIRE(f.engine->lookup_accounts({11}, &found).is_ok());
    CHECK(found[0]->credits_posted == applied);
  }
}

TEST_CASE("Api: reads waiting for min_position hold no thread and are answered on arrival",
          "[server]") {
  ApiFixture f(4096, 1U << 20, 60'000);  // only the position's arrival answers in time
  f.api->set_engine(f.engine.get());
  two_ledgers(f);
  const std::uint64_t next = f.engine->stats().committed_position + 1;
  // Many more waiting reads than the engine's 2 reader threads.
  constexpr int reads = 40;
  std::vector<std::promise<Response>> answers(reads);
  std::vector<std::future<Response>> futures;
  for (auto& a : answers) futures.push_back(a.get_future());
  for (int i = 0; i < reads; ++i) {
    const std::string target = i % 2 == 0 ? "/v1/accounts/11?min_position=" + std::to_string(next)
                                          : "/v1/transfers/1?min_position=" + std::to_string(next);
    f.call_async("GET", target, &answers[i], i % 4 == 1 ? issuer_key : admin_key);
  }
  CHECK(futures[0].wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  // Other requests are served meanwhile.
  CHECK(f.call("GET", "/v1/accounts/21").status == 200);
  const Response posted = f.call("POST", "/v1/transfers", transfer_body(1, 10, 11, 1));
  REQUIRE(posted.status == 200);
  CHECK(json::parse(posted.body)[0]["position"] == next);
  for (int i = 0; i < reads; ++i) {
    REQUIRE(futures[i].wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    const Response r = futures[i].get();
    REQUIRE(r.status == 200);
    const json body = json::parse(r.body);
    if (i % 2 == 0) {
      CHECK(body["credits_posted"] == 5);
    } else {
      CHECK(body["position"] == next);
    }
  }
}

TEST_CASE("Api: a close answers its position, and a read at it shows the account closed",
          "[server]") {
  ApiFixture f;
  f.api->set_engine(f.engine.get());
  two_ledgers(f);
  const Response closed = f.call("POST", "/v1/accounts/11/close", {}, issuer_key);
  REQUIRE(closed.status == 200);
  const json body = json::parse(closed.body);
  CHECK(body["flags"] == json::array({"debits_must_not_exceed_credits", "closed"}));
  const std::uint64_t position = body["position"];
  CHECK(position == f.engine->stats().committed_position);
  const Response read =
      f.call("GET", "/v1/accounts/11?min_position=" + std::to_string(position), {}, issuer_key);
  REQUIRE(read.status == 200);
  CHECK(json::parse(read.body)["flags"] ==
        json::array({"debits_must_not_exceed_credits", "closed"}));
  CHECK(f.call("POST", "/v1/accounts/99/close", {}, issuer_key).status == 404);
  CHECK(f.call("POST", "/v1/accounts/99/close").status == 404);
  CHECK(f.call("GET", "/v1/accounts/99/balances", {}, issuer_key).status == 404);
}

TEST_CASE("Api: a member on a ledger with expiry_days shows its lots in expiring", "[server]") {
  ApiFixture f;
  f.api->set_engine(f.engine.get());
  REQUIRE(f.call("POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall","expiry_days":30})")
              .status == 201);
  REQUIRE(f.call("POST", "/v1/accounts",
                 R"([{"id":10,"ledger":1,"kind":"issuer"},{"id":11,"ledger":1,"kind":"member"}])")
              .status == 200);
  const Response t = f.call("POST", "/v1/transfers", transfer_body(1, 10, 11, 1));
  REQUIRE(t.status == 200);
  const json outcome = json::parse(t.body)[0];
  REQUIRE(outcome["result"] == "ok");
  const std::uint64_t timestamp = outcome["timestamp"];
  const std::uint64_t position = outcome["position"];
  constexpr std::uint64_t day_ns = 86'400ULL * 1'000'000'000ULL;
  const Response member = f.call("GET", "/v1/accounts/11?min_position=" + std::to_string(position));
  REQUIRE(member.status == 200);
  CHECK(json::parse(member.body)["expiring"] ==
        json::array({{{"amount", 5}, {"at", timestamp / day_ns * day_ns + 31 * day_ns}}}));
  const Response issuer = f.call("GET", "/v1/accounts/10?min_position=" + std::to_string(position));
  REQUIRE(issuer.status == 200);
  CHECK(json::parse(issuer.body)["expiring"] == json::array());
}

TEST_CASE("Api: issuer checks hold for accounts in memory and for accounts loaded after a reopen",
          "[server]") {
  ApiFixture f;
  f.api->set_engine(f.engine.get());
  two_ledgers(f);
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round << (round == 1 ? " (after a reopen)" : ""));
    const std::uint64_t id = 1 + round;
    CHECK(f.call("POST", "/v1/transfers", transfer_body(id, 20, 21, 0), issuer_key).status == 403);
    CHECK(f.call("POST", "/v1/transfers", transfer_body(id, 10, 21, 0), issuer_key).status == 403);
    CHECK(f.call("POST", "/v1/accounts/21/close", {}, issuer_key).status == 403);
    CHECK(f.call("GET", "/v1/accounts/21/transfers", {}, issuer_key).status == 403);
    CHECK(f.call("GET", "/v1/accounts/20/balances", {}, issuer_key).status == 403);
    // An unknown account is the engine's to answer, item by item.
    Response r = f.call("POST", "/v1/transfers", transfer_body(id, 10, 99, 1), issuer_key);
    REQUIRE(r.status == 200);
    CHECK(json::parse(r.body)[0]["result"] == "credit_account_not_found");
    r = f.call("POST", "/v1/transfers", transfer_body(id, 10, 11, 1), issuer_key);
    REQUIRE(r.status == 200);
    CHECK(json::parse(r.body)[0]["result"] == "ok");
    CHECK(f.call("GET", "/v1/accounts/11/transfers", {}, issuer_key).status == 200);
    f.reopen();
  }
  std::vector<std::optional<Account>> found;
  REQUIRE(f.engine->lookup_accounts({11, 21}, &found).is_ok());
  CHECK(found[0]->credits_posted == 10);
  CHECK(found[1]->credits_posted == 0);
}

TEST_CASE("Api: an issuer's events page holds its ledgers' events only", "[server]") {
  ApiFixture f;
  f.api->set_engine(f.engine.get());
  two_ledgers(f);
  for (std::uint64_t id = 1; id <= 5; ++id) {
    REQUIRE(f.call("POST", "/v1/transfers", transfer_body(id, 20, 21, 2)).status == 200);
  }
  const Response last = f.call("POST", "/v1/transfers", transfer_body(1, 10, 11, 1));
  REQUIRE(last.status == 200);
  const std::uint64_t end = json::parse(last.body)[0]["position"];
  REQUIRE(f.call("GET", "/v1/accounts/11?min_position=" + std::to_string(end)).status == 200);

  const Response mine = f.call("GET", "/v1/events?after=0&limit=1000", {}, issuer_key);
  REQUIRE(mine.status == 200);
  const json page = json::parse(mine.body);
  std::vector<std::string> types;
  for (const json& ev : page["events"]) {
    types.push_back(ev["type"]);
    if (ev["type"] == "transfer") CHECK(ev["transfer"]["ledger"] == 1);
    if (ev["type"] == "account_created") CHECK(ev["account"]["ledger"] == 1);
  }
  CHECK(types == std::vector<std::string>{"ledger_created", "account_created", "account_created",
                                          "transfer"});
  CHECK(page["next"] == end);
  const json all = json::parse(f.call("GET", "/v1/events?after=0&limit=1000").body);
  CHECK(all["events"].size() == 2 + 4 + 6);
  // Where nothing of its ledgers follows: an empty page, and `next` at the tail.
  const json rest = json::parse(
      f.call("GET", "/v1/events?after=" + std::to_string(end - 1), {}, issuer_key).body);
  CHECK(rest["events"].size() == 1);
  const json none =
      json::parse(f.call("GET", "/v1/events?after=" + std::to_string(end), {}, issuer_key).body);
  CHECK(none["events"].empty());
  CHECK(none["next"] == end);
}

TEST_CASE("HMAC-SHA256 signatures: RFC 4231 vectors, either hex case, and refusals") {
  using pointex::client::hmac_sha256_hex;
  using pointex::client::hmac_sha256_verify;
  // RFC 4231, test case 2.
  const std::string expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") == expected);
  CHECK(hmac_sha256_verify("Jefe", "what do ya want for nothing?", expected));
  std::string upper = expected;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(hmac_sha256_verify("Jefe", "what do ya want for nothing?", upper));
  // Another body, another secret, a flipped digit, a short or non-hex signature: refused.
  CHECK_FALSE(hmac_sha256_verify("Jefe", "what do ya want for nothing!", expected));
  CHECK_FALSE(hmac_sha256_verify("jefe", "what do ya want for nothing?", expected));
  std::string flipped = expected;
  flipped.back() = '2';
  CHECK_FALSE(hmac_sha256_verify("Jefe", "what do ya want for nothing?", flipped));
  CHECK_FALSE(hmac_sha256_verify("Jefe", "what do ya want for nothing?", expected.substr(2)));
  CHECK_FALSE(hmac_sha256_verify("Jefe", "what do ya want for nothing?", std::string(64, 'g')));
  // An empty body signs too (the value from `printf '' | openssl dgst -sha256 -hmac key`).
  CHECK(hmac_sha256_hex("key", "") ==
        "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
}

TEST_CASE("Api: exchange rates and exchanges, with validation, auth and retries", "[server]") {
  ApiFixture f;
  f.api->set_engine(f.engine.get());
  // Ledger 1 (the issuer key's) and ledger 2; members and exchange accounts on each.
  REQUIRE(f.call("POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall"})").status == 201);
  REQUIRE(f.call("POST", "/v1/ledgers", R"({"id":2,"code":"AIR","name":"Air"})").status == 201);
  REQUIRE(f.call("POST", "/v1/accounts",
                 R"([{"id":10,"ledger":1,"kind":"issuer"},{"id":11,"ledger":1,"kind":"issuer"},
                     {"id":20,"ledger":2,"kind":"issuer"},{"id":21,"ledger":2,"kind":"issuer"},
                     {"id":100,"ledger":1,"kind":"member"},{"id":200,"ledger":2,"kind":"member"}])")
              .status == 200);
  REQUIRE(
      f.call(
           "POST", "/v1/transfers",
           R"({"id":1,"debit_account":10,"credit_account":100,"amount":1000,"ledger":1,"code":1})")
          .status == 200);
  const std::string rate =
      R"({"numerator":3,"denominator":2,"fee_bps":100,"daily_cap":2000,"from_exchange_account":11,"to_exchange_account":21})";

  SECTION("rates: admin only, checked, listed, read back") {
    CHECK(f.call("PUT", "/v1/rates/1/2", rate, issuer_key).status == 403);
    const Response missing = f.call("GET", "/v1/rates/1/2");
    CHECK(missing.status == 404);
    CHECK(json::parse(missing.body)["error"] == "not_found");
    const json bad_fields[] = {
        {{"numerator", "3"}}, {{"numerator", -1}}, {{"fee_bps", 10001}}, {{"typo", 1}}};
    for (const json& b : bad_fields) {
      INFO(b.dump());
      CHECK(f.call("PUT", "/v1/rates/1/2", b.dump()).status == 400);
    }
    const Response no_ledger = f.call("PUT", "/v1/rates/1/9", rate);
    CHECK(no_ledger.status == 404);
    CHECK(json::parse(no_ledger.body)["error"] == "to_ledger_not_found");
    const Response zero = f.call("PUT", "/v1/rates/1/2", R"({"numerator":3})");
    CHECK(zero.status == 400);
    CHECK(json::parse(zero.body)["error"] == "denominator_must_not_be_zero");
    const Response wrong_account = f.call(
        "PUT", "/v1/rates/1/2",
        R"({"numerator":1,"denominator":1,"from_exchange_account":21,"to_exchange_account":21})");
    CHECK(wrong_account.status == 400);
    CHECK(json::parse(wrong_account.body)["field"] == "from_exchange_account");
    CHECK(f.call("GET", "/v1/rates").body == R"({"rates":[]})");  // nothing was set

    const Response set = f.call("PUT", "/v1/rates/1/2", rate);
    REQUIRE(set.status == 200);
    const json r = json::parse(set.body);
    CHECK(r["from_ledger"] == 1);
    CHECK(r["to_ledger"] == 2);
    CHECK(r["numerator"] == 3);
    CHECK(r["daily_cap"] == 2000);
    CHECK(r["pair_daily_cap"] == 0);
    CHECK(r["timestamp"] > 0);
    CHECK(json::parse(f.call("GET", "/v1/rates/1/2", {}, issuer_key).body) == r);
    CHECK(json::parse(f.call("GET", "/v1/rates", {}, issuer_key).body)["rates"].size() == 1);
    CHECK(f.call("GET", "/v1/rates/2/1").status == 404);
  }

  SECTION("exchanges: both legs, retries, failures, auth, bad input") {
    REQUIRE(f.call("PUT", "/v1/rates/1/2", rate).status == 200);
    const std::string body = R"({"id":7,"from_account":100,"to_account":200,"amount":201})";
    // An issuer key of ledger 1 alone may not move ledger 2's points: nothing happens.
    CHECK(f.call("POST", "/v1/exchanges", body, issuer_key).status == 403);
    CHECK(f.call("GET", "/v1/exchanges/7").status == 404);
    const Response ok = f.call("POST", "/v1/exchanges", body);
    REQUIRE(ok.status == 200);
    const json o = json::parse(ok.body);
    CHECK(o == json::parse(R"({"id":7,"result":"ok","debited":201,"credited":297,"fee":4})"));
    const json again = json::parse(f.call("POST", "/v1/exchanges", body).body);
    CHECK(again["result"] == "exists");
    CHECK(again["credited"] == 297);
    const json other =
        json::parse(f.call("POST", "/v1/exchanges",
                           R"({"id":7,"from_account":100,"to_account":200,"amount":5})")
                        .body);
    CHECK(other["result"] == "exists_with_different_fields");
    const Response info = f.call("GET", "/v1/exchanges/7", {}, issuer_key);
    REQUIRE(info.status == 200);
    const json i = json::parse(info.body);
    CHECK(i["step"] == "completed");
    CHECK(i["result"] == "ok");
    CHECK(i["commit"] == true);
    CHECK(i["gross"] == 301);
    CHECK(i["from_exchange_account"] == 11);

    // More than the member holds: the first leg fails and nothing stays pending.
    const json failed =
        json::parse(f.call("POST", "/v1/exchanges",
                           R"({"id":8,"from_account":100,"to_account":200,"amount":900})")
                        .body);
    CHECK(failed["result"] == "leg_failed");
    CHECK(failed["leg"] == 1);
    CHECK(failed["leg_result"] == "exceeds_credits");
    // Over the member's daily cap (2000: 201 used, the failed one gave its 900 back): refused
    // before it starts, not stored.
    const json capped =
        json::parse(f.call("POST", "/v1/exchanges",
                           R"({"id":9,"from_account":100,"to_account":200,"amount":1800})")
                        .body);
    CHECK(capped["result"] == "member_daily_cap_exceeded");
    CHECK(f.call("GET", "/v1/exchanges/9").status == 404);
    const json reserved = json::parse(
        f.call("POST", "/v1/exchanges",
               R"({"id":9223372036854775808,"from_account":100,"to_account":200,"amount":1})")
            .body);
    CHECK(reserved["result"] == "id_reserved");
    const json no_rate =
        json::parse(f.call("POST", "/v1/exchanges",
                           R"({"id":10,"from_account":200,"to_account":100,"amount":1})")
                        .body);
    CHECK(no_rate["result"] == "rate_not_found");
    for (const char* bad : {R"({"id":"7","from_account":100,"to_account":200,"amount":1})",
                            R"({"id":7,"from_account":100,"to_account":200,"amount":-1})",
                            R"({"id":7,"from_account":100,"to_account":200,"amount":1.5})",
                            R"({"id":7,"from_account":100,"to_account":200,"amount":1,"x":1})",
                            R"([1,2])", R"(not json)"}) {
      INFO(bad);
      CHECK(f.call("POST", "/v1/exchanges", bad).status == 400);
    }
    CHECK(f.call("POST", "/v1/exchanges", body, nullptr).status == 401);
    CHECK(f.call("GET", "/v1/exchanges/x").status == 404);
    CHECK(f.call("DELETE", "/v1/exchanges/7").status == 405);
    // The member paid 201 A-points and got 297 B-points; the exchange accounts hold the rest.
    f.engine.reset();  // a clean close: the read models include everything
    f.reopen();
    const auto balance = [&](AccountId id) {
      return json::parse(f.call("GET", "/v1/accounts/" + std::to_string(id)).body)["balance"];
    };
    CHECK(balance(100) == 1000 - 201);
    CHECK(balance(11) == 201);
    CHECK(balance(200) == 297);
    CHECK(balance(21) == -297);
    CHECK(json::parse(f.call("GET", "/v1/accounts/100").body)["debits_pending"] == 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Webhook subscriptions (docs/webhooks.md): validation, auth, issuer scoping, durability.

TEST_CASE("Api: subscriptions are validated field by field and unknown fields are refused",
          "[server][webhooks]") {
  ApiFixture f;
  f.api->set_engine(f.engine.get());
  two_ledgers(f);
  const std::string url = R"("url":"http://127.0.0.1:9/hooks")";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{" + url + "}", "events"},
      {R"({"events":["transfer"]})", "url"},
      {R"({"url":"https://x/","events":["transfer"]})", "url"},
      {R"({"url":"127.0.0.1:9","events":["transfer"]})", "url"},
      {R"({"url":7,"events":["transfer"]})", "url"},
      {"{" + url + R"(,"events":[]})", "events"},
      {"{" + url + R"(,"events":["transfers"]})", "events"},
      {"{" + url + R"(,"events":"transfer"})", "events"},
      {"{" + url + R"(,"events":[3]})", "events"},
      {"{" + url + R"(,"events":["transfer"],"secret":"short"})", "secret"},
      {"{" + url + R"(,"events":["transfer"],"secret":7})", "secret"},
      {"{" + url + R"(,"events":["transfer"],"secret":")" + std::string(257, 's') + "\"}",
       "secret"},
      {"{" + url + R"(,"events":["transfer"],"ledgers":[1]})", "ledgers"},
      {"{" + url + R"(,"events":["transfer"],"after":0})", "after"},
  };
  for (const auto& [body, field] : bad) {
    INFO(body);
    const Response r = f.call("POST", "/v1/subscriptions", body);
    CHECK(r.status == 400);
    CHECK(json::parse(r.body)["field"] == field);
  }
  CHECK(json::parse(
            f.call("POST", "/v1/subscriptions", "{" + url + R"(,"evnts":[]})").body)["error"] ==
        "unknown_field");
  CHECK(f.call("POST", "/v1/subscriptions", "[1]").status == 400);
  CHECK(f.call("GET", "/v1/subscriptions?x=1").status == 400);
  CHECK(f.call("GET", "/v1/subscriptions/1/dead_letters?limit=0").status == 400);
  CHECK(f.call("GET", "/v1/subscriptions/1/dead_letters?limit=1001").status == 400);
  CHECK(f.call("PUT", "/v1/subscriptions").status == 405);
  CHECK(f.call("PUT", "/v1/subscriptions/1").allow == "GET, DELETE");
  CHECK(f.call("GET", "/v1/subscriptions/1/dead_letters/2/retry").allow == "POST");
  CHECK(f.call("POST", "/v1/subscriptions/1/dead_letters/x/retry").status == 404);
  CHECK(f.call("GET", "/v1/subscriptions", {}, nullptr).status == 401);
  CHECK(f.engine->webhooks().empty());  // nothing applied by any of them

  // Accepted: the answer carries the id and the secret (generated when absent: 64 hex).
  Response r = f.call("POST", "/v1/subscriptions",
                      "{" + url + R"(,"events":["transfer","account_closed","transfer"]})");
  REQUIRE(r.status == 201);
  json made = json::parse(r.body);
  CHECK(made["events"] == json({"account_closed", "transfer"}));
  CHECK(made["secret"].get<std::string>().size() == 64);
  CHECK(made["ledgers"] == json::array());
  CHECK(made["cursor"] == made["id"]);  // events after its creation
  CHECK(made["dead_letters"] == 0);
  r = f.call("POST", "/v1/subscriptions",
             "{" + url + R"(,"events":["ledger_created"],"secret":"0123456789abcdef"})");
  REQUIRE(r.status == 201);
  CHECK(json::parse(r.body)["secret"] == "0123456789abcdef");
  // The secret is not shown again.
  const json listed = json::parse(f.call("GET", "/v1/subscriptions").body);
  REQUIRE(listed["subscriptions"].size() == 2);
  CHECK_FALSE(listed["subscriptions"][0].contains("secret"));
  const std::string one = "/v1/subscriptions/" + std::to_string(made["id"].get<std::uint64_t>());
  CHECK(json::parse(f.call("GET", one).body)["url"] == "http://127.0.0.1:9/hooks");
  CHECK(f.call("GET", one + "/dead_letters").body == R"({"dead_letters":[],"next":null})");
  CHECK(f.call("POST", one + "/dead_letters/5/retry").status == 404);  // no such dead letter
  CHECK(f.call("GET", "/v1/subscriptions/999999").status == 404);
  CHECK(f.call("DELETE", one).status == 200);
  CHECK(f.call("GET", one).status == 404);
  CHECK(f.call("DELETE", one).status == 404);
}

TEST_CASE("Api: an issuer key's subscriptions carry its ledgers, and it sees only those",
          "[server][webhooks]") {
  ApiFixture f;
  f.api->set_engine(f.engine.get());
  two_ledgers(f);
  const std::string body = R"({"url":"http://127.0.0.1:9/","events":["transfer"]})";
  const Response admin = f.call("POST", "/v1/subscriptions", body);
  REQUIRE(admin.status == 201);
  const Response issuer = f.call("POST", "/v1/subscriptions", body, issuer_key);
  REQUIRE(issuer.status == 201);
  const json mine = json::parse(issuer.body);
  CHECK(mine["ledgers"] == json({1}));
  const std::string admin_path =
      "/v1/subscriptions/" + std::to_string(json::parse(admin.body)["id"].get<std::uint64_t>());
  const std::string issuer_path =
      "/v1/subscriptions/" + std::to_string(mine["id"].get<std::uint64_t>());

  const json seen = json::parse(f.call("GET", "/v1/subscriptions", {}, issuer_key).body);
  REQUIRE(seen["subscriptions"].size() == 1);
  CHECK(seen["subscriptions"][0]["id"] == mine["id"]);
  CHECK(json::parse(f.call("GET", "/v1/subscriptions").body)["subscriptions"].size() == 2);
  // The admin's subscription (every ledger) is not the issuer's: 404 as if absent.
  CHECK(f.call("GET", admin_path, {}, issuer_key).status == 404);
  CHECK(f.call("GET", admin_path + "/dead_letters", {}, issuer_key).status == 404);
  CHECK(f.call("DELETE", admin_path, {}, issuer_key).status == 404);
  CHECK(f.engine->webhook(json::parse(admin.body)["id"]).has_value());
  CHECK(f.call("GET", issuer_path, {}, issuer_key).status == 200);
  CHECK(f.call("DELETE", issuer_path, {}, issuer_key).status == 200);
  CHECK(f.engine->webhooks().size() == 1);
}

TEST_CASE("Api: subscriptions, their cursors and dead letters survive a reopen",
          "[server][webhooks]") {
  ApiFixture f;
  f.api->set_engine(f.engine.get());
  two_ledgers(f);
  const Response r =
      f.call("POST", "/v1/subscriptions", R"({"url":"http://127.0.0.1:9/","events":["transfer"]})");
  REQUIRE(r.status == 201);
  const WebhookId id = json::parse(r.body)["id"];
  const Response t = f.call("POST", "/v1/transfers", transfer_body(1, 10, 11, 1));
  const std::uint64_t position = json::parse(t.body)[0]["position"];
  REQUIRE(f.call("GET", "/v1/accounts/11?min_position=" + std::to_string(position)).status == 200);
  std::promise<WebhookOutcome> done;
  f.engine->record_webhook_progress({id, position, {{position, 8, 500, 1}}, {}},
                                    [&](const Status& s, WebhookOutcome o) {
                                      REQUIRE(s.is_ok());
                                      done.set_value(o);
                                    });
  CHECK(done.get_future().get().result == WebhookResult::ok);
  f.reopen();
  const json back = json::parse(f.call("GET", "/v1/subscriptions/" + std::to_string(id)).body);
  CHECK(back["cursor"] == position);
  CHECK(back["dead_letters"] == 1);
  const json letters =
      json::parse(f.call("GET", "/v1/subscriptions/" + std::to_string(id) + "/dead_letters").body);
  CHECK(letters["dead_letters"] ==
        json::parse(R"([{"position":)" + std::to_string(position) +
                    R"(,"attempts":8,"last_status":500,"timestamp":1}])"));
  // The read model equals the fold of the log, also after a rebuild from the log alone.
  f.api->set_engine(nullptr);
  f.engine.reset();
  VerifyReport report;
  REQUIRE(Engine::verify(f.options.data_dir, &report).is_ok());
  CHECK(report.ok);
  REQUIRE(Engine::rebuild_read_models(f.options.data_dir).is_ok());
  REQUIRE(Engine::verify(f.options.data_dir, &report).is_ok());
  CHECK(report.ok);
  REQUIRE(Engine::open(f.options, &f.engine).is_ok());
  f.api->set_engine(f.engine.get());
  REQUIRE(f.engine->webhook(id).has_value());
  CHECK(f.engine->webhook(id)->dead_letters == 1);
  // Without delivery running (no dispatcher here), a redelivery cannot be queued.
  CHECK(f.call("POST", "/v1/subscriptions/" + std::to_string(id) + "/dead_letters/" +
                           std::to_string(position) + "/retry")
            .status == 503);
}

// ---------------------------------------------------------------------------------------------
// Points + cash orders and payment callbacks.

TEST_CASE("config: payment providers, field by field", "[server]") {
  Config c;
  std::string err;
  REQUIRE(parse_config(R"({"payment_providers":[
      {"name":"acme","type":"http","secret":"0123456789abcdef","url":"http://127.0.0.1:9000/pay",
       "timeout_ms":100,"attempts_max":5,"threads":8},
      {"name":"sim","type":"simulated","latency_ms":0,"failure_rate":0.25,"seed":7}],
      "engine":{"order_timeout_s_default":30,"order_timeout_s_max":60}})",
                       &c, &err));
  REQUIRE(c.payment_providers.size() == 2);
  CHECK(c.payment_providers[0].type == PaymentProviderConfig::Type::http);
  CHECK(c.payment_providers[0].attempts_max == 5);
  CHECK(c.payment_providers[0].threads == 8);
  CHECK(c.payment_providers[0].callback_url.empty());  // pointexd's own address by default
  CHECK(c.payment_providers[1].type == PaymentProviderConfig::Type::simulated);
  CHECK(c.payment_providers[1].failure_rate == 0.25);
  CHECK(c.payment_providers[1].secret.empty());
  CHECK(c.engine.order_timeout_s_default == 30);
  CHECK(c.engine.order_timeout_s_max == 60);
  struct Bad {
    const char* text;
    const char* error;
  };
  for (const Bad& b : {
           Bad{R"([{"name":"Acme","type":"simulated"}])", "payment_providers[0].name: 1-64"},
           Bad{R"([{"name":"a","type":"card"}])", "payment_providers[0].type: must be http or"},
           Bad{R"([{"name":"a","type":"http","secret":"0123456789abcdef"}])",
               "payment_providers[0].url: required"},
           Bad{R"([{"name":"a","type":"http","secret":"0123456789abcdef","url":"ftp://x"}])",
               "payment_providers[0].url: expected http://host"},
           Bad{R"([{"name":"a","type":"http","secret":"short","url":"http://x"}])",
               "payment_providers[0].secret: must be at least 16"},
           Bad{R"([{"name":"a","type":"http","secret":"0123456789abcdef","url":"http://x",
                    "latency_ms":5}])",
               "payment_providers[0].latency_ms: only for type simulated"},
           Bad{R"([{"name":"a","type":"simulated","url":"http://x"}])",
               "payment_providers[0].url: only for type http"},
           Bad{R"([{"name":"a","type":"simulated","failure_rate":1.5}])",
               "payment_providers[0].failure_rate: expected a number from 0 to 1"},
           Bad{R"([{"name":"a","type":"simulated","failure_rate":"x"}])",
               "payment_providers[0].failure_rate: expected a number"},
           Bad{R"([{"name":"a","type":"http","secret":"0123456789abcdef","url":"http://x",
                    "attempts_max":0}])",
               "payment_providers[0].attempts_max: must be between 1"},
           Bad{R"([{"name":"a","type":"http","secret":"0123456789abcdef","url":"http://x",
                    "threads":65}])",
               "payment_providers[0].threads: must be between 1 and 64"},
           Bad{R"([{"name":"a","type":"simulated","threads":2}])",
               "payment_providers[0].threads: only for type http"},
           Bad{R"([{"name":"a","type":"simulated"},{"name":"a","type":"simulated"}])",
               "payment_providers[1].name: duplicate provider"},
           Bad{R"([{"name":"a","type":"simulated","colour":1}])",
               "payment_providers[0].colour: unknown field"},
       }) {
    Config d;
    const std::string text = std::string(R"({"payment_providers":)") + b.text + "}";
    INFO(text);
    CHECK_FALSE(parse_config(text, &d, &err));
    CHECK(err.rfind(b.error, 0) == 0);
  }
  Config d;
  CHECK_FALSE(parse_config(R"({"engine":{"order_timeout_s_max":10,"order_timeout_s_default":11}})",
                           &d, &err));
  CHECK(err.rfind("engine.order_timeout_s_default: must be between 1 and 10", 0) == 0);
}

TEST_CASE("order bodies: fields checked, cash as an object, unknown fields refused", "[server]") {
  const auto order_of = [](const std::string& body, Order* o, ApiError* err) {
    json j;
    return parse_body(body, &j, err) && map_order(j, o, err);
  };
  Order o;
  ApiError err;
  REQUIRE(order_of(R"({"id":1,"member_account":2,"merchant_account":3,"points":4,
                       "cash":{"amount":5,"currency":"EUR"},"timeout_s":6,"provider":"p"})",
                   &o, &err));
  CHECK(o.cash == Cash{5, "EUR"});
  CHECK(o.timeout_s == 6);
  CHECK(o.provider == "p");
  o = Order{};
  REQUIRE(order_of(R"({"id":1,"member_account":2,"merchant_account":3,"points":4})", &o, &err));
  CHECK(o.cash.amount == 0);
  CHECK_FALSE(order_of(R"({"id":1,"cash":{"amount":"5"}})", &o, &err));
  CHECK(err.field == "cash.amount");
  CHECK(err.message.rfind("cash.amount: expected an unsigned integer", 0) == 0);
  CHECK_FALSE(order_of(R"({"id":1,"cash":5})", &o, &err));
  CHECK(err.field == "cash");
  CHECK(err.error == "invalid_field");
  CHECK_FALSE(order_of(R"({"id":1,"cash":{"amount":5,"currency":"EUR","tip":1}})", &o, &err));
  CHECK(err.field == "cash.tip");
  CHECK(err.error == "unknown_field");
  CHECK_FALSE(order_of(R"({"id":1,"timeout_s":4294967296})", &o, &err));
  CHECK(err.field == "timeout_s");
  CHECK_FALSE(order_of(R"({"id":1,"price":3})", &o, &err));
  CHECK(err.error == "unknown_field");
  std::string payment_id;
  PaymentStatus status{};
  json j = json::parse(R"({"payment_id":"po-1-2","status":"failed"})");
  REQUIRE(map_payment_result(j, &payment_id, &status, &err));
  CHECK(status == PaymentStatus::failed);
  j = json::parse(R"({"payment_id":"po-1-2","status":"paid"})");
  CHECK_FALSE(map_payment_result(j, &payment_id, &status, &err));
  CHECK(err.field == "status");
  j = json::parse(R"({"status":"failed"})");
  CHECK_FALSE(map_payment_result(j, &payment_id, &status, &err));
  CHECK(err.error == "missing_field");
}

namespace {

constexpr const char* sim_secret = "sim-secret-0123456789";

/// An Api whose engine has a simulated provider `sim` that never reports by itself (its
/// results come through the callback, signed with sim_secret), and ledger 1 with a member 11
/// holding 1000 points and a shop 12.
struct OrderApi : ApiFixture {
  OrderApi()
      : ApiFixture(4096, 1U << 20, 300, [](Config& c) {
          PaymentProviderConfig sim;
          sim.name = "sim";
          sim.type = PaymentProviderConfig::Type::simulated;
          sim.secret = sim_secret;
          sim.latency_ms = 3'600'000;  // an hour: results come from the test
          c.payment_providers = {sim};
          c.engine.payment_providers = make_payment_providers(c.payment_providers, "127.0.0.1:1");
        }) {
    api->set_engine(engine.get());
    REQUIRE(call("POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall"})").status == 201);
    REQUIRE(call("POST", "/v1/ledgers", R"({"id":2,"code":"AIR","name":"Air"})").status == 201);
    REQUIRE(call("POST", "/v1/accounts",
                 R"([{"id":10,"ledger":1,"kind":"issuer"},{"id":11,"ledger":1,"kind":"member"},
                     {"id":12,"ledger":1,"kind":"member"},{"id":21,"ledger":2,"kind":"member"}])")
                .status == 200);
    REQUIRE(call("POST", "/v1/transfers",
                 R"({"id":1,"debit_account":10,"credit_account":11,"amount":1000,"ledger":1,
                     "code":1})")
                .status == 200);
  }
  Response callback(const std::string& body, const std::string& signature,
                    const std::string& provider = "sim") {
    Request r;
    r.method = "POST";
    r.target = "/v1/payments/" + provider + "/callback";
    r.content_type = "application/json";
    r.content_length = body.size();
    r.body = body;
    r.signature = signature;
    std::promise<Response> p;
    auto f = p.get_future();
    api->handle(std::move(r), [&p](Response res) { p.set_value(std::move(res)); });
    return f.get();
  }
  Response signed_callback(const std::string& payment_id, const char* status) {
    const std::string body = json{{"payment_id", payment_id}, {"status", status}}.dump();
    return callback(body, client::hmac_sha256_hex(sim_secret, body));
  }
  json order_now(std::uint64_t id) {
    const Response r = call("GET", "/v1/orders/" + std::to_string(id));
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }
  /// Waits for the order's points to be posted or voided (a result answers once decided).
  json completed(std::uint64_t id) {
    for (int i = 0; i < 500; ++i) {
      const json j = order_now(id);
      if (j["step"] == "completed") return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("order " << id << " did not complete");
    return {};
  }
};

std::string order_body(std::uint64_t id, std::uint64_t points = 300, std::uint64_t cash = 500) {
  return json{{"id", id},
              {"member_account", 11},
              {"merchant_account", 12},
              {"points", points},
              {"cash", {{"amount", cash}, {"currency", "EUR"}}}}
      .dump();
}

}  // namespace

TEST_CASE("Api: orders over HTTP, and payment callbacks authenticated by signature alone",
          "[server]") {
  OrderApi f;
  Response r = f.call("POST", "/v1/orders", order_body(1));
  REQUIRE(r.status == 200);
  json j = json::parse(r.body);
  CHECK(j["result"] == "ok");
  CHECK(j["status"] == "awaiting_payment");
  CHECK(j["payment"]["provider"] == "sim");
  const std::string payment_id = j["payment"]["payment_id"];
  CHECK(j["payment"]["reference"] == "sim-" + payment_id);
  CHECK(j["steps"].size() == 3);
  // The same body again: the same order; another body: 409.
  r = f.call("POST", "/v1/orders", order_body(1));
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["result"] == "exists");
  r = f.call("POST", "/v1/orders", order_body(1, 301));
  CHECK(r.status == 409);
  CHECK(json::parse(r.body)["error"] == "exists_with_different_fields");

  // The callback: refused without a valid signature, and nothing is recorded.
  const std::string body = json{{"payment_id", payment_id}, {"status", "succeeded"}}.dump();
  CHECK(f.callback(body, "").status == 401);
  CHECK(f.callback(body, client::hmac_sha256_hex("another-secret-0123456789", body)).status == 401);
  const std::string changed = json{{"payment_id", payment_id}, {"status", "failed"}}.dump();
  CHECK(f.callback(changed, client::hmac_sha256_hex(sim_secret, body)).status == 401);
  CHECK(f.callback(body, "not hex at all").status == 401);
  CHECK(f.order_now(1)["status"] == "awaiting_payment");
  CHECK(f.order_now(1)["steps"].size() == 3);
  // An unknown provider is 404 before any signature; an unknown payment 404 after it.
  CHECK(f.callback(body, client::hmac_sha256_hex(sim_secret, body), "nobody").status == 404);
  r = f.signed_callback("po-999-1", "succeeded");
  CHECK(r.status == 404);
  CHECK(json::parse(r.body)["error"] == "payment_not_found");
  // Signed but malformed: 400.
  const std::string bad = R"({"payment_id":"x","status":"paid"})";
  CHECK(f.callback(bad, client::hmac_sha256_hex(sim_secret, bad)).status == 400);
  // Signed and well-formed: applied once, then replays.
  r = f.signed_callback(payment_id, "succeeded");
  CHECK(r.status == 200);
  j = json::parse(r.body);
  CHECK(j["result"] == "applied");
  CHECK(j["order_id"] == 1);
  j = f.completed(1);
  CHECK(j["status"] == "completed");
  CHECK(j["payment"]["status"] == "succeeded");
  r = f.signed_callback(payment_id, "succeeded");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["result"] == "replayed");
  // A cancel after the success is refused.
  r = f.call("POST", "/v1/orders/1/cancel");
  CHECK(r.status == 409);
  CHECK(json::parse(r.body)["error"] == "already_completed");
  CHECK(json::parse(f.call("GET", "/v1/accounts/12?min_position=1").body)["balance"] == 300);

  // Cancel before the payment, then its success comes late: 200, recorded, refund due.
  r = f.call("POST", "/v1/orders", order_body(2));
  const std::string second = json::parse(r.body)["payment"]["payment_id"];
  r = f.call("POST", "/v1/orders/2/cancel");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["status"] == "cancelled");
  r = f.signed_callback(second, "succeeded");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["result"] == "late");
  j = f.order_now(2);
  CHECK(j["refund_due"] == true);
  CHECK(j["steps"].back()["step"] == "late_result");
  CHECK(j["steps"].back()["status"] == "succeeded");
  CHECK(f.call("POST", "/v1/orders/3/cancel").status == 404);
  CHECK(f.call("GET", "/v1/orders/3").status == 404);
  CHECK(f.call("GET", "/v1/orders/1?x=1").status == 400);

  // Metrics count what the callbacks did.
  const std::string metrics = f.call("GET", "/metrics", {}, nullptr).body;
  CHECK(metrics.find("pointex_payment_callbacks_total{result=\"bad_signature\"} 4") !=
        std::string::npos);
  CHECK(metrics.find("pointex_payment_callbacks_total{result=\"applied\"} 1") != std::string::npos);
  CHECK(metrics.find("pointex_payment_callbacks_total{result=\"payment_not_found\"} 1") !=
        std::string::npos);
  CHECK(metrics.find("pointex_payment_results_late_total 1") != std::string::npos);
}

TEST_CASE("Api: order refusals, failures and issuer keys", "[server]") {
  OrderApi f;
  const auto post = [&](const json& body, const char* key = admin_key) {
    return f.call("POST", "/v1/orders", body.dump(), key);
  };
  json body = json::parse(order_body(5));
  Response r = post(body);
  REQUIRE(r.status == 200);
  struct Case {
    const char* field;
    json value;
    int status;
    const char* error;
  };
  for (const Case& c :
       {Case{"id", 0, 400, "id_must_not_be_zero"},
        Case{"points", 0, 400, "points_must_not_be_zero"},
        Case{"member_account", 77, 404, "member_account_not_found"},
        Case{"merchant_account", 21, 400, "ledger_mismatch"},
        Case{"timeout_s", 100'000, 400, "timeout_too_long"},
        Case{"provider", "nobody", 404, "provider_not_found"},
        Case{"cash", {{"amount", 5}, {"currency", "eu"}}, 400, "currency_invalid"},
        Case{"points", -1, 400, "invalid_field"}, Case{"colour", "red", 400, "unknown_field"}}) {
    json b = json::parse(order_body(6));
    b[c.field] = c.value;
    INFO(b.dump());
    r = post(b);
    CHECK(r.status == c.status);
    CHECK(json::parse(r.body)["error"] == c.error);
  }
  // Without enough points the order fails at once: 200, status failed, the reason.
  r = post(json::parse(order_body(7, 5000)));
  CHECK(r.status == 200);
  json j = json::parse(r.body);
  CHECK(j["status"] == "failed");
  CHECK(j["reason"] == "exceeds_credits");
  CHECK(j["failure"] == "reservation_refused");
  // Cash 0: completed at once, no payment.
  body = json::parse(order_body(8, 100, 0));
  body.erase("cash");
  r = post(body);
  j = json::parse(r.body);
  CHECK(j["status"] == "completed");
  CHECK_FALSE(j.contains("payment"));
  // An issuer key orders on its ledger and sees those orders; an account of another ledger
  // is refused whole.
  CHECK(post(json::parse(order_body(9)), issuer_key).status == 200);
  CHECK(f.call("GET", "/v1/orders/9", {}, issuer_key).status == 200);
  body = json::parse(order_body(10));
  body["member_account"] = 21;
  CHECK(post(body, issuer_key).status == 403);
  CHECK(f.call("GET", "/v1/orders/10").status == 404);
}

namespace {

/// Ledgers 1 (issuer 10, members 11 and 12) and 2 (issuer 20, member 21), earning rules for
/// neither yet.
struct RebateApi : ApiFixture {
  RebateApi() {
    api->set_engine(engine.get());
    REQUIRE(call("POST", "/v1/ledgers", R"({"id":1,"code":"MALL","name":"Mall"})").status == 201);
    REQUIRE(call("POST", "/v1/ledgers", R"({"id":2,"code":"AIR","name":"Air"})").status == 201);
    REQUIRE(call("POST", "/v1/accounts",
                 R"([{"id":10,"ledger":1,"kind":"issuer"},{"id":11,"ledger":1,"kind":"member"},
                     {"id":12,"ledger":1,"kind":"member"},{"id":20,"ledger":2,"kind":"issuer"},
                     {"id":21,"ledger":2,"kind":"member"}])")
                .status == 200);
  }
  json purchase_now(PurchaseId id) {
    const Response r = call("GET", "/v1/purchases/" + std::to_string(id));
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }
};

constexpr const char* mall_rules_body =
    R"({"issuer_account":10,"currency":"EUR","categories":[{"category":"books","rate_bps":100}],
        "min_purchase":100,"return_window_s":0,
        "campaigns":[{"starts_at":0,"ends_at":1,"multiplier_bps":20000,"categories":["books"]}]})";

}  // namespace

TEST_CASE("Api: earning rules over HTTP, every field checked, issuer keys on their ledgers",
          "[server]") {
  RebateApi f;
  CHECK(f.call("GET", "/v1/ledgers/1/rules").status == 404);
  const auto refused = [&](const std::string& body, int status, const char* code,
                           const char* field = nullptr) {
    const Response r = f.call("PUT", "/v1/ledgers/1/rules", body);
    INFO(body << " -> " << r.body);
    CHECK(r.status == status);
    const json j = json::parse(r.body);
    CHECK(j["error"] == code);
    if (field != nullptr) CHECK(j["field"] == field);
  };
  refused("[]", 400, "invalid_json");
  refused(R"({"issuer_account":10,"currency":"EUR"})", 400, "missing_field", "categories");
  refused(R"({"currency":"EUR","categories":[]})", 400, "missing_field", "issuer_account");
  refused(R"({"issuer_account":10,"currency":"EUR","categories":[],"x":1})", 400, "unknown_field",
          "x");
  refused(R"({"issuer_account":10,"currency":"EUR","categories":[{"category":"a"}]})", 400,
          "missing_field", "categories[0].rate_bps");
  refused(R"({"issuer_account":10,"currency":"EUR","categories":[{"category":"a","rate_bps":-1}]})",
          400, "invalid_field", "categories[0].rate_bps");
  refused(R"({"issuer_account":10,"currency":"EUR","categories":{}})", 400, "invalid_field",
          "categories");
  refused(R"({"issuer_account":10,"currency":"EUR","categories":[]})", 400, "categories_invalid");
  refused(R"({"issuer_account":99,"currency":"EUR","categories":[{"category":"a","rate_bps":1}]})",
          404, "issuer_account_not_found");
  refused(R"({"issuer_account":20,"currency":"EUR","categories":[{"category":"a","rate_bps":1}]})",
          400, "issuer_account_invalid");
  refused(R"({"issuer_account":10,"currency":"E","categories":[{"category":"a","rate_bps":1}]})",
          400, "currency_invalid");
  refused(R"({"issuer_account":10,"currency":"EUR","categories":[{"category":"a","rate_bps":1}],
              "campaigns":[{"ends_at":5,"multiplier_bps":5}]})",
          400, "campaigns_invalid");
  refused(R"({"issuer_account":10,"currency":"EUR","categories":[{"category":"a","rate_bps":1}],
              "campaigns":[{"starts_at":1}]})",
          400, "missing_field", "campaigns[0].ends_at");
  CHECK(f.call("GET", "/v1/ledgers/1/rules").status == 404);  // nothing stored
  // Another issuer's ledger: 403; no ledger: 404.
  CHECK(f.call("PUT", "/v1/ledgers/2/rules", mall_rules_body, issuer_key).status == 403);
  CHECK(f.call("GET", "/v1/ledgers/2/rules", {}, issuer_key).status == 403);
  CHECK(f.call("PUT", "/v1/ledgers/9/rules", mall_rules_body).status == 404);

  refused(R"({"issuer_account":10,"expiry_account":20,"currency":"EUR",
              "categories":[{"category":"a","rate_bps":1}]})",
          400, "expiry_account_invalid");
  refused(R"({"issuer_account":10,"expiry_account":99,"currency":"EUR",
              "categories":[{"category":"a","rate_bps":1}]})",
          404, "expiry_account_not_found");
  Response r = f.call("PUT", "/v1/ledgers/1/rules", mall_rules_body, issuer_key);
  REQUIRE(r.status == 200);
  json j = json::parse(r.body);
  CHECK(j["ledger"] == 1);
  CHECK(j["categories"][0]["rate_bps"] == 100);
  CHECK(j["campaigns"][0]["multiplier_bps"] == 20000);
  r = f.call("GET", "/v1/ledgers/1/rules", {}, issuer_key);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["timestamp"] == j["timestamp"]);
}

TEST_CASE("Api: purchases and refunds over HTTP, with clawbacks, retries and refusals",
          "[server]") {
  RebateApi f;
  CHECK(f.call("POST", "/v1/purchases",
               R"({"id":1,"member_account":11,"amount":10000,"currency":"EUR","category":"books"})")
            .status == 404);  // rules_not_found
  REQUIRE(f.call("PUT", "/v1/ledgers/1/rules", mall_rules_body).status == 200);
  const std::string body =
      R"({"id":1,"member_account":11,"amount":10000,"currency":"EUR","category":"books"})";
  Response r = f.call("POST", "/v1/purchases", body, issuer_key);
  REQUIRE(r.status == 200);
  json j = json::parse(r.body);
  CHECK(j["result"] == "ok");
  CHECK(j["points"] == 100);
  CHECK(j["status"] == "available");  // a window of 0: posted at once
  CHECK(j["points_posted"] == 100);
  CHECK(f.call("POST", "/v1/purchases", body).status == 200);
  CHECK(json::parse(f.call("POST", "/v1/purchases", body).body)["result"] == "exists");
  r = f.call("POST", "/v1/purchases",
             R"({"id":1,"member_account":11,"amount":10001,"currency":"EUR","category":"books"})");
  CHECK(r.status == 409);
  // Refusals, each with its field.
  const auto refused = [&](const std::string& b, int status, const char* code) {
    const Response x = f.call("POST", "/v1/purchases", b);
    INFO(b << " -> " << x.body);
    CHECK(x.status == status);
    CHECK(json::parse(x.body)["error"] == code);
  };
  refused(R"({"id":2,"member_account":11,"amount":1,"currency":"EUR"})", 400, "missing_field");
  refused(R"({"id":2,"member_account":11,"amount":"1","currency":"EUR","category":"books"})", 400,
          "invalid_field");
  refused(R"({"id":0,"member_account":11,"amount":1,"currency":"EUR","category":"books"})", 400,
          "id_must_not_be_zero");
  refused(
      R"({"id":4611686018427387904,"member_account":11,"amount":1,"currency":"EUR","category":"books"})",
      400, "id_reserved");
  refused(R"({"id":2,"member_account":99,"amount":1,"currency":"EUR","category":"books"})", 404,
          "member_account_not_found");
  refused(R"({"id":2,"member_account":10,"amount":1,"currency":"EUR","category":"books"})", 400,
          "member_account_invalid");
  refused(R"({"id":2,"member_account":11,"amount":1,"currency":"USD","category":"books"})", 400,
          "currency_mismatch");
  refused(R"({"id":2,"member_account":11,"amount":1,"currency":"EUR","category":"toys"})", 400,
          "category_not_found");
  refused(R"({"id":2,"member_account":21,"amount":1,"currency":"EUR","category":"books"})", 404,
          "rules_not_found");
  CHECK(f.call("POST", "/v1/purchases",
               R"({"id":2,"member_account":21,"amount":1,"currency":"EUR","category":"books"})",
               issuer_key)
            .status == 403);
  CHECK(f.call("GET", "/v1/purchases/2").status == 404);

  // Member 11 spends 60 of the 100; a full refund claws back 40 and records 60 short.
  REQUIRE(
      f.call("POST", "/v1/transfers",
             R"({"id":5,"debit_account":11,"credit_account":12,"amount":60,"ledger":1,"code":1})")
          .status == 200);
  CHECK(f.call("POST", "/v1/purchases/1/refund", R"({"id":1})").status == 400);  // amount 0
  CHECK(f.call("POST", "/v1/purchases/1/refund", R"({"id":1,"amount":10001})").status == 409);
  CHECK(f.call("POST", "/v1/purchases/9/refund", R"({"id":1,"amount":1})").status == 404);
  r = f.call("POST", "/v1/purchases/1/refund", R"({"id":1,"amount":10000})");
  REQUIRE(r.status == 200);
  j = json::parse(r.body);
  CHECK(j["result"] == "ok");
  CHECK(j["refunds"][0]["clawback"]["points"] == 100);
  CHECK(j["refunds"][0]["clawback"]["clawed_back"] == 40);
  CHECK(j["refunds"][0]["clawback"]["shortfall"] == 60);
  CHECK(j["shortfall"] == 60);
  r = f.call("POST", "/v1/purchases/1/refund", R"({"id":1,"amount":10000})");
  CHECK(json::parse(r.body)["result"] == "exists");
  r = f.call("POST", "/v1/purchases/1/refund", R"({"id":1,"amount":5})");
  CHECK(r.status == 409);
  // The clawback is a balancing_debit transfer on the member's account.
  const std::uint64_t claw = j["refunds"][0]["clawback"]["transfer_id"];
  r = f.call("GET", "/v1/transfers/" + std::to_string(claw) + "?debit_account=11");
  REQUIRE(r.status == 200);
  j = json::parse(r.body);
  CHECK(j["amount"] == 40);
  CHECK(j["flags"] == json::array({"balancing_debit"}));
  CHECK(json::parse(f.call("GET", "/v1/accounts/11?min_position=1").body)["balance"] == 0);
  // After a restart it reads the same.
  f.reopen();
  CHECK(f.purchase_now(1)["shortfall"] == 60);
  CHECK(f.purchase_now(1)["settled"] == true);
}

TEST_CASE("config: check_back, field by field", "[server]") {
  Config c;
  std::string err;
  REQUIRE(parse_config(R"({"check_back":{"secret":"0123456789abcdef","timeout_ms":250,
      "threads":3,"checks_default":7,"backoff_base_ms":20,"backoff_max_ms":40}})",
                       &c, &err));
  CHECK(c.check_back.secret == "0123456789abcdef");
  CHECK(c.check_back.timeout_ms == 250);
  CHECK(c.check_back.threads == 3);
  CHECK(c.engine.check_back_checks_default == 7);
  CHECK(c.engine.check_back_backoff_base_ms == 20);
  CHECK(c.engine.check_back_backoff_max_ms == 40);
  struct Bad {
    const char* text;
    const char* error;
  };
  for (const Bad& b : {
           Bad{R"({"secret":"short"})", "check_back.secret: must be at least 16"},
           Bad{R"({"threads":0})", "check_back.threads"},
           Bad{R"({"checks_default":101})", "check_back.checks_default"},
           Bad{R"({"backoff_base_ms":50,"backoff_max_ms":40})", "check_back.backoff_max_ms"},
           Bad{R"({"colour":1})", "check_back.colour"},
       }) {
    Config d;
    INFO(b.text);
    CHECK_FALSE(parse_config(std::string(R"({"check_back":)") + b.text + "}", &d, &err));
    CHECK(err.find(b.error) != std::string::npos);
  }
}

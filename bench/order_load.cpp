#include "order_load.hpp"

#include <fmt/core.h>

#include <chrono>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "account_sums.hpp"
#include "http_load.hpp"
#include "server/http_client.hpp"
#include "workload.hpp"

namespace pointex::bench {
namespace {

using Clock = std::chrono::steady_clock;

/// Longest wait, after the run, for every order to complete (results come `latency_ms` later).
constexpr auto drain_max = std::chrono::seconds(120);

Clock::duration to_duration(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::uint64_t ns_between(Clock::time_point from, Clock::time_point to) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

/// The window's bounds and the open orders at each (completed = created - open growth).
struct Window {
  Clock::time_point from;
  Clock::time_point end;
  std::uint64_t open_at_from = 0;
  std::uint64_t open_at_end = 0;
};

/// Waits until `open()` is 0; the seconds it took (drain_max at most).
template <class Open>
double drain(Open open) {
  const auto started = Clock::now();
  while (open() != 0 && Clock::now() - started < drain_max) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::chrono::duration<double>(Clock::now() - started).count();
}

/// What the merchant should have received, against what it did, and the ledger's sums.
void check(const OrderLoadOptions& o, std::int64_t merchant_moved, bool sums_ok,
           const std::string& sums, OrderLoadResult* r) {
  const auto want = static_cast<std::int64_t>(r->expected_paid * o.points);
  r->conserved = sums_ok && merchant_moved == want && r->refused == 0;
  r->conservation_message = fmt::format(
      "{}; merchant +{} points (want {}: {} of {} payments succeed by the provider's rule, "
      "failure_rate {} seed {})",
      sums, merchant_moved, want, r->expected_paid, r->awaiting, o.failure_rate, o.payment_seed);
}

// ---------------------------------------------------------------------------------------------
// Embedded.

class Driver {
 public:
  Driver(Engine& engine, const OrderLoadOptions& o) : engine_(engine), o_(o), plan_(o) {}

  OrderLoadResult run() {
    const auto start = Clock::now();
    window_.from = start + to_duration(o_.warmup_s);
    window_.end = window_.from + to_duration(o_.duration_s);
    for (std::uint32_t c = 0; c < o_.clients; ++c) start_one();
    bool from_seen = false;
    bool end_seen = false;
    std::unique_lock<std::mutex> lock(mutex_);
    while (inflight_ > 0 || !end_seen) {
      const auto until = !from_seen ? window_.from : window_.end;
      done_.wait_until(lock, std::min(until, Clock::now() + std::chrono::milliseconds(100)));
      const auto now = Clock::now();
      if (!from_seen && now >= window_.from) {
        from_seen = true;
        window_.open_at_from = engine_.stats().open_processes;
      }
      if (!end_seen && now >= window_.end) {
        end_seen = true;
        window_.open_at_end = engine_.stats().open_processes;
      }
    }
    result_.seconds = o_.duration_s;
    const std::uint64_t growth =
        window_.open_at_end - std::min(window_.open_at_end, window_.open_at_from);
    result_.completed = result_.created - std::min(result_.created, growth);
    plan_.fill(&result_);
    return std::move(result_);
  }

 private:
  void start_one(bool reserved = false) {
    if (!reserved) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++inflight_;
    }
    const Order order = plan_.next();
    const auto started = Clock::now();
    // Answered on the engine's flows thread; the next order is asked for from there.
    engine_.create_order(order, [this, started](const Status& s, OrderOutcome o) {
      const auto now = Clock::now();
      const bool ok = s.is_ok() && o.order;
      plan_.answered(ok ? std::string(to_string(o.order->status)) : std::string(),
                     ok ? std::string(to_string(o.order->failure)) : std::string(),
                     ok ? o.order->payment_id : std::string(),
                     s.is_ok() ? std::string(to_string(o.result)) : s.to_string());
      bool again = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        again = now < window_.end && s.is_ok();
        if (!again) --inflight_;
        if (ok && now >= window_.from && now <= window_.end) ++result_.created;
        if (ok && started >= window_.from && now <= window_.end) {
          result_.latency.record(ns_between(started, now));
        }
        done_.notify_all();
      }
      if (again) start_one(/*reserved=*/true);
    });
  }

  Engine& engine_;
  const OrderLoadOptions& o_;
  OrderPlan plan_;
  Window window_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::uint32_t inflight_ = 0;
  OrderLoadResult result_;
};

// ---------------------------------------------------------------------------------------------
// HTTP: one blocking client per connection.

HttpLoadOptions http_options(const OrderLoadOptions& o) {
  HttpLoadOptions h;
  h.address = o.address;
  h.key = o.key;
  h.accounts = o.accounts;
  h.active = o.active;
  return h;
}

/// pointex_open_processes and pointex_committed_position from /metrics (0 when unreadable).
std::pair<std::uint64_t, std::uint64_t> daemon_state(client::HttpClient& c) {
  const client::HttpResult r = c.request("GET", "/metrics");
  const auto value = [&](const std::string& name) -> std::uint64_t {
    const auto at = r.body.find("\n" + name + " ");
    if (at == std::string::npos) return 0;
    return std::strtoull(r.body.c_str() + at + name.size() + 2, nullptr, 10);
  };
  return {value("pointex_open_processes"), value("pointex_committed_position")};
}

std::int64_t balance_http(client::HttpClient& c, const client::Headers& h, AccountId id,
                          std::uint64_t min_position) {
  const client::HttpResult r =
      c.request("GET", fmt::format("/v1/accounts/{}?min_position={}", id, min_position), {}, h);
  const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_object() ? j.value("balance", std::int64_t{0}) : 0;
}

}  // namespace

OrderPlan::OrderPlan(const OrderLoadOptions& o)
    : o_(o), rng_(o.seed), member_(0, o.active - 1), next_id_(o.first_id) {}

Order OrderPlan::next() {
  Order order;
  std::lock_guard<std::mutex> lock(mutex_);
  order.id = next_id_++;
  order.member_account = first_member + member_(rng_);
  order.merchant_account = merchant_id;
  order.points = o_.points;
  order.cash = {o_.cash, "EUR"};
  order.provider = order_provider;
  return order;
}

void OrderPlan::answered(const std::string& status, const std::string& failure,
                         const std::string& payment_id, const std::string& refusal) {
  const bool went_through = status == "awaiting_payment" || status == "completed" ||
                            (status == "failed" && failure == "payment_failed");
  std::lock_guard<std::mutex> lock(mutex_);
  if (!went_through) {
    if (refused_++ == 0) {
      first_refusal_ = status.empty() ? refusal : "status " + status + " " + failure;
    }
    return;
  }
  ++awaiting_;
  if (!simulated_payment_fails(o_.payment_seed, o_.failure_rate, payment_id)) ++expected_paid_;
}

void OrderPlan::fill(OrderLoadResult* r) const {
  std::lock_guard<std::mutex> lock(mutex_);
  r->awaiting = awaiting_;
  r->refused = refused_;
  r->first_refusal = first_refusal_;
  r->expected_paid = expected_paid_;
}

Status setup_orders(Engine& engine) {
  std::vector<AccountResult> results;
  return engine.create_accounts(
      {{merchant_id, bench_ledger, AccountKind::member, 0, 0, "merchant"}}, &results);
}

std::shared_ptr<PaymentProvider> bench_provider(const OrderLoadOptions& o) {
  SimulatedProviderOptions sim;
  sim.name = order_provider;
  sim.latency_ms = o.latency_ms;
  sim.failure_rate = o.failure_rate;
  sim.seed = o.payment_seed;
  return make_simulated_provider(sim);
}

OrderLoadResult run_order_load(Engine& engine, const OrderLoadOptions& o) {
  const Sums before = sums_of(engine, {merchant_id});
  OrderLoadResult r = Driver(engine, o).run();
  r.drain_s = drain([&] { return engine.stats().open_processes; });
  // The read models answer lookups: wait until they include every order's last step.
  const EngineStats at_end = engine.stats();
  while (engine.stats().projected_position < at_end.committed_position) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::vector<AccountId> ids{issuer_id, merchant_id};
  for (std::uint32_t i = 0; i < o.accounts; ++i) ids.push_back(first_member + i);
  const Sums all = sums_of(engine, ids);
  const Sums after = sums_of(engine, {merchant_id});
  check(o, after.balance - before.balance,
        all.all_found && all.balance == 0 && all.pending == 0 && at_end.open_processes == 0,
        fmt::format("sum of balances {}, pending {}, orders open {}", all.balance, all.pending,
                    at_end.open_processes),
        &r);
  return r;
}

OrderLoadResult run_order_load_http(const OrderLoadOptions& o) {
  OrderLoadResult r;
  std::string host;
  std::uint16_t port = 0;
  std::string error;
  const HttpLoadOptions h = http_options(o);
  if (!client::parse_url(o.address, &host, &port, &error) || !setup_http(h, host, port)) {
    r.conservation_message = "setup failed: " + error;
    return r;
  }
  const client::Headers auth = {{"Authorization", "Bearer " + o.key}};
  client::HttpClient admin(host, port, std::chrono::seconds(60));
  admin.request(
      "POST", "/v1/accounts",
      nlohmann::json{{"id", merchant_id}, {"ledger", bench_ledger}, {"kind", "member"}}.dump(),
      auth);
  const std::int64_t before = balance_http(admin, auth, merchant_id, 0);
  OrderPlan plan(o);
  Window window;
  window.from = Clock::now() + to_duration(o.warmup_s);
  window.end = window.from + to_duration(o.duration_s);
  std::mutex mutex;
  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < o.clients; ++t) {
    threads.emplace_back([&] {
      client::HttpClient c(host, port, std::chrono::seconds(30));
      for (auto now = Clock::now(); now < window.end; now = Clock::now()) {
        const Order order = plan.next();
        const nlohmann::json body = {
            {"id", order.id},
            {"member_account", order.member_account},
            {"merchant_account", order.merchant_account},
            {"points", order.points},
            {"cash", {{"amount", order.cash.amount}, {"currency", order.cash.currency}}},
            {"provider", order.provider}};
        const client::HttpResult res = c.request("POST", "/v1/orders", body.dump(), auth);
        const auto done = Clock::now();
        const nlohmann::json j = nlohmann::json::parse(res.body, nullptr, false);
        const bool ok = res.status == 200 && j.is_object();
        plan.answered(ok ? j.value("status", std::string()) : std::string(),
                      ok ? j.value("failure", std::string()) : std::string(),
                      ok && j.contains("payment") ? j["payment"].value("payment_id", "") : "",
                      fmt::format("HTTP {} {}{}", res.status, res.body.substr(0, 200), res.error));
        std::lock_guard<std::mutex> lock(mutex);
        if (ok && done >= window.from && done <= window.end) ++r.created;
        if (ok && now >= window.from && done <= window.end) {
          r.latency.record(ns_between(now, done));
        }
      }
    });
  }
  std::this_thread::sleep_until(window.from);
  window.open_at_from = daemon_state(admin).first;
  std::this_thread::sleep_until(window.end);
  window.open_at_end = daemon_state(admin).first;
  for (std::thread& t : threads) t.join();
  r.seconds = o.duration_s;
  const std::uint64_t growth =
      window.open_at_end - std::min(window.open_at_end, window.open_at_from);
  r.completed = r.created - std::min(r.created, growth);
  plan.fill(&r);
  r.drain_s = drain([&] { return daemon_state(admin).first; });
  const auto [open, committed] = daemon_state(admin);
  const Conservation c = check_conservation_http(h, host, port, committed, {merchant_id});
  check(o, balance_http(admin, auth, merchant_id, committed) - before, c.ok && open == 0,
        c.message + fmt::format(", orders open {}", open), &r);
  return r;
}

}  // namespace pointex::bench

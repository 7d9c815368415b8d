#include "exchange_load.hpp"

#include <fmt/core.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "account_sums.hpp"
#include "workload.hpp"

namespace pointex::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr LedgerId ledger_b = 2;
constexpr AccountId exchange_a = 2;  // on the bench ledger: receives the members' A-points
constexpr AccountId exchange_b = 3;  // on ledger B: pays the B-points
constexpr AccountId first_twin = 2'000'001;

Clock::duration to_duration(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

class Driver {
 public:
  Driver(Engine& engine, const ExchangeLoadOptions& o)
      : engine_(engine), o_(o), rng_(o.seed), member_(0, o.active - 1), next_id_(o.first_id) {}

  ExchangeLoadResult run() {
    const auto start = Clock::now();
    measure_from_ = start + to_duration(o_.warmup_s);
    end_ = measure_from_ + to_duration(o_.duration_s);
    for (std::uint32_t c = 0; c < o_.clients; ++c) start_one();
    auto next_progress = start + std::chrono::seconds(1);
    std::unique_lock<std::mutex> lock(mutex_);
    while (inflight_ > 0) {
      done_.wait_until(lock, next_progress);
      const auto now = Clock::now();
      if (now >= next_progress) {
        fmt::print(stderr, "  exchange {:>5.1f}s: {} exchanges answered, {} in flight\n",
                   std::chrono::duration<double>(now - start).count(), result_.ok + result_.failed,
                   inflight_);
        next_progress += std::chrono::seconds(1);
      }
    }
    result_.seconds = o_.duration_s;
    return std::move(result_);
  }

 private:
  /// `reserved`: the caller counted it in inflight_ already.
  void start_one(bool reserved = false) {
    Exchange ex;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const std::uint32_t m = member_(rng_);
      ex = {next_id_++, first_member + m, first_twin + m, o_.amount};
      if (!reserved) ++inflight_;
    }
    const auto started = Clock::now();
    // Answered on the engine's flows thread; the next exchange is asked for from there.
    engine_.exchange(ex, [this, started](const Status& s, ExchangeOutcome outcome) {
      const auto now = Clock::now();
      bool again = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        // The next one is counted before this one leaves, so inflight_ reaches 0 (and run()
        // returns) only when no callback will touch this driver again.
        again = now < end_ && s.is_ok();
        if (!again) --inflight_;
        if (!s.is_ok() || outcome.result != ExchangeResult::ok) {
          if (result_.failed++ == 0) {
            result_.first_failure =
                s.is_ok() ? std::string(to_string(outcome.result)) : s.to_string();
          }
        } else {
          ++result_.ok;
          if (now >= measure_from_ && now <= end_) ++result_.exchanges;
          if (started >= measure_from_ && now <= end_) {
            result_.latency.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(now - started).count()));
          }
        }
        done_.notify_all();
      }
      if (again) start_one(/*reserved=*/true);
    });
  }

  Engine& engine_;
  const ExchangeLoadOptions& o_;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<std::uint32_t> member_;
  std::uint64_t next_id_;
  Clock::time_point measure_from_;
  Clock::time_point end_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::uint32_t inflight_ = 0;
  ExchangeLoadResult result_;
};

}  // namespace

Status setup_exchange(Engine& engine, std::uint32_t active) {
  LedgerResult lr{};
  Status s = engine.create_ledger({ledger_b, "BENCHB", "bench points B", 0, 0}, &lr);
  if (!s.is_ok()) return s;
  std::vector<AccountSpec> specs{
      {exchange_a, bench_ledger, AccountKind::issuer, 0, 0, "exchange A"},
      {exchange_b, ledger_b, AccountKind::issuer, 0, 0, "exchange B"}};
  for (std::uint32_t i = 0; i < active; ++i) {
    specs.push_back({first_twin + i, ledger_b, AccountKind::member,
                     account_flags::debits_must_not_exceed_credits, 0, ""});
    if (specs.size() == engine.options().batch_items_max || i + 1 == active) {
      std::vector<AccountResult> results;
      s = engine.create_accounts(std::move(specs), &results);
      if (!s.is_ok()) return s;
      specs.clear();
    }
  }
  Rate rate;
  rate.from_ledger = bench_ledger;
  rate.to_ledger = ledger_b;
  rate.numerator = 3;
  rate.denominator = 2;
  rate.fee_bps = 100;
  rate.from_exchange_account = exchange_a;
  rate.to_exchange_account = exchange_b;
  RateResult rr{};
  s = engine.set_rate(rate, &rr);
  if (!s.is_ok()) return s;
  if (rr != RateResult::ok) return Status::invalid_argument(std::string(to_string(rr)));
  return Status::ok();
}

ExchangeLoadResult run_exchange_load(Engine& engine, const ExchangeLoadOptions& o) {
  const Sums a_before = sums_of(engine, {exchange_a});
  const Sums b_before = sums_of(engine, {exchange_b});
  ExchangeLoadResult r = Driver(engine, o).run();
  // The read models answer lookups: wait until they include every exchange's last step.
  const EngineStats at_end = engine.stats();
  while (engine.stats().projected_position < at_end.committed_position) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::vector<AccountId> ledger_a{issuer_id, exchange_a};
  std::vector<AccountId> ledger_b_ids{exchange_b};
  for (std::uint32_t i = 0; i < o.accounts; ++i) ledger_a.push_back(first_member + i);
  for (std::uint32_t i = 0; i < o.active; ++i) ledger_b_ids.push_back(first_twin + i);
  const Sums a = sums_of(engine, ledger_a);
  const Sums b = sums_of(engine, ledger_b_ids);
  const Sums a_after = sums_of(engine, {exchange_a});
  const Sums b_after = sums_of(engine, {exchange_b});
  const std::uint64_t gross = o.amount * 3 / 2;
  const std::uint64_t fee = (gross * 100 + 9'999) / 10'000;
  const std::int64_t moved_a = a_after.balance - a_before.balance;
  const std::int64_t moved_b = b_before.balance - b_after.balance;
  const auto want_a = static_cast<std::int64_t>(r.ok * o.amount);
  const auto want_b = static_cast<std::int64_t>(r.ok * (gross - fee));
  r.conserved = a.all_found && b.all_found && a.balance == 0 && b.balance == 0 && a.pending == 0 &&
                b.pending == 0 && moved_a == want_a && moved_b == want_b;
  r.conservation_message = fmt::format(
      "sums of balances: ledger A {}, ledger B {}; pending A {} B {}; exchange account A +{} "
      "(want {}), B -{} (want {})",
      a.balance, b.balance, a.pending, b.pending, moved_a, want_a, moved_b, want_b);
  return r;
}

}  // namespace pointex::bench

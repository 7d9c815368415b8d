// pointex-bench: throughput and latency of the engine through the embedded API.
//
// Workloads (bench/workload.hpp; the same definitions for every system measured): W1 uniform,
// W2 hot, W3 earn-redeem, W4 two-phase.
// Modes:
//   batched  (default) closed loop: `clients` submitters each keep one batch of `batch`
//            transfers in flight and send the next when it is answered (the best case).
//   single   one transfer per call with `clients` calls in flight (like a database client with
//            `clients` connections): the same as batched with `--batch 1`.
//   --rate R open loop: R transfers/s arrive in batches of `batch` whatever the answers; latency
//            runs from each batch's scheduled time (no coordinated omission).
// Latency is per operation (one batch; for W4 the pending batch and then its posts and voids),
// until every `ok` in it is durable: it ends when the engine calls back with the answer. After each
// run: every result is checked against the workload's definition (W3's planned failures exactly),
// and conservation (per ledger the balances sum to zero, no member below zero, nothing pending);
// `--verify` also audits the closed data dir with Engine::verify. Any failure exits non-zero.

#include <fmt/core.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <pointex/engine.hpp>
#include <random>
#include <thread>

#include "exchange_load.hpp"
#include "histogram.hpp"
#include "http_load.hpp"
#include "order_load.hpp"
#include "workload.hpp"

using namespace pointex;
using Clock = std::chrono::steady_clock;
using bench::bench_ledger;
using bench::first_member;
using bench::issuer_id;
using bench::member_funding;
using bench::ms;
using bench::OpKind;

namespace {

/// Open loop: transfers submitted and not answered at most; arrivals past it wait (their
/// latency still counts from their scheduled time).
constexpr std::uint64_t open_loop_inflight_transfers_max = 200'000;

struct Config {
  /// A workload name or alias, or "all".
  std::string workload = "all";
  std::uint32_t accounts = 100'000;
  /// Members the workloads use (the first `active` of them); 0: all.
  std::uint32_t active = 0;
  /// batched or single.
  std::string mode = "batched";
  std::uint32_t batch = 8190;
  std::uint32_t clients = 4;
  /// Open loop: transfers per second offered (0: closed loop).
  double rate = 0;
  double duration_s = 10;
  double warmup_s = 2;
  std::string durability = "sync";
  std::uint32_t threads = 0;
  std::string data_dir;
  std::string json_path;
  bool keep = false;
  /// The data dir was set up by an earlier run with the same --accounts: do not set up again.
  bool reuse = false;
  /// Engine option projection_lag_max (-1: the engine's default).
  std::int64_t projection_lag_max = -1;
  /// Engine option transfer_records_in_memory_max (-1: the engine's default).
  std::int64_t records_in_memory_max = -1;
  /// The bench ledger's expiry_days (0: its points never expire; else members keep expiry lots
  /// in the read models, docs/expiry.md).
  std::uint32_t expiry_days = 0;
  std::uint64_t seed = 42;
  double query_s = 3;
  std::uint32_t query_threads = 2;
  /// Only the workload runs: no query or restart measurements.
  bool runs_only = false;
  /// After closing, audit the data dir with Engine::verify.
  bool verify = false;
  bool quick = false;
  double earn_share = 0.7;
  double redeem_fail_share = 0.1;
  double post_share = 0.5;
  /// W6: the simulated provider's result latency, failed share and seed (0: --seed).
  std::uint32_t payment_latency_ms = 10;
  double payment_failure_rate = 0.1;
  std::uint64_t payment_seed = 0;
};

struct QueryResult {
  double account_reads_per_s = 0;
  double history_pages_per_s = 0;
  std::uint32_t history_page = 50;
};

struct RestartResult {
  double close_s = 0;
  double open_s = 0;
  std::uint64_t events = 0;
};

struct RunResult {
  std::string workload;
  double seconds = 0;
  /// Completed in the measured window: operations, transfers in them (W4: pending
  /// transfers, each with its post or void), and W4's posts and voids.
  std::uint64_t operations = 0;
  std::uint64_t transfers = 0;
  std::uint64_t completions = 0;
  /// Every answer of the run (warm-up included) by kind and result, and the failures the
  /// workload planned (W3).
  bench::Tally tally;
  std::uint64_t planned_failures = 0;
  std::string outcome_problems;
  bench::Histogram latency;
  bool conserved = false;
  std::string conservation_message;
  EngineStats stats;
  /// Events the read models were behind when the load stopped, and how long they took to
  /// catch up afterwards.
  std::uint64_t projection_lag_events = 0;
  double projection_catch_up_s = 0;
};

int die(const std::string& what, const Status& s) {
  fmt::print(stderr, "pointex-bench: {}: {}\n", what, s.to_string());
  std::exit(2);
}

/// Keeps up to `max` asynchronous submissions in flight; wait() returns the first failure.
class Pipeline {
 public:
  explicit Pipeline(std::uint32_t max) : max_(max) {}
  /// Blocks while `max` are in flight; returns a callback for the next submission.
  std::function<void(const Status&)> next() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return inflight_ < max_; });
    ++inflight_;
    return [this](const Status& s) {
      std::lock_guard<std::mutex> guard(mutex_);
      if (!s.is_ok() && failure_.is_ok()) failure_ = s;
      --inflight_;
      cv_.notify_all();
    };
  }
  Status wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return inflight_ == 0; });
    return failure_;
  }

 private:
  const std::uint32_t max_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint32_t inflight_ = 0;
  Status failure_;
};

/// Resident memory of this process (VmRSS) and its peak (VmHWM), in MiB.
std::pair<double, double> rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  double rss = 0;
  double hwm = 0;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stod(line.substr(6)) / 1024.0;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::stod(line.substr(6)) / 1024.0;
  }
  return {rss, hwm};
}

Status setup_accounts(Engine& engine, const Config& cfg) {
  LedgerResult lr{};
  Status s = engine.create_ledger({bench_ledger, "BENCH", "bench points", cfg.expiry_days, 0}, &lr);
  if (!s.is_ok()) return s;
  const auto started = Clock::now();
  Pipeline pipeline(4);
  std::vector<AccountSpec> specs{{issuer_id, bench_ledger, AccountKind::issuer, 0, 0, "issuer"}};
  for (std::uint32_t i = 0; i < cfg.accounts; ++i) {
    specs.push_back({first_member + i, bench_ledger, AccountKind::member,
                     account_flags::debits_must_not_exceed_credits, 0, ""});
    if (specs.size() == engine.options().batch_items_max || i + 1 == cfg.accounts) {
      auto done = pipeline.next();
      engine.create_accounts(std::move(specs),
                             [done](const Status& st, std::vector<AccountResult>) { done(st); });
      specs.clear();
    }
    if ((i + 1) % 1'000'000 == 0) fmt::print(stderr, "  {} accounts created\n", i + 1);
  }
  s = pipeline.wait();
  if (!s.is_ok()) return s;
  // Fund every member from the issuer so that uniform transfers succeed.
  std::vector<Transfer> funding;
  for (std::uint32_t i = 0; i < cfg.accounts; ++i) {
    funding.push_back(
        {i + 1ULL, issuer_id, first_member + i, member_funding, bench_ledger, 1, 0, 0, 0, 0});
    if (funding.size() == engine.options().batch_items_max || i + 1 == cfg.accounts) {
      auto done = pipeline.next();
      engine.submit_transfers(std::move(funding),
                              [done](const Status& st, std::vector<TransferOutcome>) { done(st); });
      funding.clear();
    }
    if ((i + 1) % 1'000'000 == 0) fmt::print(stderr, "  {} accounts funded\n", i + 1);
  }
  s = pipeline.wait();
  const auto [rss, hwm] = rss_mib();
  fmt::print(stderr, "setup: {} accounts in {:.1f} s; RSS {:.0f} MiB (peak {:.0f} MiB)\n",
             cfg.accounts, std::chrono::duration<double>(Clock::now() - started).count(), rss, hwm);
  return s;
}

/// Runs one workload and returns its figures. Closed loop (`rate` 0): `clients` operations in
/// flight, each starting the next when answered. Open loop (`rate` > 0): an operation (a batch
/// of `batch` transfers) is due every batch/rate seconds whatever the answers, and its latency
/// runs from that scheduled time, so a stall delays the operations behind it in the figures too
/// (no coordinated omission). An operation is one batch; for W4 it is the batch of pending
/// transfers and then the batch of their posts and voids.
///
/// Only this thread makes batches and submits; engine callbacks just queue their answers.
class Driver {
 public:
  Driver(Engine& engine, const Config& cfg, bench::Workload workload, bench::Generator& generator)
      : engine_(engine), cfg_(cfg), workload_(workload), generator_(generator) {}

  RunResult run() {
    const auto start = Clock::now();
    measure_from_ = start + to_duration(cfg_.warmup_s);
    end_ = measure_from_ + to_duration(cfg_.duration_s);
    const bool open_loop = cfg_.rate > 0;
    const Clock::duration interval =
        open_loop ? to_duration(static_cast<double>(cfg_.batch) / cfg_.rate) : Clock::duration{};
    Clock::time_point next_arrival = start;
    if (!open_loop) {
      for (std::uint32_t c = 0; c < cfg_.clients; ++c) start_operation(Clock::now());
    }
    auto next_progress = start + std::chrono::seconds(1);
    std::deque<Answer> answers;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        Clock::time_point wake = next_progress;
        if (open_loop && next_arrival < end_) wake = std::min(wake, next_arrival);
        answered_.wait_until(lock, wake, [&] { return !answers_.empty(); });
        answers.swap(answers_);
      }
      for (Answer& a : answers) on_answer(a);
      answers.clear();
      const auto now = Clock::now();
      if (open_loop) {
        // Every due arrival starts now, unless the in-flight cap holds it back (its latency
        // still counts from its scheduled time).
        while (next_arrival <= now && next_arrival < end_ &&
               inflight_transfers_ + cfg_.batch <= open_loop_inflight_transfers_max) {
          start_operation(next_arrival);
          next_arrival += interval;
        }
      }
      if (now >= next_progress) {
        fmt::print(stderr, "  {} {:>5.1f}s: {} transfers, {} operations in flight\n",
                   bench::to_string(workload_), std::chrono::duration<double>(now - start).count(),
                   transfers_answered_, inflight_operations_);
        next_progress += std::chrono::seconds(1);
      }
      const bool arrivals_done = !open_loop || next_arrival >= end_;
      // Closed loop: an operation answered before the end starts the next at once, so none
      // is in flight only after the end.
      if (inflight_operations_ == 0 && arrivals_done) break;
    }
    result_.workload = std::string(bench::to_string(workload_));
    result_.seconds = cfg_.duration_s;
    result_.planned_failures = generator_.planned_failures() - planned_at_start_;
    return std::move(result_);
  }

 private:
  struct Operation {
    /// Scheduled (open loop) or sent (closed loop): latency runs from here.
    Clock::time_point start;
    std::vector<Transfer> first;
    std::vector<OpKind> first_kinds;
    std::vector<OpKind> second_kinds;
    bool in_second_phase = false;
  };
  struct Answer {
    std::shared_ptr<Operation> operation;
    Status status;
    std::vector<TransferOutcome> outcomes;
    /// When the engine's callback ran: latency ends here, not when this thread gets to the
    /// answer (with 64 single transfers in flight it handles many answers per wake-up, and
    /// submits the next operation of each before it reaches the next answer).
    Clock::time_point at;
  };

  static Clock::duration to_duration(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  void start_operation(Clock::time_point start) {
    auto op = std::make_shared<Operation>();
    op->start = start;
    std::vector<Transfer> batch;
    generator_.first_phase(cfg_.batch, &batch, &op->first_kinds);
    if (generator_.two_phase()) op->first = batch;
    ++inflight_operations_;
    inflight_transfers_ += batch.size();
    submit(op, std::move(batch));
  }

  void submit(const std::shared_ptr<Operation>& op, std::vector<Transfer> batch) {
    engine_.submit_transfers(std::move(batch),
                             [this, op](const Status& s, std::vector<TransferOutcome> out) {
                               const auto at = Clock::now();
                               std::lock_guard<std::mutex> lock(mutex_);
                               answers_.push_back({op, s, std::move(out), at});
                               answered_.notify_one();
                             });
  }

  void on_answer(Answer& a) {
    if (!a.status.is_ok()) die("submit", a.status);
    Operation& op = *a.operation;
    const std::vector<OpKind>& kinds = op.in_second_phase ? op.second_kinds : op.first_kinds;
    for (std::size_t i = 0; i < a.outcomes.size() && i < kinds.size(); ++i) {
      result_.tally.add(kinds[i], a.outcomes[i].result);
    }
    transfers_answered_ += a.outcomes.size();
    inflight_transfers_ -= op.in_second_phase ? op.second_kinds.size() : op.first_kinds.size();
    if (!op.in_second_phase && generator_.two_phase()) {
      std::vector<TransferResult> results;
      results.reserve(a.outcomes.size());
      for (const TransferOutcome& o : a.outcomes) results.push_back(o.result);
      std::vector<Transfer> second;
      generator_.second_phase(op.first, results, &second, &op.second_kinds);
      op.in_second_phase = true;
      if (!second.empty()) {
        inflight_transfers_ += second.size();
        submit(a.operation, std::move(second));
        return;
      }
    }
    complete(op, a.at);
  }

  void complete(const Operation& op, Clock::time_point answered) {
    const std::uint64_t first = op.first_kinds.size();
    const std::uint64_t second = op.second_kinds.size();
    --inflight_operations_;
    // Throughput: operations completed inside the measured window.
    if (answered >= measure_from_ && answered <= end_) {
      result_.transfers += first;
      result_.completions += second;
      result_.operations += 1;
    }
    // Latency: operations started inside the window (closed loop: and answered inside it;
    // open loop: however late they were answered).
    if (op.start >= measure_from_ && op.start < end_ && (cfg_.rate > 0 || answered <= end_)) {
      result_.latency.record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(answered - op.start).count()));
    }
    const auto now = Clock::now();
    if (cfg_.rate <= 0 && now < end_) start_operation(now);
  }

  Engine& engine_;
  const Config& cfg_;
  bench::Workload workload_;
  bench::Generator& generator_;
  const std::uint64_t planned_at_start_ = generator_.planned_failures();
  Clock::time_point measure_from_;
  Clock::time_point end_;
  std::mutex mutex_;
  std::condition_variable answered_;
  std::deque<Answer> answers_;
  // Touched by the driving thread only.
  std::uint64_t inflight_operations_ = 0;
  std::uint64_t inflight_transfers_ = 0;
  std::uint64_t transfers_answered_ = 0;
  RunResult result_;
};

/// Conservation over the issuer and the active members; each member outside the active set
/// still holds exactly its funding (a sample of them is looked up to check it).
void check_conservation(Engine& engine, const Config& cfg, RunResult& r) {
  std::vector<AccountId> ids{issuer_id};
  for (std::uint32_t i = 0; i < cfg.active; ++i) ids.push_back(first_member + i);
  const std::uint32_t idle = cfg.accounts - cfg.active;
  for (std::uint32_t k = 0; k < std::min<std::uint32_t>(idle, 1000); ++k) {
    ids.push_back(first_member + cfg.active +
                  static_cast<std::uint32_t>((static_cast<std::uint64_t>(k) * idle) / 1000));
  }
  std::vector<std::optional<Account>> accounts;
  const Status s = engine.lookup_accounts(ids, &accounts);
  if (!s.is_ok()) die("lookup", s);
  std::int64_t sum = 0;
  std::uint64_t negative = 0;
  std::uint64_t pending = 0;
  std::uint64_t idle_changed = 0;
  for (std::size_t i = 0; i < accounts.size(); ++i) {
    const Account& a = *accounts[i];
    if (i > cfg.active) {  // a sampled idle member
      idle_changed += a.balance() != static_cast<std::int64_t>(member_funding);
      continue;
    }
    sum += a.balance();
    pending += a.debits_pending + a.credits_pending;
    if (a.spec.kind == AccountKind::member && a.balance() < 0) ++negative;
  }
  sum += static_cast<std::int64_t>(idle) * static_cast<std::int64_t>(member_funding);
  r.conserved = sum == 0 && negative == 0 && pending == 0 && idle_changed == 0;
  r.conservation_message =
      fmt::format("sum of balances {}, members below zero {}, pending {}", sum, negative, pending);
}

void measure_projection(Engine& engine, RunResult& r) {
  const EngineStats at_end = engine.stats();
  r.projection_lag_events = at_end.committed_position - at_end.projected_position;
  const auto started = Clock::now();
  while (engine.stats().projected_position < at_end.committed_position) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  r.projection_catch_up_s = std::chrono::duration<double>(Clock::now() - started).count();
}

/// Read-side throughput: `threads` callers each doing blocking reads for `seconds`.
template <class Read>
double reads_per_s(std::uint32_t threads, double seconds, Read read) {
  std::atomic<std::uint64_t> done{0};
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  std::vector<std::thread> workers;
  for (std::uint32_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      std::uint64_t n = 0;
      while (Clock::now() < end) {
        read(rng);
        ++n;
      }
      done += n;
    });
  }
  for (auto& w : workers) w.join();
  return static_cast<double>(done.load()) / seconds;
}

QueryResult measure_queries(Engine& engine, const Config& cfg) {
  QueryResult q;
  std::uniform_int_distribution<std::uint32_t> member(0, cfg.accounts - 1);
  q.account_reads_per_s = reads_per_s(cfg.query_threads, cfg.query_s, [&](std::mt19937_64& rng) {
    std::optional<Account> a;
    const Status s = engine.read_account(first_member + member(rng), 0, &a);
    if (!s.is_ok() || !a) die("read_account", s);
  });
  q.history_pages_per_s = reads_per_s(cfg.query_threads, cfg.query_s, [&](std::mt19937_64& rng) {
    HistoryQuery hq;
    hq.account = first_member + member(rng);
    hq.limit = q.history_page;
    HistoryPage page;
    const Status s = engine.account_history(hq, &page);
    if (!s.is_ok() || page.events.empty()) die("account_history", s);
  });
  return q;
}

std::string fresh_data_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "pointex-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) die("mkdtemp", Status::io_error(tmpl));
  return tmpl;
}

nlohmann::json to_json(const RunResult& r, const Config& cfg) {
  nlohmann::json results = nlohmann::json::object();
  r.tally.for_each([&](OpKind kind, TransferResult result, std::uint64_t n) {
    results[std::string(bench::to_string(kind))][std::string(to_string(result))] = n;
  });
  const double seconds = r.seconds;
  return {{"workload", r.workload},
          {"mode", cfg.rate > 0 ? "open" : cfg.mode},
          {"batch", cfg.batch},
          {"clients", cfg.rate > 0 ? 0 : cfg.clients},
          {"rate_offered", cfg.rate},
          {"seconds", seconds},
          {"operations", r.operations},
          {"transfers", r.transfers},
          {"completions", r.completions},
          {"transfers_per_s", static_cast<double>(r.transfers) / seconds},
          {"events_per_s", static_cast<double>(r.transfers + r.completions) / seconds},
          {"latency_ms", bench::latency_json(r.latency)},
          {"results", results},
          {"planned_failures", r.planned_failures},
          {"outcomes_ok", r.outcome_problems.empty()},
          {"outcome_problems", r.outcome_problems},
          {"projection_lag_events", r.projection_lag_events},
          {"projection_catch_up_s", r.projection_catch_up_s},
          {"commit_groups", r.stats.commit_groups},
          {"committed_events", r.stats.committed_events},
          {"conserved", r.conserved},
          {"conservation", r.conservation_message}};
}

/// The row of a workload of processes (W5, W6): operations/s, failures, latency, conservation;
/// `note` says what one operation is.
void print_process_row(const char* workload, double per_s, std::uint64_t failed,
                       const bench::Histogram& latency, bool conserved, const char* note) {
  fmt::print("{:<12} {:>12.0f} {:>9} {:>9} {:>9.2f} {:>9.2f} {:>9.2f} {:>10}   ({})\n", workload,
             per_s, failed, 0, ms(latency.quantile(0.5)), ms(latency.quantile(0.99)),
             ms(latency.quantile(0.999)), conserved ? "yes" : "NO", note);
}

bool is_exchange(const std::string& workload) {
  return workload == "exchange" || workload == "w5" || workload == "W5";
}

/// W5 (bench/exchange_load.hpp): runs, prints its row, returns its JSON; `*good` false when a
/// check failed.
nlohmann::json run_exchange(Engine& engine, const Config& cfg, std::uint64_t first_id, bool* good) {
  const Status s = bench::setup_exchange(engine, cfg.active);
  if (!s.is_ok()) die("exchange setup", s);
  bench::ExchangeLoadOptions o;
  o.accounts = cfg.accounts;
  o.active = cfg.active;
  o.clients = cfg.clients;
  o.duration_s = cfg.duration_s;
  o.warmup_s = cfg.warmup_s;
  o.seed = cfg.seed;
  o.first_id = first_id;
  const bench::ExchangeLoadResult r = bench::run_exchange_load(engine, o);
  const double per_s = static_cast<double>(r.exchanges) / r.seconds;
  fmt::print(stderr, "  exchange: {} ok, {} failed{}{}\n", r.ok, r.failed,
             r.failed != 0 ? ", first: " : "", r.first_failure);
  print_process_row("exchange", per_s, r.failed, r.latency, r.conserved,
                    "exchanges/s; each is 2 pending legs and 2 posts");
  if (!r.conserved) fmt::print(stderr, "conservation FAILED: {}\n", r.conservation_message);
  *good = r.conserved && r.failed == 0;
  return {{"workload", "exchange"},
          {"mode", "exchange"},
          {"batch", 1},
          {"clients", cfg.clients},
          {"rate_offered", 0},
          {"seconds", r.seconds},
          {"operations", r.exchanges},
          {"exchanges", r.exchanges},
          {"exchanges_per_s", per_s},
          {"transfers", r.exchanges},
          {"transfers_per_s", per_s},
          // started, 2 pending legs, decided, 2 posts, completed
          {"events_per_s", per_s * 7},
          {"latency_ms", bench::latency_json(r.latency)},
          {"results", {{"exchange", {{"ok", r.ok}, {"failed", r.failed}}}}},
          {"planned_failures", 0},
          {"outcomes_ok", r.failed == 0},
          {"outcome_problems", r.first_failure},
          {"conserved", r.conserved},
          {"conservation", r.conservation_message}};
}

bool is_orders(const std::string& workload) {
  return workload == "orders" || workload == "w6" || workload == "W6";
}

bench::OrderLoadOptions order_options(const Config& cfg, std::uint64_t first_id) {
  bench::OrderLoadOptions o;
  o.accounts = cfg.accounts;
  o.active = cfg.active;
  o.clients = cfg.clients;
  o.duration_s = cfg.duration_s;
  o.warmup_s = cfg.warmup_s;
  o.seed = cfg.seed;
  o.latency_ms = cfg.payment_latency_ms;
  o.failure_rate = cfg.payment_failure_rate;
  o.payment_seed = cfg.payment_seed != 0 ? cfg.payment_seed : cfg.seed;
  o.first_id = first_id;
  return o;
}

/// W6 (bench/order_load.hpp), embedded or over HTTP: prints its row, returns its JSON; `*good`
/// false when a check failed.
nlohmann::json report_orders(const bench::OrderLoadResult& r, const Config& cfg, const char* mode,
                             bool* good) {
  const double per_s = static_cast<double>(r.created) / r.seconds;
  const double completed_per_s = static_cast<double>(r.completed) / r.seconds;
  fmt::print(stderr,
             "  orders: {} created, {} refused{}{}; {} paid by the provider's rule; "
             "{:.0f} completed/s in the window; drained in {:.2f} s\n",
             r.awaiting, r.refused, r.refused != 0 ? ", first: " : "", r.first_refusal,
             r.expected_paid, completed_per_s, r.drain_s);
  print_process_row("orders", per_s, r.refused, r.latency, r.conserved,
                    "orders created/s; each: reserve, payment, then post or void");
  if (!r.conserved) fmt::print(stderr, "conservation FAILED: {}\n", r.conservation_message);
  *good = r.conserved && r.refused == 0 && r.awaiting > 0;
  return {
      {"workload", "orders"},
      {"mode", mode},
      {"batch", 1},
      {"clients", cfg.clients},
      {"rate_offered", 0},
      {"seconds", r.seconds},
      {"operations", r.created},
      {"orders", r.created},
      {"orders_per_s", per_s},
      {"completed_per_s", completed_per_s},
      {"drain_s", r.drain_s},
      {"transfers", r.created},
      {"transfers_per_s", per_s},
      // started, reservation, reserved, payment_created, decided, post/void, completed
      {"events_per_s", per_s * 7},
      {"latency_ms", bench::latency_json(r.latency)},
      {"results",
       {{"order",
         {{"created", r.awaiting}, {"refused", r.refused}, {"paid_by_rule", r.expected_paid}}}}},
      {"payment",
       {{"latency_ms", cfg.payment_latency_ms}, {"failure_rate", cfg.payment_failure_rate}}},
      {"planned_failures", 0},
      {"outcomes_ok", r.refused == 0},
      {"outcome_problems", r.first_refusal},
      {"conserved", r.conserved},
      {"conservation", r.conservation_message}};
}

/// Fills in what --quick and --mode imply and checks the options against each other. Returns
/// an error message, empty when they are fine.
std::string settle(Config& cfg, const CLI::App& app) {
  if (cfg.quick) {
    if (app.count("--accounts") == 0) cfg.accounts = 10'000;
    if (app.count("--duration") == 0) cfg.duration_s = 2;
    if (app.count("--warmup") == 0) cfg.warmup_s = 0.5;
    if (app.count("--query-seconds") == 0) cfg.query_s = 0.5;
  }
  if (cfg.mode == "single") {
    if (app.count("--batch") != 0 && cfg.batch != 1) {
      return "--mode single sends one transfer per call: --batch must be 1 or not given";
    }
    cfg.batch = 1;
    if (app.count("--clients") == 0) cfg.clients = 64;
  }
  if (cfg.rate > 0 && app.count("--clients") != 0) {
    return "--rate (open loop) and --clients (closed loop) exclude each other";
  }
  if (cfg.rate > 0 && static_cast<double>(cfg.batch) / cfg.rate > cfg.duration_s) {
    return fmt::format("--rate {} with --batch {}: fewer than one batch per --duration", cfg.rate,
                       cfg.batch);
  }
  if (is_exchange(cfg.workload) || is_orders(cfg.workload)) {
    if (cfg.rate > 0 || cfg.mode != "batched" || app.count("--batch") != 0) {
      return "--workload " + cfg.workload +
             " runs --clients operations in flight: no --rate, --mode or --batch";
    }
    if (app.count("--clients") == 0) cfg.clients = 64;
  } else if (cfg.workload != "all" && !bench::parse_workload(cfg.workload)) {
    return "--workload: " + cfg.workload + " is not a workload";
  }
  if (cfg.active == 0) cfg.active = cfg.accounts;
  if (cfg.active < 2 || cfg.active > cfg.accounts) {
    return fmt::format("--active must be 2 to --accounts ({})", cfg.accounts);
  }
  return {};
}

void add_options(CLI::App& app, Config& cfg) {
  app.add_option("--workload", cfg.workload,
                 "uniform, hot, earn-redeem, two-phase (or w1..w4), or all (W1-W4); exchange "
                 "(w5: the alliance exchange, --clients in flight, 64 unless given); orders (w6: "
                 "points + cash orders with the simulated provider, likewise)")
      ->check(
          CLI::IsMember({"uniform", "hot", "earn-redeem", "two-phase", "exchange", "orders", "w1",
                         "w2", "w3", "w4", "w5", "w6", "W1", "W2", "W3", "W4", "W5", "W6", "all"}))
      ->capture_default_str();
  app.add_option("--accounts", cfg.accounts, "member accounts")
      ->check(CLI::Range(2U, 50'000'000U))
      ->capture_default_str();
  app.add_option("--active", cfg.active,
                 "members the workloads use, the first N (0: all); the rest stay idle")
      ->capture_default_str();
  app.add_option("--mode", cfg.mode,
                 "batched: batches of --batch, --clients in flight; single: one transfer per "
                 "call, --clients (default 64) in flight")
      ->check(CLI::IsMember({"batched", "single"}))
      ->capture_default_str();
  app.add_option("--batch", cfg.batch, "transfers per submitted batch")
      ->check(CLI::Range(1U, 8190U))
      ->capture_default_str();
  app.add_option("--clients", cfg.clients, "operations in flight (closed loop)")
      ->check(CLI::Range(1U, 4096U))
      ->capture_default_str();
  app.add_option("--rate", cfg.rate,
                 "open loop: offer this many transfers/s (in batches of --batch); latency from "
                 "each batch's scheduled time")
      ->check(CLI::Range(1.0, 10'000'000.0));
  app.add_option("--duration", cfg.duration_s, "measured seconds per workload")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--warmup", cfg.warmup_s, "unmeasured seconds before")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  app.add_option("--durability", cfg.durability, "sync (fsync per group) or async")
      ->check(CLI::IsMember({"sync", "async"}))
      ->capture_default_str();
  app.add_option("--threads", cfg.threads, "actor scheduler threads (0: one per core)")
      ->check(CLI::Range(0U, 1024U))
      ->capture_default_str();
  app.add_option("--data-dir", cfg.data_dir, "data dir (default: a fresh temporary one)");
  app.add_option("--json", cfg.json_path, "write the figures as JSON to this file");
  app.add_flag("--keep", cfg.keep, "keep the temporary data dir");
  app.add_option("--projection-lag-max", cfg.projection_lag_max,
                 "engine option projection_lag_max (events; 0: unbounded; default: the engine's)")
      ->check(CLI::Range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
  app.add_option("--records-in-memory-max", cfg.records_in_memory_max,
                 "engine option transfer_records_in_memory_max (records; 0: no budget; default: "
                 "the engine's)")
      ->check(CLI::Range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
  app.add_option("--expiry-days", cfg.expiry_days,
                 "the bench ledger's expiry_days (0: points never expire; else members keep "
                 "expiry lots in the read models)")
      ->check(CLI::Range(0U, 36500U))
      ->capture_default_str();
  app.add_flag("--reuse", cfg.reuse,
               "the --data-dir was set up by an earlier run with the same --accounts (kept with "
               "--keep): skip the setup");
  app.add_option("--seed", cfg.seed, "random seed")->capture_default_str();
  app.add_option("--query-seconds", cfg.query_s, "seconds per read-side query measurement")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  app.add_option("--query-threads", cfg.query_threads, "threads issuing queries")
      ->check(CLI::Range(1U, 256U))
      ->capture_default_str();
  app.add_flag("--runs-only", cfg.runs_only,
               "measure the workloads only (no read-side queries, no restart)");
  app.add_flag("--verify", cfg.verify,
               "after closing, audit the data dir with Engine::verify (conservation, pending "
               "amounts, read models)");
  app.add_flag("--quick", cfg.quick,
               "smoke check: 10,000 accounts, 2 s per workload after 0.5 s of warm-up (unless "
               "given)");
  app.add_option("--earn-share", cfg.earn_share, "W3: share of earns (the rest are redeems)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--redeem-fail-share", cfg.redeem_fail_share,
                 "W3: share of redeems that ask for more than a member holds (must fail)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--post-share", cfg.post_share,
                 "W4: share of pending transfers posted (the "
                 "rest are voided)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--payment-latency-ms", cfg.payment_latency_ms,
                 "W6: the simulated provider's time from a payment to its result")
      ->check(CLI::Range(0U, 60'000U))
      ->capture_default_str();
  app.add_option("--payment-failure-rate", cfg.payment_failure_rate,
                 "W6: share of payments the simulated provider fails (over HTTP: as pointexd's "
                 "provider `sim` is configured)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--payment-seed", cfg.payment_seed,
                 "W6: the simulated provider's seed (0: --seed; over HTTP: as pointexd's `sim`)")
      ->capture_default_str();
}

std::vector<bench::Workload> workloads_of(const std::string& name) {
  if (name == "all") return {bench::all_workloads.begin(), bench::all_workloads.end()};
  return {*bench::parse_workload(name)};
}

bench::WorkloadOptions workload_options(const Config& cfg, bench::Workload w) {
  bench::WorkloadOptions o;
  o.workload = w;
  o.active = cfg.active;
  o.earn_share = cfg.earn_share;
  o.redeem_fail_share = cfg.redeem_fail_share;
  o.post_share = cfg.post_share;
  return o;
}

void print_header() {
  fmt::print("{:<12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11} {:>9}\n", "workload",
             "transfers/s", "failed", "planned", "p50 ms", "p99 ms", "p999 ms", "conserved",
             "proj. lag", "catch-up");
}

void print_row(const RunResult& r) {
  fmt::print("{:<12} {:>12.0f} {:>9} {:>9} {:>9.2f} {:>9.2f} {:>9.2f} {:>10} {:>11} {:>8.1f}s\n",
             r.workload, static_cast<double>(r.transfers) / r.seconds, r.tally.failures(),
             r.planned_failures, ms(r.latency.quantile(0.5)), ms(r.latency.quantile(0.99)),
             ms(r.latency.quantile(0.999)), r.conserved ? "yes" : "NO", r.projection_lag_events,
             r.projection_catch_up_s);
}

int run_http(const Config& cfg, bench::HttpLoadOptions http) {
  if (is_exchange(cfg.workload)) {
    fmt::print(stderr, "pointex-bench: --workload exchange runs embedded only (not with --http)\n");
    return 2;
  }
  if (is_orders(cfg.workload)) {
    bench::OrderLoadOptions o = order_options(cfg, 0);
    o.clients = http.connections;
    o.address = http.address;
    o.key = http.key;
    // Order ids must be new on every run against the same data dir: start from the clock.
    o.first_id = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
    fmt::print(stderr, "W6 orders over HTTP on {} ({} connections)\n", o.address, o.clients);
    const bench::OrderLoadResult r = bench::run_order_load_http(o);
    bool good = false;
    Config shown = cfg;
    shown.clients = http.connections;
    nlohmann::json report = {
        {"config", {{"http", http.address}, {"accounts", cfg.accounts}}},
        {"runs", nlohmann::json::array({report_orders(r, shown, "http", &good)})}};
    report["ok"] = good;
    if (!cfg.json_path.empty()) std::ofstream(cfg.json_path) << report.dump(2) << "\n";
    return good ? 0 : 1;
  }
  http.rate = cfg.rate;
  http.workloads = workloads_of(cfg.workload);
  http.accounts = cfg.accounts;
  http.active = cfg.active;
  http.batch = cfg.batch;
  http.duration_s = cfg.duration_s;
  http.warmup_s = cfg.warmup_s;
  http.seed = cfg.seed;
  http.json_path = cfg.json_path;
  http.earn_share = cfg.earn_share;
  http.redeem_fail_share = cfg.redeem_fail_share;
  http.post_share = cfg.post_share;
  return bench::run_http_load(http);
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app{"pointex-bench: engine throughput and latency (W1-W4)"};
  add_options(app, cfg);
  // HTTP mode (bench/http_load.cpp): the same workloads against a running pointexd.
  bench::HttpLoadOptions http;
  app.add_option("--http", http.address, "HOST:PORT of a running pointexd: load it over HTTP");
  app.add_option("--key", http.key, "HTTP mode: an admin API key")->envname("POINTEX_KEY");
  app.add_option("--connections", http.connections, "HTTP mode: keep-alive connections")
      ->check(CLI::Range(1U, 4096U))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (const std::string error = settle(cfg, app); !error.empty()) {
    fmt::print(stderr, "pointex-bench: {}\n", error);
    return 2;
  }
  if (!http.address.empty()) return run_http(cfg, http);
  if (cfg.reuse && cfg.data_dir.empty()) {
    fmt::print(stderr, "pointex-bench: --reuse needs --data-dir\n");
    return 2;
  }

  const bool temporary = cfg.data_dir.empty();
  if (temporary) cfg.data_dir = fresh_data_dir();
  EngineOptions options;
  options.data_dir = cfg.data_dir;
  // W6's simulated provider `sim` (idle unless orders run).
  options.payment_providers = {bench::bench_provider(order_options(cfg, 0))};
  options.durability = cfg.durability == "sync" ? Durability::sync : Durability::async;
  options.threads = cfg.threads;
  if (cfg.projection_lag_max >= 0) {
    options.projection_lag_max = static_cast<std::uint64_t>(cfg.projection_lag_max);
  }
  if (cfg.records_in_memory_max >= 0) {
    options.transfer_records_in_memory_max = static_cast<std::uint64_t>(cfg.records_in_memory_max);
  }
  std::unique_ptr<Engine> engine;
  const auto open_started = Clock::now();
  Status s = Engine::open(options, &engine);
  if (!s.is_ok()) die("open", s);
  const double open_s = std::chrono::duration<double>(Clock::now() - open_started).count();
  if (cfg.reuse) {
    if (engine->stats().accounts != cfg.accounts + 1ULL) {
      fmt::print(stderr, "pointex-bench: --reuse: {} holds {} accounts, not {}\n", cfg.data_dir,
                 engine->stats().accounts, cfg.accounts + 1ULL);
      return 2;
    }
    const auto [rss, hwm] = rss_mib();
    fmt::print(stderr,
               "reusing {} ({} accounts, log at position {}): opened in {:.2f} s, {} events of "
               "the log's tail replayed; RSS {:.0f} MiB\n",
               cfg.data_dir, cfg.accounts, engine->stats().committed_position, open_s,
               engine->stats().recovered_events, rss);
  } else {
    fmt::print(stderr, "setting up {} accounts in {}\n", cfg.accounts, cfg.data_dir);
    s = setup_accounts(*engine, cfg);
    if (!s.is_ok()) die("setup", s);
  }

  // Fresh transfer ids per run, also on a reused data dir: a million per second of wall time
  // since the epoch is more than a run consumes between two starts.
  std::uint64_t next_id =
      1'000'000'000'000ULL +
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()) *
          1'000'000ULL;
  nlohmann::json report = {{"config",
                            {{"accounts", cfg.accounts},
                             {"active", cfg.active},
                             {"mode", cfg.rate > 0 ? "open" : cfg.mode},
                             {"batch", cfg.batch},
                             {"clients", cfg.clients},
                             {"rate", cfg.rate},
                             {"duration_s", cfg.duration_s},
                             {"warmup_s", cfg.warmup_s},
                             {"durability", cfg.durability},
                             {"threads", cfg.threads},
                             {"earn_share", cfg.earn_share},
                             {"redeem_fail_share", cfg.redeem_fail_share},
                             {"post_share", cfg.post_share},
                             {"seed", cfg.seed},
                             {"expiry_days", cfg.expiry_days},
                             {"cores", std::thread::hardware_concurrency()}}},
                           {"runs", nlohmann::json::array()}};
  bool all_good = true;
  print_header();
  if (is_exchange(cfg.workload)) {
    bool good = false;
    report["runs"].push_back(run_exchange(*engine, cfg, next_id, &good));
    all_good = good;
  }
  if (is_orders(cfg.workload)) {
    s = bench::setup_orders(*engine);
    if (!s.is_ok()) die("orders setup", s);
    bool good = false;
    const bench::OrderLoadResult r = bench::run_order_load(*engine, order_options(cfg, next_id));
    report["runs"].push_back(report_orders(r, cfg, "orders", &good));
    all_good = good;
  }
  const bool special = is_exchange(cfg.workload) || is_orders(cfg.workload);
  for (const bench::Workload w :
       special ? std::vector<bench::Workload>{} : workloads_of(cfg.workload)) {
    bench::Generator generator(workload_options(cfg, w), cfg.seed, next_id);
    RunResult r = Driver(*engine, cfg, w, generator).run();
    next_id = generator.next_id();
    r.stats = engine->stats();
    r.outcome_problems = r.tally.check(r.planned_failures);
    measure_projection(*engine, r);
    check_conservation(*engine, cfg, r);
    all_good = all_good && r.conserved && r.outcome_problems.empty();
    const auto [rss, hwm] = rss_mib();
    fmt::print(stderr, "  {}: RSS {:.0f} MiB (peak {:.0f} MiB), {} accounts in memory, {} actors\n",
               r.workload, rss, hwm, r.stats.accounts_in_memory, r.stats.live_account_actors);
    fmt::print(stderr, "  {}: results: {}\n", r.workload, r.tally.summary());
    print_row(r);
    if (!r.conserved) fmt::print(stderr, "conservation FAILED: {}\n", r.conservation_message);
    if (!r.outcome_problems.empty()) {
      fmt::print(stderr, "unexpected results in {}: {}\n", r.workload, r.outcome_problems);
    }
    report["runs"].push_back(to_json(r, cfg));
  }
  if (!cfg.runs_only) {
    fmt::print(stderr, "measuring queries ({} threads, {} s each)\n", cfg.query_threads,
               cfg.query_s);
    const QueryResult q = measure_queries(*engine, cfg);
    fmt::print("queries: read_account {:.0f}/s, account_history (pages of {}) {:.0f}/s\n",
               q.account_reads_per_s, q.history_page, q.history_pages_per_s);
    report["queries"] = {{"read_account_per_s", q.account_reads_per_s},
                         {"history_pages_per_s", q.history_pages_per_s},
                         {"history_page", q.history_page},
                         {"threads", cfg.query_threads}};
  }
  RestartResult restart;
  auto t0 = Clock::now();
  engine.reset();
  restart.close_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!cfg.runs_only) {
    t0 = Clock::now();
    s = Engine::open(options, &engine);
    if (!s.is_ok()) die("reopen", s);
    restart.open_s = std::chrono::duration<double>(Clock::now() - t0).count();
    restart.events = engine->stats().recovered_events;
    fmt::print("restart: close {:.2f} s, open {:.2f} s ({} events replayed)\n", restart.close_s,
               restart.open_s, restart.events);
    engine.reset();
    report["restart"] = {
        {"close_s", restart.close_s}, {"open_s", restart.open_s}, {"events", restart.events}};
  }
  if (cfg.verify) {
    fmt::print(stderr, "verifying {}\n", cfg.data_dir);
    VerifyReport vr;
    s = Engine::verify(cfg.data_dir, &vr);
    if (!s.is_ok()) die("verify", s);
    std::string problems;
    for (const std::string& p : vr.problems) problems += (problems.empty() ? "" : "; ") + p;
    fmt::print("verify: {} ({} events, {} accounts, {} open pending transfers){}{}\n",
               vr.ok ? "ok" : "FAILED", vr.events, vr.accounts, vr.open_pending_transfers,
               problems.empty() ? "" : ": ", problems);
    report["verify"] = {{"ok", vr.ok},
                        {"events", vr.events},
                        {"accounts", vr.accounts},
                        {"open_pending_transfers", vr.open_pending_transfers},
                        {"problems", vr.problems}};
    all_good = all_good && vr.ok && vr.open_pending_transfers == 0;
  }
  const auto [rss, hwm] = rss_mib();
  report["memory_mib"] = {{"rss", rss}, {"peak", hwm}};
  report["ok"] = all_good;
  fmt::print("memory: RSS {:.0f} MiB, peak {:.0f} MiB\n", rss, hwm);
  if (!cfg.json_path.empty()) {
    std::ofstream out(cfg.json_path);
    out << report.dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "pointex-bench: cannot write {}\n", cfg.json_path);
      return 2;
    }
  }
  if (temporary && !cfg.keep) std::filesystem::remove_all(cfg.data_dir);
  if (!all_good) fmt::print(stderr, "pointex-bench: FAILED (see above)\n");
  return all_good ? 0 : 1;
}

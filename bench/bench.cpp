// pointex-bench: throughput and latency of the engine through the embedded API.
//
// Workloads (same definitions for every system measured):
//   uniform  random transfers between `accounts` pre-funded member accounts
//   hot      every transfer debits ONE issuer account and credits a random member (a campaign)
// Closed loop: `clients` submitters each keep one batch of `batch` transfers in flight and send
// the next when it is answered (batch 1 = one transfer at a time). Latency is per batch, from
// submit to answer (every `ok` durable). After each run, conservation is checked: per ledger the
// balances sum to zero and no member is below zero; a failure exits non-zero.

#include <fmt/core.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <pointex/engine.hpp>
#include <random>
#include <thread>

#include "histogram.hpp"
#include "http_load.hpp"

using namespace pointex;
using Clock = std::chrono::steady_clock;

namespace {

constexpr LedgerId bench_ledger = 1;
constexpr AccountId issuer_id = 1;
constexpr AccountId first_member = 1'000'001;
constexpr std::uint64_t member_funding = 1'000'000'000;

struct Config {
  std::string workload = "all";
  std::uint32_t accounts = 100'000;
  /// Members the workloads use (the first `active` of them); 0: all.
  std::uint32_t active = 0;
  std::uint32_t batch = 8190;
  std::uint32_t clients = 4;
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
  std::uint64_t seed = 42;
  double query_s = 3;
  std::uint32_t query_threads = 2;
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
  std::uint64_t transfers = 0;
  std::uint64_t ok = 0;
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
  Status s = engine.create_ledger({bench_ledger, "BENCH", "bench points", 0, 0}, &lr);
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

/// Runs one workload in a closed loop and returns its figures.
class Driver {
 public:
  Driver(Engine& engine, const Config& cfg, std::string workload, std::uint64_t first_id)
      : engine_(engine),
        cfg_(cfg),
        workload_(std::move(workload)),
        next_id_(first_id),
        rng_(cfg.seed) {}

  RunResult run() {
    const auto start = Clock::now();
    measure_from_ = start + to_duration(cfg_.warmup_s);
    end_ = measure_from_ + to_duration(cfg_.duration_s);
    for (std::uint32_t c = 0; c < cfg_.clients; ++c) submit();
    std::unique_lock<std::mutex> lock(mutex_);
    auto next_progress = Clock::now() + std::chrono::seconds(1);
    while (inflight_ > 0) {
      done_.wait_for(lock, std::chrono::milliseconds(100));
      while (resubmit_ > 0) {
        --resubmit_;
        lock.unlock();
        submit();
        lock.lock();
      }
      if (Clock::now() >= next_progress) {
        fmt::print(stderr, "  {} {:>5.1f}s: {} transfers\n", workload_,
                   std::chrono::duration<double>(Clock::now() - start).count(), total_);
        next_progress += std::chrono::seconds(1);
      }
    }
    result_.workload = workload_;
    result_.seconds = cfg_.duration_s;
    return result_;
  }

  std::uint64_t next_id() const { return next_id_; }

 private:
  static Clock::duration to_duration(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  std::vector<Transfer> make_batch() {
    std::vector<Transfer> batch(cfg_.batch);
    std::uniform_int_distribution<std::uint32_t> member(0, cfg_.active - 1);
    for (Transfer& t : batch) {
      t.id = next_id_++;
      t.amount = 1;
      t.ledger = bench_ledger;
      t.code = 3;
      t.credit_account = first_member + member(rng_);
      if (workload_ == "hot") {
        t.debit_account = issuer_id;
      } else {
        do {
          t.debit_account = first_member + member(rng_);
        } while (t.debit_account == t.credit_account);
      }
    }
    return batch;
  }

  void submit() {
    if (Clock::now() >= end_) return;
    std::vector<Transfer> batch = make_batch();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++inflight_;
    }
    const auto sent = Clock::now();
    engine_.submit_transfers(
        std::move(batch), [this, sent](const Status& s, std::vector<TransferOutcome> out) {
          if (!s.is_ok()) die("submit", s);
          const auto now = Clock::now();
          std::lock_guard<std::mutex> lock(mutex_);
          total_ += out.size();
          if (sent >= measure_from_ && now <= end_) {
            result_.transfers += out.size();
            for (const TransferOutcome& o : out) result_.ok += o.result == TransferResult::ok;
            result_.latency.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count()));
          }
          --inflight_;
          if (now < end_) ++resubmit_;
          done_.notify_one();
        });
  }

  Engine& engine_;
  const Config& cfg_;
  std::string workload_;
  std::uint64_t next_id_;
  std::mt19937_64 rng_;
  Clock::time_point measure_from_;
  Clock::time_point end_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::uint32_t inflight_ = 0;
  std::uint32_t resubmit_ = 0;
  std::uint64_t total_ = 0;
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

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

nlohmann::json to_json(const RunResult& r) {
  return {{"workload", r.workload},
          {"seconds", r.seconds},
          {"transfers", r.transfers},
          {"ok", r.ok},
          {"transfers_per_s", static_cast<double>(r.transfers) / r.seconds},
          {"latency_ms",
           {{"p50", ms(r.latency.quantile(0.5))},
            {"p99", ms(r.latency.quantile(0.99))},
            {"p999", ms(r.latency.quantile(0.999))},
            {"max", ms(r.latency.max())}}},
          {"projection_lag_events", r.projection_lag_events},
          {"projection_catch_up_s", r.projection_catch_up_s},
          {"commit_groups", r.stats.commit_groups},
          {"committed_events", r.stats.committed_events},
          {"conserved", r.conserved}};
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app{"pointex-bench: engine throughput and latency"};
  app.add_option("--workload", cfg.workload, "uniform, hot or all")
      ->check(CLI::IsMember({"uniform", "hot", "all"}))
      ->capture_default_str();
  app.add_option("--accounts", cfg.accounts, "member accounts")
      ->check(CLI::Range(2U, 50'000'000U))
      ->capture_default_str();
  app.add_option("--active", cfg.active,
                 "members the workloads use, the first N (0: all); the rest stay idle")
      ->capture_default_str();
  app.add_option("--batch", cfg.batch, "transfers per submitted batch")
      ->check(CLI::Range(1U, 8190U))
      ->capture_default_str();
  app.add_option("--clients", cfg.clients, "batches in flight (closed loop)")
      ->check(CLI::Range(1U, 4096U))
      ->capture_default_str();
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
      ->capture_default_str();
  app.add_option("--data-dir", cfg.data_dir, "data dir (default: a fresh temporary one)");
  app.add_option("--json", cfg.json_path, "write the figures as JSON to this file");
  app.add_flag("--keep", cfg.keep, "keep the temporary data dir");
  app.add_option("--projection-lag-max", cfg.projection_lag_max,
                 "engine option projection_lag_max (events; 0: unbounded; default: the engine's)");
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
  // HTTP mode (bench/http_load.cpp): the same workloads against a running pointexd.
  bench::HttpLoadOptions http;
  app.add_option("--http", http.address, "HOST:PORT of a running pointexd: load it over HTTP");
  app.add_option("--key", http.key, "HTTP mode: an admin API key")->envname("POINTEX_KEY");
  app.add_option("--connections", http.connections, "HTTP mode: keep-alive connections")
      ->check(CLI::Range(1U, 4096U))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!http.address.empty()) {
    http.workload = cfg.workload;
    http.accounts = cfg.accounts;
    http.batch = cfg.batch;
    http.duration_s = cfg.duration_s;
    http.warmup_s = cfg.warmup_s;
    http.seed = cfg.seed;
    http.json_path = cfg.json_path;
    return bench::run_http_load(http);
  }
  if (cfg.active == 0) cfg.active = cfg.accounts;
  if (cfg.active < 2 || cfg.active > cfg.accounts) {
    fmt::print(stderr, "pointex-bench: --active must be 2 to --accounts ({})\n", cfg.accounts);
    return 2;
  }

  const bool temporary = cfg.data_dir.empty();
  if (temporary) cfg.data_dir = fresh_data_dir();
  EngineOptions options;
  options.data_dir = cfg.data_dir;
  options.durability = cfg.durability == "sync" ? Durability::sync : Durability::async;
  options.threads = cfg.threads;
  if (cfg.projection_lag_max >= 0) {
    options.projection_lag_max = static_cast<std::uint64_t>(cfg.projection_lag_max);
  }
  std::unique_ptr<Engine> engine;
  const auto open_started = Clock::now();
  Status s = Engine::open(options, &engine);
  if (!s.is_ok()) die("open", s);
  const double open_s = std::chrono::duration<double>(Clock::now() - open_started).count();
  if (cfg.reuse) {
    if (temporary) {
      fmt::print(stderr, "pointex-bench: --reuse needs --data-dir\n");
      return 2;
    }
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

  std::vector<std::string> workloads;
  if (cfg.workload == "all") {
    workloads = {"uniform", "hot"};
  } else {
    workloads = {cfg.workload};
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
                             {"batch", cfg.batch},
                             {"clients", cfg.clients},
                             {"duration_s", cfg.duration_s},
                             {"durability", cfg.durability},
                             {"cores", std::thread::hardware_concurrency()}}},
                           {"runs", nlohmann::json::array()}};
  bool all_conserved = true;
  fmt::print("{:<9} {:>12} {:>10} {:>9} {:>9} {:>9} {:>10} {:>11} {:>9}\n", "workload",
             "transfers/s", "ok", "p50 ms", "p99 ms", "p999 ms", "conserved", "proj. lag",
             "catch-up");
  for (const std::string& w : workloads) {
    Driver driver(*engine, cfg, w, next_id);
    RunResult r = driver.run();
    next_id = driver.next_id();
    r.stats = engine->stats();
    measure_projection(*engine, r);
    check_conservation(*engine, cfg, r);
    all_conserved = all_conserved && r.conserved;
    const auto [rss, hwm] = rss_mib();
    fmt::print(stderr, "  {}: RSS {:.0f} MiB (peak {:.0f} MiB), {} accounts in memory, {} actors\n",
               w, rss, hwm, r.stats.accounts_in_memory, r.stats.live_account_actors);
    fmt::print("{:<9} {:>12.0f} {:>10} {:>9.2f} {:>9.2f} {:>9.2f} {:>10} {:>11} {:>8.1f}s\n", w,
               static_cast<double>(r.transfers) / r.seconds, r.ok, ms(r.latency.quantile(0.5)),
               ms(r.latency.quantile(0.99)), ms(r.latency.quantile(0.999)),
               r.conserved ? "yes" : "NO", r.projection_lag_events, r.projection_catch_up_s);
    if (!r.conserved) fmt::print(stderr, "conservation FAILED: {}\n", r.conservation_message);
    report["runs"].push_back(to_json(r));
  }
  fmt::print(stderr, "measuring queries ({} threads, {} s each)\n", cfg.query_threads, cfg.query_s);
  const QueryResult q = measure_queries(*engine, cfg);
  fmt::print("queries: read_account {:.0f}/s, account_history (pages of {}) {:.0f}/s\n",
             q.account_reads_per_s, q.history_page, q.history_pages_per_s);

  RestartResult restart;
  auto t0 = Clock::now();
  engine.reset();
  restart.close_s = std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  s = Engine::open(options, &engine);
  if (!s.is_ok()) die("reopen", s);
  restart.open_s = std::chrono::duration<double>(Clock::now() - t0).count();
  restart.events = engine->stats().recovered_events;
  fmt::print("restart: close {:.2f} s, open {:.2f} s ({} events replayed)\n", restart.close_s,
             restart.open_s, restart.events);
  engine.reset();
  report["queries"] = {{"read_account_per_s", q.account_reads_per_s},
                       {"history_pages_per_s", q.history_pages_per_s},
                       {"history_page", q.history_page},
                       {"threads", cfg.query_threads}};
  report["restart"] = {
      {"close_s", restart.close_s}, {"open_s", restart.open_s}, {"events", restart.events}};
  const auto [rss, hwm] = rss_mib();
  report["memory_mib"] = {{"rss", rss}, {"peak", hwm}};
  fmt::print("memory: RSS {:.0f} MiB, peak {:.0f} MiB\n", rss, hwm);
  if (!cfg.json_path.empty()) std::ofstream(cfg.json_path) << report.dump(2) << "\n";
  if (temporary && !cfg.keep) std::filesystem::remove_all(cfg.data_dir);
  return all_conserved ? 0 : 1;
}

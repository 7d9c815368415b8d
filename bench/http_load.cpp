#include "http_load.hpp"

#include <fmt/core.h>
#include <fmt/format.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "histogram.hpp"
#include "server/http_client.hpp"

namespace pointex::bench {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t setup_batch = 8190;
/// Threads reading the accounts back for the conservation check.
constexpr std::uint32_t check_threads = 4;
/// Longest wait for a starting pointexd's /healthz to answer 200.
constexpr int ready_wait_s_max = 60;

struct Figures {
  std::string workload;
  /// Completed in the measured window: requests, operations (W4: a pending request and its
  /// post/void request), transfers in them (W4: pending transfers), W4's posts and voids.
  std::uint64_t requests = 0;
  std::uint64_t operations = 0;
  std::uint64_t transfers = 0;
  std::uint64_t completions = 0;
  /// Over the whole run: requests that failed (connection or HTTP status other than 200).
  std::uint64_t errors = 0;
  Tally tally;
  std::uint64_t planned_failures = 0;
  /// Highest commit position answered.
  std::uint64_t max_position = 0;
  Histogram latency;
  /// Open loop: most operations that were due and waited for a free connection at once.
  std::uint64_t max_backlog = 0;
};

/// Closed loop: every connection sends its next operation when the previous one answered.
/// Open loop: operations are due at a fixed rate and go out on whichever connection is free.
class Load {
 public:
  Load(const HttpLoadOptions& o, Workload workload, const tcp::endpoint& endpoint,
       std::uint64_t first_id)
      : o_(o), endpoint_(endpoint), generator_(options_of(o, workload), o.seed, first_id) {
    figures_.workload = std::string(to_string(workload));
  }

  Figures run() {
    const auto start = Clock::now();
    measure_from_ = start + seconds(o_.warmup_s);
    end_ = measure_from_ + seconds(o_.duration_s);
    next_progress_ = start + std::chrono::seconds(1);
    start_ = start;
    next_arrival_ = start;
    for (std::uint32_t i = 0; i < o_.connections; ++i) std::make_shared<Conn>(*this)->start();
    if (open_loop()) arrive();
    ioc_.run();
    figures_.planned_failures = generator_.planned_failures();
    return std::move(figures_);
  }

  std::uint64_t next_id() const { return generator_.next_id(); }

 private:
  struct Conn;

  bool open_loop() const { return o_.rate > 0; }

  /// Open loop: queues every operation due by now, hands them to free connections, and
  /// waits for the next one.
  void arrive() {
    const auto now = Clock::now();
    const Clock::duration interval = seconds(static_cast<double>(o_.batch) / o_.rate);
    while (next_arrival_ <= now && next_arrival_ < end_) {
      due_.push_back(next_arrival_);
      next_arrival_ += interval;
    }
    figures_.max_backlog = std::max<std::uint64_t>(figures_.max_backlog, due_.size());
    dispatch();
    progress(now);
    if (next_arrival_ >= end_) return;  // the queue drains as connections free up
    arrivals_.expires_at(next_arrival_);
    arrivals_.async_wait([this](beast::error_code ec) {
      if (!ec) arrive();
    });
  }

  /// Open loop: starts due operations on free connections.
  void dispatch() {
    while (!due_.empty() && !idle_.empty()) {
      std::shared_ptr<Conn> conn = std::move(idle_.back());
      idle_.pop_back();
      const Clock::time_point scheduled = due_.front();
      due_.pop_front();
      conn->start_operation(scheduled);
    }
  }

  static WorkloadOptions options_of(const HttpLoadOptions& o, Workload w) {
    WorkloadOptions wo;
    wo.workload = w;
    wo.active = o.active;
    wo.earn_share = o.earn_share;
    wo.redeem_fail_share = o.redeem_fail_share;
    wo.post_share = o.post_share;
    return wo;
  }

  static Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  static std::string body(const std::vector<Transfer>& transfers) {
    std::string out;
    out.reserve(transfers.size() * 120 + 2);
    out.push_back('[');
    for (std::size_t i = 0; i < transfers.size(); ++i) {
      if (i > 0) out.push_back(',');
      append_json(transfers[i], &out);
    }
    out.push_back(']');
    return out;
  }

  struct Conn : std::enable_shared_from_this<Conn> {
    explicit Conn(Load& l) : load(l), stream(l.ioc_) {}

    void start() {
      stream.async_connect(load.endpoint_, [self = shared_from_this()](beast::error_code ec) {
        if (ec) return self->load.fail("connect", ec);
        self->next_operation();
      });
    }

    /// After connecting and after each operation: the next one (closed loop), or back to the
    /// free connections (open loop).
    void next_operation() {
      const auto now = Clock::now();
      load.progress(now);
      if (load.open_loop()) {
        load.idle_.push_back(shared_from_this());
        return load.dispatch();
      }
      if (now >= load.end_) return;
      start_operation(now);
    }

    /// `scheduled`: when it was due (latency runs from there).
    void start_operation(Clock::time_point scheduled) {
      started = scheduled;
      second_phase = false;
      load.generator_.first_phase(load.o_.batch, &first, &first_kinds);
      second_kinds.clear();
      send(body(first));
    }

    void send(std::string payload) {
      req = {http::verb::post, "/v1/transfers", 11};
      req.set(http::field::host, "pointexd");
      req.set(http::field::authorization, "Bearer " + load.o_.key);
      req.set(http::field::content_type, "application/json");
      req.keep_alive(true);
      req.body() = std::move(payload);
      req.prepare_payload();
      http::async_write(
          stream, req, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->load.fail("write", ec);
            self->res = {};
            http::async_read(self->stream, self->buffer, self->res,
                             [self](beast::error_code ec, std::size_t) { self->on_answer(ec); });
          });
    }

    void on_answer(beast::error_code ec) {
      if (ec) return load.fail("read", ec);
      const auto now = Clock::now();
      Figures& f = load.figures_;
      const bool in_window = now >= load.measure_from_ && now <= load.end_;
      f.requests += in_window;
      const std::vector<OpKind>& kinds = second_phase ? second_kinds : first_kinds;
      std::vector<TransferResult> results;
      if (res.result_int() != 200 || !parse(res.body(), kinds.size(), &results)) {
        ++f.errors;
        fmt::print(stderr, "pointex-bench: HTTP {}: {}\n", res.result_int(),
                   res.body().substr(0, 200));
        return next_operation();
      }
      for (std::size_t i = 0; i < results.size(); ++i) f.tally.add(kinds[i], results[i]);
      if (!second_phase && load.generator_.two_phase()) {
        std::vector<Transfer> second;
        load.generator_.second_phase(first, results, &second, &second_kinds);
        second_phase = true;
        if (!second.empty()) return send(body(second));
      }
      if (in_window) {
        ++f.operations;
        f.transfers += first_kinds.size();
        f.completions += second_kinds.size();
      }
      // Latency: operations started in the window (closed loop: and answered in it; open loop:
      // however late they were answered).
      if (started >= load.measure_from_ && started < load.end_ &&
          (load.open_loop() || now <= load.end_)) {
        f.latency.record(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - started).count()));
      }
      next_operation();
    }

    /// The results of an answer `[{"index":..,"result":"ok","position":..},...]`.
    bool parse(const std::string& text, std::size_t expected, std::vector<TransferResult>* out) {
      const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
      if (!j.is_array() || j.size() != expected) return false;
      out->reserve(expected);
      for (const nlohmann::json& item : j) {
        const auto result = transfer_result_from_string(item.value("result", std::string()));
        if (!result) return false;
        out->push_back(*result);
        load.figures_.max_position =
            std::max(load.figures_.max_position, item.value("position", std::uint64_t{0}));
      }
      return true;
    }

    Load& load;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    Clock::time_point started;
    bool second_phase = false;
    std::vector<Transfer> first;
    std::vector<OpKind> first_kinds;
    std::vector<OpKind> second_kinds;
  };

  void progress(Clock::time_point now) {
    if (now < next_progress_) return;
    fmt::print(stderr, "  {} {:>5.1f}s: {} requests answered in the window, {} failed\n",
               figures_.workload, std::chrono::duration<double>(now - start_).count(),
               figures_.requests, figures_.errors);
    next_progress_ += std::chrono::seconds(1);
  }

  void fail(const char* what, beast::error_code ec) {
    ++figures_.errors;
    fmt::print(stderr, "pointex-bench: {}: {}\n", what, ec.message());
  }

  const HttpLoadOptions& o_;
  net::io_context ioc_{1};
  net::steady_timer arrivals_{ioc_};
  Clock::time_point next_arrival_;
  /// Open loop: operations due and not started (no free connection), and free connections.
  std::deque<Clock::time_point> due_;
  std::vector<std::shared_ptr<Conn>> idle_;
  tcp::endpoint endpoint_;
  Generator generator_;
  Clock::time_point start_;
  Clock::time_point measure_from_;
  Clock::time_point end_;
  Clock::time_point next_progress_;
  Figures figures_;
};

}  // namespace

Conservation check_conservation_http(const HttpLoadOptions& o, const std::string& host,
                                     std::uint16_t port, std::uint64_t min_position,
                                     const std::vector<AccountId>& extra) {
  std::vector<std::uint64_t> ids{issuer_id};
  for (std::uint32_t i = 0; i < o.accounts; ++i) ids.push_back(first_member + i);
  ids.insert(ids.end(), extra.begin(), extra.end());
  std::atomic<std::int64_t> sum{0};
  std::atomic<std::uint64_t> negative{0};
  std::atomic<std::uint64_t> pending{0};
  std::atomic<std::uint64_t> unreadable{0};
  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < check_threads; ++t) {
    threads.emplace_back([&, t] {
      client::HttpClient c(host, port, std::chrono::seconds(30));
      const client::Headers h = {{"Authorization", "Bearer " + o.key}};
      for (std::size_t i = t; i < ids.size(); i += check_threads) {
        const client::HttpResult r = c.request(
            "GET", fmt::format("/v1/accounts/{}?min_position={}", ids[i], min_position), {}, h);
        const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
        if (r.status != 200 || !j.is_object()) {
          if (unreadable++ == 0) {
            fmt::print(stderr, "pointex-bench: GET account {}: HTTP {} {}{}\n", ids[i], r.status,
                       r.body.substr(0, 200), r.error);
          }
          continue;
        }
        const std::int64_t balance = j.value("balance", std::int64_t{0});
        sum += balance;
        pending += j.value("debits_pending", std::uint64_t{0}) +
                   j.value("credits_pending", std::uint64_t{0});
        if (j.value("kind", std::string()) == "member" && balance < 0) ++negative;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  Conservation c;
  c.ok = sum == 0 && negative == 0 && pending == 0 && unreadable == 0;
  c.message = fmt::format("sum of balances {}, members below zero {}, pending {}, unreadable {}",
                          sum.load(), negative.load(), pending.load(), unreadable.load());
  return c;
}

namespace {

/// POSTs `items` and checks that every item answered `ok` or `exists` (a re-run of setup);
/// a ledger answers the ledger itself (200 or 201), not items.
bool post_all(client::HttpClient& c, const client::Headers& h, const std::string& target,
              const nlohmann::json& items) {
  const client::HttpResult r = c.request("POST", target, items.dump(), h);
  if (r.status != 200 && r.status != 201) {
    fmt::print(stderr, "pointex-bench: setup {}: HTTP {} {}{}\n", target, r.status, r.body,
               r.error);
    return false;
  }
  if (target == "/v1/ledgers") return true;
  const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  const nlohmann::json answers = j.is_array() ? j : nlohmann::json::array({j});
  for (const nlohmann::json& a : answers) {
    const std::string result = a.is_object() ? a.value("result", std::string()) : std::string();
    if (result != "ok" && result != "exists") {
      fmt::print(stderr, "pointex-bench: setup {}: {}\n", target, a.dump());
      return false;
    }
  }
  return true;
}

}  // namespace

/// Idempotent: a second run finds everything `exists`. Every account exists before any
/// funding transfer names it.
bool setup_http(const HttpLoadOptions& o, const std::string& host, std::uint16_t port) {
  client::HttpClient c(host, port, std::chrono::seconds(120));
  const client::Headers h = {{"Authorization", "Bearer " + o.key}};
  // A daemon that just started answers 503 not_ready until it has recovered.
  const auto ready_by = Clock::now() + std::chrono::seconds(ready_wait_s_max);
  for (;;) {
    const client::HttpResult r = c.request("GET", "/healthz");
    if (r.status == 200) break;
    if (Clock::now() >= ready_by) {
      fmt::print(stderr, "pointex-bench: {} not ready after {} s: HTTP {} {}{}\n", o.address,
                 ready_wait_s_max, r.status, r.body, r.error);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!post_all(c, h, "/v1/ledgers",
                {{"id", bench_ledger}, {"code", "BENCH"}, {"name", "bench"}})) {
    return false;
  }
  nlohmann::json accounts = nlohmann::json::array(
      {{{"id", issuer_id}, {"ledger", bench_ledger}, {"kind", "issuer"}, {"owner", "issuer"}}});
  for (std::uint32_t i = 0; i < o.accounts; ++i) {
    accounts.push_back({{"id", first_member + i}, {"ledger", bench_ledger}, {"kind", "member"}});
    if (accounts.size() == setup_batch || i + 1 == o.accounts) {
      if (!post_all(c, h, "/v1/accounts", accounts)) return false;
      accounts = nlohmann::json::array();
    }
  }
  nlohmann::json funding = nlohmann::json::array();
  for (std::uint32_t i = 0; i < o.accounts; ++i) {
    funding.push_back({{"id", i + 1},
                       {"debit_account", issuer_id},
                       {"credit_account", first_member + i},
                       {"amount", member_funding},
                       {"ledger", bench_ledger},
                       {"code", 1}});
    if (funding.size() == setup_batch || i + 1 == o.accounts) {
      if (!post_all(c, h, "/v1/transfers", funding)) return false;
      funding = nlohmann::json::array();
    }
  }
  return true;
}

int run_http_load(const HttpLoadOptions& o) {
  std::string host;
  std::uint16_t port = 0;
  std::string error;
  if (!client::parse_url(o.address, &host, &port, &error)) {
    fmt::print(stderr, "pointex-bench: --http: {}\n", error);
    return 2;
  }
  if (o.key.empty()) {
    fmt::print(stderr, "pointex-bench: --http needs an admin key (--key or POINTEX_KEY)\n");
    return 2;
  }
  boost::system::error_code ec;
  const tcp::endpoint endpoint{net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec),
                               port};
  if (ec) {
    fmt::print(stderr, "pointex-bench: --http needs an IP address: {}\n", host);
    return 2;
  }
  fmt::print(stderr, "setting up {} accounts over HTTP on {}\n", o.accounts, o.address);
  if (!setup_http(o, host, port)) return 2;
  // Transfer ids must be new on every run against the same data dir: start from the clock.
  std::uint64_t first_id =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  nlohmann::json report = {{"config",
                            {{"http", o.address},
                             {"accounts", o.accounts},
                             {"active", o.active},
                             {"batch", o.batch},
                             {"connections", o.connections},
                             {"rate", o.rate},
                             {"duration_s", o.duration_s},
                             {"warmup_s", o.warmup_s},
                             {"earn_share", o.earn_share},
                             {"redeem_fail_share", o.redeem_fail_share},
                             {"post_share", o.post_share}}},
                           {"runs", nlohmann::json::array()}};
  fmt::print("{:<12} {:>12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>10}\n", "workload",
             "transfers/s", "requests/s", "failed", "planned", "p50 ms", "p99 ms", "p999 ms",
             "errors", "conserved");
  bool clean = true;
  for (const Workload w : o.workloads) {
    Load load(o, w, endpoint, first_id);
    Figures f = load.run();
    first_id = load.next_id();
    const std::string problems = f.tally.check(f.planned_failures);
    fmt::print(stderr, "  {}: results: {}; checking conservation\n", f.workload, f.tally.summary());
    const Conservation c = check_conservation_http(o, host, port, f.max_position);
    const double tps = static_cast<double>(f.transfers) / o.duration_s;
    fmt::print("{:<12} {:>12.0f} {:>10.0f} {:>9} {:>9} {:>9.2f} {:>9.2f} {:>9.2f} {:>7} {:>10}\n",
               f.workload, tps, static_cast<double>(f.requests) / o.duration_s, f.tally.failures(),
               f.planned_failures, ms(f.latency.quantile(0.5)), ms(f.latency.quantile(0.99)),
               ms(f.latency.quantile(0.999)), f.errors, c.ok ? "yes" : "NO");
    if (!c.ok) fmt::print(stderr, "conservation FAILED: {}\n", c.message);
    if (!problems.empty())
      fmt::print(stderr, "unexpected results in {}: {}\n", f.workload, problems);
    if (o.rate > 0 && tps < 0.95 * o.rate) {
      fmt::print(stderr,
                 "  {}: did not keep up with the offered {:.0f} transfers/s (up to {} operations "
                 "waited for a free connection)\n",
                 f.workload, o.rate, f.max_backlog);
    }
    clean = clean && f.errors == 0 && c.ok && problems.empty();
    nlohmann::json results = nlohmann::json::object();
    f.tally.for_each([&](OpKind kind, TransferResult result, std::uint64_t n) {
      results[std::string(to_string(kind))][std::string(to_string(result))] = n;
    });
    report["runs"].push_back(
        {{"workload", f.workload},
         {"mode", o.rate > 0 ? "http-open" : "http"},
         {"rate_offered", o.rate},
         {"max_backlog", f.max_backlog},
         {"batch", o.batch},
         {"clients", o.connections},
         {"seconds", o.duration_s},
         {"transfers_per_s", tps},
         {"events_per_s", static_cast<double>(f.transfers + f.completions) / o.duration_s},
         {"requests_per_s", static_cast<double>(f.requests) / o.duration_s},
         {"operations", f.operations},
         {"transfers", f.transfers},
         {"completions", f.completions},
         {"errors", f.errors},
         {"results", results},
         {"planned_failures", f.planned_failures},
         {"outcomes_ok", problems.empty()},
         {"outcome_problems", problems},
         {"conserved", c.ok},
         {"conservation", c.message},
         {"latency_ms", latency_json(f.latency)}});
  }
  report["ok"] = clean;
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    out << report.dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "pointex-bench: cannot write {}\n", o.json_path);
      return 2;
    }
  }
  if (!clean) fmt::print(stderr, "pointex-bench: FAILED (see above)\n");
  return clean ? 0 : 1;
}

}  // namespace pointex::bench

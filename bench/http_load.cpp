#include "http_load.hpp"

#include <fmt/core.h>
#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
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

// Same ids as the embedded bench: ledger 1, issuer 1, members from 1'000'001.
constexpr std::uint64_t bench_ledger = 1;
constexpr std::uint64_t issuer_id = 1;
constexpr std::uint64_t first_member = 1'000'001;
constexpr std::uint64_t member_funding = 1'000'000'000;
constexpr std::uint32_t setup_batch = 8190;

struct Figures {
  std::string workload;
  std::uint64_t requests = 0;
  std::uint64_t transfers = 0;
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
  Histogram latency;
};

/// The closed loop: every connection sends its next request when the previous one answered.
class Load {
 public:
  Load(const HttpLoadOptions& o, std::string workload, const tcp::endpoint& endpoint,
       std::uint64_t first_id)
      : o_(o), endpoint_(endpoint), rng_(o.seed), next_id_(first_id) {
    figures_.workload = std::move(workload);
  }

  Figures run() {
    const auto start = Clock::now();
    measure_from_ = start + seconds(o_.warmup_s);
    end_ = measure_from_ + seconds(o_.duration_s);
    for (std::uint32_t i = 0; i < o_.connections; ++i) std::make_shared<Conn>(*this)->start();
    ioc_.run();
    return std::move(figures_);
  }

 private:
  static Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  std::string body() {
    std::uniform_int_distribution<std::uint64_t> member(0, o_.accounts - 1);
    fmt::memory_buffer out;
    out.push_back('[');
    for (std::uint32_t i = 0; i < o_.batch; ++i) {
      const std::uint64_t credit = first_member + member(rng_);
      std::uint64_t debit = issuer_id;
      if (figures_.workload == "uniform") {
        do {
          debit = first_member + member(rng_);
        } while (debit == credit);
      }
      if (i > 0) out.push_back(',');
      fmt::format_to(
          std::back_inserter(out),
          R"({{"id":{},"debit_account":{},"credit_account":{},"amount":1,"ledger":{},"code":3}})",
          next_id_++, debit, credit, bench_ledger);
    }
    out.push_back(']');
    return fmt::to_string(out);
  }

  struct Conn : std::enable_shared_from_this<Conn> {
    explicit Conn(Load& l) : load(l), stream(l.ioc_) {}

    void start() {
      stream.async_connect(load.endpoint_, [self = shared_from_this()](beast::error_code ec) {
        if (ec) return self->load.fail("connect", ec);
        self->send();
      });
    }

    void send() {
      if (Clock::now() >= load.end_) return;
      req = {http::verb::post, "/v1/transfers", 11};
      req.set(http::field::host, "pointexd");
      req.set(http::field::authorization, "Bearer " + load.o_.key);
      req.set(http::field::content_type, "application/json");
      req.keep_alive(true);
      req.body() = load.body();
      req.prepare_payload();
      sent = Clock::now();
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
      if (sent >= load.measure_from_ && now <= load.end_) {
        Figures& f = load.figures_;
        ++f.requests;
        if (res.result_int() != 200) {
          ++f.errors;
        } else {
          f.transfers += load.o_.batch;
          const std::string& b = res.body();
          for (auto at = b.find(R"("result":"ok")"); at != std::string::npos;
               at = b.find(R"("result":"ok")", at + 13)) {
            ++f.ok;
          }
        }
        f.latency.record(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count()));
      }
      send();
    }

    Load& load;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    Clock::time_point sent;
  };

  void fail(const char* what, beast::error_code ec) {
    ++figures_.errors;
    fmt::print(stderr, "pointex-bench: {}: {}\n", what, ec.message());
  }

  const HttpLoadOptions& o_;
  net::io_context ioc_{1};
  tcp::endpoint endpoint_;
  std::mt19937_64 rng_;
  std::uint64_t next_id_;
  Clock::time_point measure_from_;
  Clock::time_point end_;
  Figures figures_;
};

bool post_all(client::HttpClient& c, const client::Headers& h, const std::string& target,
              const nlohmann::json& items) {
  const client::HttpResult r = c.request("POST", target, items.dump(), h);
  if (r.status != 200 && r.status != 201) {
    fmt::print(stderr, "pointex-bench: setup {}: HTTP {} {}{}\n", target, r.status, r.body,
               r.error);
    return false;
  }
  return true;
}

/// Idempotent: a second run finds everything `exists`.
bool setup(const HttpLoadOptions& o, const std::string& host, std::uint16_t port) {
  client::HttpClient c(host, port, std::chrono::seconds(120));
  const client::Headers h = {{"Authorization", "Bearer " + o.key}};
  if (!post_all(c, h, "/v1/ledgers",
                {{"id", bench_ledger}, {"code", "BENCH"}, {"name", "bench"}})) {
    return false;
  }
  nlohmann::json accounts = nlohmann::json::array(
      {{{"id", issuer_id}, {"ledger", bench_ledger}, {"kind", "issuer"}, {"owner", "issuer"}}});
  nlohmann::json funding = nlohmann::json::array();
  for (std::uint32_t i = 0; i < o.accounts; ++i) {
    accounts.push_back({{"id", first_member + i}, {"ledger", bench_ledger}, {"kind", "member"}});
    funding.push_back({{"id", i + 1},
                       {"debit_account", issuer_id},
                       {"credit_account", first_member + i},
                       {"amount", member_funding},
                       {"ledger", bench_ledger},
                       {"code", 1}});
    const bool last = i + 1 == o.accounts;
    if (accounts.size() == setup_batch || last) {
      if (!post_all(c, h, "/v1/accounts", accounts)) return false;
      accounts = nlohmann::json::array();
    }
    if (funding.size() == setup_batch || last) {
      if (!post_all(c, h, "/v1/transfers", funding)) return false;
      funding = nlohmann::json::array();
    }
  }
  return true;
}

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

}  // namespace

int run_http_load(const HttpLoadOptions& o) {
  std::string host;
  std::uint16_t port = 0;
  std::string error;
  if (!client::parse_url(o.address, &host, &port, &error)) {
    fmt::print(stderr, "pointex-bench: --http: {}\n", error);
    return 2;
  }
  fmt::print(stderr, "setting up {} accounts over HTTP on {}\n", o.accounts, o.address);
  if (!setup(o, host, port)) return 2;
  boost::system::error_code ec;
  const tcp::endpoint endpoint{net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec),
                               port};
  if (ec) {
    fmt::print(stderr, "pointex-bench: --http needs an IP address: {}\n", host);
    return 2;
  }
  std::vector<std::string> workloads = {o.workload};
  if (o.workload == "all") workloads = {"uniform", "hot"};
  // Transfer ids must be new on every run against the same data dir: start from the clock.
  std::uint64_t first_id =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  nlohmann::json report = {{"config",
                            {{"http", o.address},
                             {"accounts", o.accounts},
                             {"batch", o.batch},
                             {"connections", o.connections},
                             {"duration_s", o.duration_s}}},
                           {"runs", nlohmann::json::array()}};
  fmt::print("{:<9} {:>12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7}\n", "workload", "transfers/s",
             "requests/s", "ok", "p50 ms", "p99 ms", "p999 ms", "errors");
  bool clean = true;
  for (const std::string& w : workloads) {
    Figures f = Load(o, w, endpoint, first_id).run();
    first_id += 1'000'000'000'000ULL;
    const double tps = static_cast<double>(f.transfers) / o.duration_s;
    fmt::print("{:<9} {:>12.0f} {:>10.0f} {:>9} {:>9.2f} {:>9.2f} {:>9.2f} {:>7}\n", w, tps,
               static_cast<double>(f.requests) / o.duration_s, f.ok, ms(f.latency.quantile(0.5)),
               ms(f.latency.quantile(0.99)), ms(f.latency.quantile(0.999)), f.errors);
    clean = clean && f.errors == 0;
    report["runs"].push_back({{"workload", w},
                              {"transfers_per_s", tps},
                              {"requests", f.requests},
                              {"ok", f.ok},
                              {"errors", f.errors},
                              {"latency_ms",
                               {{"p50", ms(f.latency.quantile(0.5))},
                                {"p99", ms(f.latency.quantile(0.99))},
                                {"p999", ms(f.latency.quantile(0.999))},
                                {"max", ms(f.latency.max())}}}});
  }
  if (!o.json_path.empty()) std::ofstream(o.json_path) << report.dump(2) << "\n";
  return clean ? 0 : 1;
}

}  // namespace pointex::bench

#pragma once
/// pointex-bench's HTTP mode: closed-loop load on a running pointexd over keep-alive
/// connections (POST /v1/transfers), with the same workloads as the embedded bench.

#include <cstdint>
#include <string>

namespace pointex::bench {

struct HttpLoadOptions {
  /// HOST:PORT of pointexd.
  std::string address;
  /// An admin key (setup creates a ledger and accounts).
  std::string key;
  /// uniform, hot or all.
  std::string workload = "all";
  std::uint32_t accounts = 100'000;
  /// Transfers per request.
  std::uint32_t batch = 1;
  /// Keep-alive connections, each with one request in flight.
  std::uint32_t connections = 64;
  double duration_s = 10;
  double warmup_s = 2;
  std::uint64_t seed = 42;
  std::string json_path;
};

/// Sets up (idempotently) the bench ledger and accounts over HTTP, runs the workloads, prints
/// transfers/s and request latency percentiles. Exit status for main().
int run_http_load(const HttpLoadOptions& options);

}  // namespace pointex::bench

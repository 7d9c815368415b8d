#pragma once
/// pointex-bench's HTTP mode: closed- or open-loop load on a running pointexd over keep-alive
/// connections (POST /v1/transfers), with the same workloads as the embedded bench (W1-W4).

#include <cstdint>
#include <string>
#include <vector>

#include "workload.hpp"

namespace pointex::bench {

struct HttpLoadOptions {
  /// HOST:PORT of pointexd.
  std::string address;
  /// An admin key (setup creates a ledger and accounts).
  std::string key;
  /// Run in this order, each after the previous one's conservation check.
  std::vector<Workload> workloads = {all_workloads.begin(), all_workloads.end()};
  std::uint32_t accounts = 100'000;
  /// Members the workloads use (the first `active`).
  std::uint32_t active = 100'000;
  /// Transfers per request.
  std::uint32_t batch = 1;
  /// Keep-alive connections, each with one request in flight.
  std::uint32_t connections = 64;
  /// Open loop: transfers per second offered, as one operation of `batch` transfers every
  /// batch/rate seconds whatever the answers; an operation waits for a free connection when
  /// all are busy, and its latency runs from its scheduled time. 0: closed loop.
  double rate = 0;
  double duration_s = 10;
  double warmup_s = 2;
  std::uint64_t seed = 42;
  std::string json_path;
  double earn_share = 0.7;
  double redeem_fail_share = 0.1;
  double post_share = 0.5;
};

/// Sets up (idempotently) the bench ledger and accounts over HTTP, runs the workloads, prints
/// transfers/s and latency percentiles (per request; W4: from the pending request to the answer
/// of its post or void request), checks every result against the workload's definition and,
/// after each workload, conservation over the bench accounts (read back with GET, waiting for
/// the highest position answered). Exit status for main(): 0, 1 when a check failed, 2 when it
/// could not run.
int run_http_load(const HttpLoadOptions& options);

/// Sets up (idempotently) the bench ledger, its issuer and `accounts` funded members over HTTP,
/// after waiting for pointexd's /healthz. False (said on stderr) when it could not.
[[nodiscard]] bool setup_http(const HttpLoadOptions& options, const std::string& host,
                              std::uint16_t port);

struct Conservation {
  bool ok = false;
  std::string message;
};
/// Reads the issuer, every member and the `extra` accounts back (GET, waiting for
/// `min_position`): the balances sum to zero, no member is below zero, nothing is pending.
/// REQUIRES: the bench ledger holds only these accounts.
Conservation check_conservation_http(const HttpLoadOptions& options, const std::string& host,
                                     std::uint16_t port, std::uint64_t min_position,
                                     const std::vector<AccountId>& extra = {});

}  // namespace pointex::bench

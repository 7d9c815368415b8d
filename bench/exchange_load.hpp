#pragma once
/// pointex-bench's W5: the alliance exchange (docs/workflows.md), embedded.
///
///   W5 exchange   a member of the bench ledger (A) exchanges `amount` A-points for points of
///                 a second ledger (B) into its twin member on B, at 3/2 with a 1% fee: two
///                 pending legs, both posted. `clients` exchanges in flight, one at a time each.
///
/// Every exchange must answer `ok`. After the run, per ledger: balances sum to zero, nothing is
/// pending, and the exchange accounts moved exactly (ok exchanges) x (debited, credited).

#include <cstdint>
#include <pointex/engine.hpp>
#include <string>

#include "histogram.hpp"

namespace pointex::bench {

struct ExchangeLoadOptions {
  /// Members of the bench ledger (all are summed for conservation).
  std::uint32_t accounts = 100'000;
  /// Members of ledger A that exchange (the first `active`); each gets a twin on ledger B.
  std::uint32_t active = 100'000;
  /// Exchanges in flight.
  std::uint32_t clients = 64;
  std::uint64_t amount = 10;
  double duration_s = 10;
  double warmup_s = 2;
  std::uint64_t seed = 42;
  /// Exchange ids start here (fresh per run).
  std::uint64_t first_id = 1;
};

struct ExchangeLoadResult {
  double seconds = 0;
  /// Answered `ok` inside the measured window.
  std::uint64_t exchanges = 0;
  /// Every answer of the run by result (ok, and anything else: a failure of the run).
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  std::string first_failure;
  Histogram latency;
  bool conserved = false;
  std::string conservation_message;
};

/// Creates (idempotently) ledger B, the two exchange accounts, the twins of the first
/// `active` members and the rate. REQUIRES: the bench ledger and its members exist.
[[nodiscard]] Status setup_exchange(Engine& engine, std::uint32_t active);
/// Runs W5 and checks it (results, then conservation per ledger once the read models caught up).
ExchangeLoadResult run_exchange_load(Engine& engine, const ExchangeLoadOptions& options);

}  // namespace pointex::bench

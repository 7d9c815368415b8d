#pragma once
/// Conservation checks of the embedded bench workloads: sums over sets of accounts, read
/// through the engine (lookup_accounts, in batches).

#include <cstdint>
#include <pointex/engine.hpp>
#include <vector>

namespace pointex::bench {

/// Sum of balances and pending amounts (debits and credits) of `ids`.
struct Sums {
  std::int64_t balance = 0;
  std::uint64_t pending = 0;
  /// Every account was found (and read without error).
  bool all_found = true;
};
Sums sums_of(Engine& engine, const std::vector<AccountId>& ids);

}  // namespace pointex::bench

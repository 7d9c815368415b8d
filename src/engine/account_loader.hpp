#pragma once
/// Account states and transfer records that are not in memory come from the read models,
/// which hold them as of their checkpoint. The engine keeps in memory everything the read
/// models do not include yet, so what it loads is current (see Directory and evictable()).

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "domain/account_state.hpp"
#include "pointex/status.hpp"
#include "store/read_model.hpp"

namespace pointex::engine {

/// The account `id` from the read models, with no transfer records in memory; null if absent.
[[nodiscard]] Status load_account(const store::ReadModel& read_model, AccountId id,
                                  std::unique_ptr<domain::AccountState>* state);

/// Makes sure the records `ids` (0: none) of `state` are in memory when they exist. Nothing to
/// do while the state holds all its records. `*loaded` counts the records found.
[[nodiscard]] Status load_records(const store::ReadModel& read_model, domain::AccountState& state,
                                  const std::array<TransferId, 2>& ids,
                                  std::atomic<std::uint64_t>* loaded);

/// Same for many ids at once (a batch of commands): one batched read of those not in memory.
/// `ids` is used as scratch space.
[[nodiscard]] Status load_records(const store::ReadModel& read_model, domain::AccountState& state,
                                  std::vector<TransferId>& ids, std::atomic<std::uint64_t>* loaded);

}  // namespace pointex::engine

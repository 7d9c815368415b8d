#include "engine/account_loader.hpp"

#include <algorithm>

#include "domain/decide.hpp"

namespace pointex::engine {

Status load_account(const store::ReadModel& read_model, AccountId id,
                    std::unique_ptr<domain::AccountState>* state) {
  state->reset();
  std::optional<Account> account;
  std::uint64_t debit_transfers = 0;
  const Status s = read_model.account(id, &account, nullptr, &debit_transfers);
  if (!s.is_ok() || !account) return s;
  *state = std::make_unique<domain::AccountState>();
  (*state)->account = std::move(*account);
  (*state)->account.expiring.clear();  // lots are the read models' (docs/expiry.md)
  (*state)->outside_id_max = debit_transfers == 0 ? 0 : UINT64_MAX;
  return Status::ok();
}

Status load_records(const store::ReadModel& read_model, domain::AccountState& state,
                    const std::array<TransferId, 2>& ids, std::atomic<std::uint64_t>* loaded) {
  if (state.records_complete()) return Status::ok();
  for (const TransferId id : ids) {
    if (!state.may_be_outside(id)) continue;
    std::optional<TransferInfo> info;
    const Status s = read_model.transfer(state.id(), id, &info);
    if (!s.is_ok()) return s;
    if (!info) continue;
    domain::load_record(state, *info);
    loaded->fetch_add(1, std::memory_order_relaxed);
  }
  return Status::ok();
}

Status load_records(const store::ReadModel& read_model, domain::AccountState& state,
                    std::vector<TransferId>& ids, std::atomic<std::uint64_t>* loaded) {
  if (state.records_complete()) return Status::ok();
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [&](TransferId id) { return !state.may_be_outside(id); }),
            ids.end());
  if (ids.empty()) return Status::ok();
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return read_model.transfers(state.id(), ids, [&](TransferInfo&& info) {
    domain::load_record(state, info);
    loaded->fetch_add(1, std::memory_order_relaxed);
  });
}

}  // namespace pointex::engine

#include "engine/directory.hpp"

namespace pointex::engine {

AccountEntry* Directory::find(AccountId id) const {
  const Stripe& s = stripes_[stripe_of(id)];
  std::lock_guard<std::mutex> lock(s.mutex);
  const auto it = s.entries.find(id);
  return it == s.entries.end() ? nullptr : it->second.get();
}

AccountEntry* Directory::insert(std::unique_ptr<domain::AccountState> state, bool* inserted) {
  const AccountId id = state->id();
  Stripe& s = stripes_[stripe_of(id)];
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.entries.find(id);
  if (it != s.entries.end()) {
    *inserted = false;
    return it->second.get();
  }
  auto entry = std::make_unique<AccountEntry>(state->account.spec);
  entry->closed.store(state->closed(), std::memory_order_relaxed);
  entry->dormant = std::move(state);
  AccountEntry* raw = entry.get();
  s.entries.emplace(id, std::move(entry));
  size_.fetch_add(1, std::memory_order_relaxed);
  *inserted = true;
  return raw;
}

void Directory::for_each(const std::function<void(AccountEntry&)>& fn) const {
  for (const Stripe& s : stripes_) {
    std::lock_guard<std::mutex> lock(s.mutex);
    for (const auto& [id, entry] : s.entries) fn(*entry);
  }
}

}  // namespace pointex::engine

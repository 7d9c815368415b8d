#include "engine/directory.hpp"

#include "engine/log.hpp"

namespace pointex::engine {

AccountEntry* Directory::find_loaded(AccountId id) const {
  const Stripe& s = stripes_[stripe_of(id)];
  std::lock_guard<std::mutex> lock(s.mutex);
  const auto it = s.entries.find(id);
  return it == s.entries.end() ? nullptr : it->second.get();
}

AccountEntry* Directory::find(AccountId id) {
  AccountEntry* entry = nullptr;
  const Status s = lookup(id, &entry);
  if (!s.is_ok()) log().error("loading account {}: {}", id, s.to_string());
  return entry;
}

Status Directory::lookup(AccountId id, AccountEntry** entry) {
  *entry = find_loaded(id);
  if (*entry != nullptr || !loader_) return Status::ok();
  // Loaded outside the stripe's lock (it reads from disk); a concurrent load of the same id
  // loses the insert below and uses the winner's entry.
  std::unique_ptr<domain::AccountState> state;
  const Status s = loader_(id, &state);
  if (!s.is_ok() || !state) return s;
  bool inserted = false;
  *entry = insert(std::move(state), &inserted);
  return Status::ok();
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

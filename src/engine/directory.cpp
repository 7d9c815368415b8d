#include "engine/directory.hpp"

#include <algorithm>

#include "engine/log.hpp"

namespace pointex::engine {

namespace {

AccountEntry* find_pinned(const domain::IdMap<std::unique_ptr<AccountEntry>>& map, AccountId id) {
  const auto it = map.find(id);
  if (it == map.end()) return nullptr;
  it->second->pin();
  return it->second.get();
}

}  // namespace

AccountEntry* Directory::find(AccountId id) {
  AccountEntry* entry = nullptr;
  const Status s = lookup(id, &entry);
  if (!s.is_ok()) log().error("loading account {}: {}", id, s.to_string());
  return entry;
}

bool Directory::ledger_of(AccountId id, LedgerId* ledger) const {
  const Stripe& s = stripes_[stripe_of(id)];
  std::lock_guard<std::mutex> lock(s.mutex);
  const auto it = s.entries.find(id);
  if (it == s.entries.end()) return false;
  *ledger = it->second->spec.ledger;
  return true;
}

Status Directory::lookup(AccountId id, AccountEntry** entry) {
  {
    const Stripe& s = stripes_[stripe_of(id)];
    std::lock_guard<std::mutex> lock(s.mutex);
    *entry = find_pinned(s.entries, id);
  }
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

void Directory::find_many(const AccountId* ids, std::size_t n, AccountEntry** out) {
  // A few (one transfer at a time): nothing to overlap, and no buffers to allocate.
  constexpr std::size_t few = 8;
  if (n <= few) {
    for (std::size_t i = 0; i < n; ++i) out[i] = find(ids[i]);
    return;
  }
  // Counting sort of the lookups by stripe.
  std::array<std::uint32_t, stripes + 1> starts{};
  for (std::size_t i = 0; i < n; ++i) ++starts[stripe_of(ids[i]) + 1];
  for (std::size_t k = 0; k < stripes; ++k) starts[k + 1] += starts[k];
  std::vector<std::uint32_t> order(n);
  std::array<std::uint32_t, stripes> next{};
  std::copy_n(starts.begin(), stripes, next.begin());
  for (std::size_t i = 0; i < n; ++i)
    order[next[stripe_of(ids[i])]++] = static_cast<std::uint32_t>(i);
  std::vector<AccountId> sorted(n);
  for (std::size_t j = 0; j < n; ++j) sorted[j] = ids[order[j]];
  using Map = domain::IdMap<std::unique_ptr<AccountEntry>>;
  std::vector<Map::iterator> found(n);
  std::vector<std::uint32_t> missing;
  for (std::size_t k = 0; k < stripes; ++k) {
    const std::uint32_t begin = starts[k];
    const std::uint32_t end = starts[k + 1];
    if (begin == end) continue;
    Stripe& s = stripes_[k];
    std::lock_guard<std::mutex> lock(s.mutex);
    s.entries.find_many(&sorted[begin], end - begin, &found[begin]);
    // The entries themselves are the next misses: fetch them all, then pin them.
    for (std::uint32_t j = begin; j < end; ++j) {
      if (found[j] != s.entries.end()) __builtin_prefetch(found[j]->second.get());
    }
    for (std::uint32_t j = begin; j < end; ++j) {
      if (found[j] == s.entries.end()) {
        out[order[j]] = nullptr;
        missing.push_back(order[j]);
      } else {
        found[j]->second->pin();
        out[order[j]] = found[j]->second.get();
      }
    }
  }
  // Not in memory: loaded one at a time, outside the stripes' locks (they read from disk).
  for (const std::uint32_t i : missing) out[i] = find(ids[i]);
}

AccountEntry* Directory::insert(std::unique_ptr<domain::AccountState> state, bool* inserted) {
  const AccountId id = state->id();
  Stripe& s = stripes_[stripe_of(id)];
  std::lock_guard<std::mutex> lock(s.mutex);
  AccountEntry* existing = find_pinned(s.entries, id);
  if (existing != nullptr) {
    *inserted = false;
    return existing;
  }
  auto entry = std::make_unique<AccountEntry>(state->account.spec);
  entry->closed.store(state->closed(), std::memory_order_relaxed);
  entry->dormant = std::move(state);
  entry->pin();
  AccountEntry* raw = entry.get();
  s.entries.emplace(id, std::move(entry));
  size_.fetch_add(1, std::memory_order_relaxed);
  *inserted = true;
  return raw;
}

Directory::Sweep Directory::release_if_unheld(AccountEntry* entry,
                                              const std::function<Sweep()>& decide) {
  Stripe& s = stripes_[stripe_of(entry->spec.id)];
  std::lock_guard<std::mutex> lock(s.mutex);
  if (entry->pins.load(std::memory_order_acquire) != 0) return Sweep::keep;
  const Sweep d = decide();
  if (d == Sweep::remove) {
    s.entries.erase(entry->spec.id);
    size_.fetch_sub(1, std::memory_order_relaxed);
  }
  return d;
}

bool Directory::sweep(const std::function<Sweep(AccountEntry&)>& fn,
                      const std::function<bool()>& more) {
  for (std::size_t n = 0; n < stripes; ++n) {
    if (!more()) return false;
    Stripe& s = stripes_[sweep_cursor_];
    sweep_cursor_ = (sweep_cursor_ + 1) % stripes;
    std::lock_guard<std::mutex> lock(s.mutex);
    for (auto it = s.entries.begin(); it != s.entries.end();) {
      AccountEntry& entry = *it->second;
      if (entry.pins.load(std::memory_order_acquire) == 0 && fn(entry) == Sweep::remove) {
        it = s.entries.erase(it);
        size_.fetch_sub(1, std::memory_order_relaxed);
      } else {
        ++it;
      }
    }
  }
  return true;
}

void Directory::for_each(const std::function<void(AccountEntry&)>& fn) const {
  for (const Stripe& s : stripes_) {
    std::lock_guard<std::mutex> lock(s.mutex);
    for (const auto& [id, entry] : s.entries) fn(*entry);
  }
}

}  // namespace pointex::engine

#pragma once
/// The account directory: account id -> definition, closed flag, and the account's actor
/// (spawned on first use). Thread-safe; entries are never removed, so pointers stay valid.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <caf/actor.hpp>

#include "domain/account_state.hpp"
#include "pointex/types.hpp"

namespace pointex::engine {

struct AccountEntry {
  explicit AccountEntry(const AccountSpec& s) : spec(s) {}
  /// Immutable after creation (the closed flag lives in `closed`).
  const AccountSpec spec;
  /// What the directory knows of the account being closed (the actor is authoritative).
  std::atomic<bool> closed{false};

  std::mutex mutex;
  /// The live actor, or null while the account's state waits in `dormant`.
  caf::actor actor;
  std::unique_ptr<domain::AccountState> dormant;
};

class Directory {
 public:
  AccountEntry* find(AccountId id) const;
  /// Inserts a new entry holding `state` (dormant); returns it, or the existing entry with
  /// `*inserted` false.
  AccountEntry* insert(std::unique_ptr<domain::AccountState> state, bool* inserted);
  std::uint64_t size() const { return size_.load(std::memory_order_relaxed); }
  void for_each(const std::function<void(AccountEntry&)>& fn) const;

 private:
  static constexpr std::size_t stripes = 64;
  struct Stripe {
    mutable std::mutex mutex;
    std::unordered_map<AccountId, std::unique_ptr<AccountEntry>> entries;
  };
  static std::size_t stripe_of(AccountId id) { return (id * 0x9E3779B97F4A7C15ULL) >> 58; }
  std::array<Stripe, stripes> stripes_;
  std::atomic<std::uint64_t> size_{0};
};

}  // namespace pointex::engine

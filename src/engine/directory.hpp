#pragma once
/// The account directory: account id -> definition, closed flag, and the account's actor
/// (spawned on first use). Thread-safe.
///
/// It holds the accounts in use, not every account: an id it lacks is loaded through the
/// loader (from the read models, which hold every account not in the directory as of its last
/// event: recovery loads every account the log's tail after their checkpoint touches, and an
/// entry leaves only once the read models include its last event).
///
/// Entries leave (passivation) only while nobody holds them: find() pins the entry it returns,
/// and whoever holds a pointer to an entry - a caller between lookup and send, a message, a
/// journal chunk - holds one pin, released with unpin() when done. Pins are taken under the
/// stripe's lock (find) or by the entry's own actor, and removal checks them under that lock,
/// so a removed entry has no holder left.

#include <array>
#include <atomic>
#include <caf/actor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "domain/account_state.hpp"
#include "domain/assert.hpp"
#include "domain/events.hpp"
#include "domain/id_map.hpp"
#include "pointex/status.hpp"
#include "pointex/types.hpp"

namespace pointex::engine {

/// A lock-free stack's nodes (pushed newest first, linked by `next`) in push order.
template <class Node>
Node* oldest_first(Node* list) {
  Node* reversed = nullptr;
  while (list != nullptr) {
    Node* next = list->next;
    list->next = reversed;
    reversed = list;
    list = next;
  }
  return reversed;
}

/// Durable transfers, for their debit account's actor to mark committed (see AckInbox).
struct CommitNode {
  std::vector<domain::Event> events;
  std::uint64_t first_position = 0;
  std::uint64_t first_timestamp = 0;
  CommitNode* next = nullptr;
};

/// A lock-free inbox through which the journal tells a debit account which of its transfers are
/// durable, without a message per commit: the account's actor drains it at the start of every
/// message it handles. Only while the actor has commands parked on an in-flight transfer does
/// it ask (wants_poke) for a message when something arrives. Both sides use sequentially
/// consistent operations in opposite order (push then read the flag; set the flag then drain),
/// so a commit is never missed: either the journal sees the flag, or the actor sees the node.
class AckInbox {
 public:
  ~AckInbox() { delete_list(head_.exchange(nullptr)); }
  /// Journal side. Returns true if the actor asked to be poked.
  bool push(CommitNode* node) {
    node->next = head_.load(std::memory_order_relaxed);
    while (!head_.compare_exchange_weak(node->next, node, std::memory_order_seq_cst)) {
    }
    return wants_poke_.load(std::memory_order_seq_cst);
  }
  /// Actor side: everything pushed so far, oldest first (the caller deletes the nodes).
  CommitNode* drain() { return oldest_first(head_.exchange(nullptr, std::memory_order_seq_cst)); }
  void want_poke(bool on) { wants_poke_.store(on, std::memory_order_seq_cst); }
  bool empty() const { return head_.load(std::memory_order_seq_cst) == nullptr; }

 private:
  static void delete_list(CommitNode* n) {
    while (n != nullptr) delete std::exchange(n, n->next);
  }
  std::atomic<CommitNode*> head_{nullptr};
  std::atomic<bool> wants_poke_{false};
};

/// A credit another account's actor applied through the fast path, for this account's actor
/// to add to its balances.
struct CreditNode {
  domain::TransferKind kind = domain::TransferKind::single;
  std::uint64_t amount = 0;
  std::uint64_t pending_amount = 0;
  CreditNode* next = nullptr;
};

/// Credits without a message (docs/architecture.md): a debit account's actor may commit a
/// transfer whose credit side cannot be refused (domain::credit_needs_owner is false) without
/// sending it to the credit account's actor, which saves that actor an activation per transfer.
/// It enters the credit account's gate, takes room below overflow, appends the event to the
/// journal, pushes the credit here, and leaves the gate; the credit account's actor adds what
/// arrived to its balances at the start of every message it handles.
///
/// The gate is open only while a live actor owns the account and allows it. The owner shuts it
/// (shut()) before anything that must see every credit - closing, passivation, a credit that
/// finds no room - and shut() waits for the debit actors inside (they hold it for one journal
/// append, which never blocks), so afterwards every credit that went this way is here and in
/// the log before anything the owner appends next. Debit actors that find it shut send a
/// message instead, decided in order after the owner's decision.
class CreditInbox {
 public:
  ~CreditInbox() {
    for (CreditNode* n = head_.exchange(nullptr); n != nullptr;) delete std::exchange(n, n->next);
  }
  /// Debit side: false if the gate is shut (then send a message).
  bool enter() {
    if (gate_.fetch_add(1, std::memory_order_acq_rel) >= 0) return true;
    gate_.fetch_sub(1, std::memory_order_release);
    return false;
  }
  void leave() { gate_.fetch_sub(1, std::memory_order_release); }
  /// Takes `amount` of the room below overflow; false (nothing taken) if there is not enough.
  bool take_room(std::uint64_t amount) {
    std::uint64_t room = room_.load(std::memory_order_relaxed);
    do {
      if (room < amount) return false;
    } while (!room_.compare_exchange_weak(room, room - amount, std::memory_order_relaxed));
    return true;
  }
  void give_room(std::uint64_t amount) { room_.fetch_add(amount, std::memory_order_relaxed); }
  /// Debit side, inside the gate, after the events are appended: a chain of credits linked
  /// newest first (`newest`, following `next`, down to `oldest`), as one push.
  void push(CreditNode* newest, CreditNode* oldest) {
    oldest->next = head_.load(std::memory_order_relaxed);
    while (!head_.compare_exchange_weak(oldest->next, newest, std::memory_order_release,
                                        std::memory_order_relaxed)) {
    }
  }

  /// Owner side: everything pushed so far, oldest first (the caller deletes the nodes).
  CreditNode* drain() { return oldest_first(head_.exchange(nullptr, std::memory_order_acquire)); }
  /// Owner side: opens the gate with `room` below overflow. REQUIRES: shut.
  void open(std::uint64_t room) {
    room_.store(room, std::memory_order_relaxed);
    gate_.fetch_add(shut_bias, std::memory_order_release);
  }
  /// Owner side: shuts the gate and waits until no debit actor is inside. REQUIRES: open.
  void shut() {
    gate_.fetch_sub(shut_bias, std::memory_order_acq_rel);
    while (gate_.load(std::memory_order_acquire) != -shut_bias) std::this_thread::yield();
  }
  bool empty() const { return head_.load(std::memory_order_acquire) == nullptr; }

 private:
  static constexpr std::int64_t shut_bias = std::int64_t{1} << 40;
  /// Debit actors inside, minus shut_bias while shut.
  std::atomic<std::int64_t> gate_{-shut_bias};
  std::atomic<std::uint64_t> room_{0};
  std::atomic<CreditNode*> head_{nullptr};
};

struct AccountEntry {
  explicit AccountEntry(const AccountSpec& s) : spec(s) {}
  void pin(std::uint32_t n = 1) { pins.fetch_add(n, std::memory_order_relaxed); }
  void unpin(std::uint32_t n = 1) {
    const std::uint32_t before = pins.fetch_sub(n, std::memory_order_release);
    (void)before;
    POINTEX_ASSERT(before >= n);
  }
  /// Raises last_position to `position` (journal thread, recovery, creation).
  void committed_at(std::uint64_t position) {
    std::uint64_t seen = last_position.load(std::memory_order_relaxed);
    while (seen < position &&
           !last_position.compare_exchange_weak(seen, position, std::memory_order_release)) {
    }
  }

  /// Immutable after creation (the closed flag lives in `closed`).
  const AccountSpec spec;
  /// What the directory knows of the account being closed (the actor is authoritative).
  std::atomic<bool> closed{false};
  /// Holders of a pointer to this entry besides the directory (see Directory).
  std::atomic<std::uint32_t> pins{0};
  /// Position of the last durable event that touched the account.
  std::atomic<std::uint64_t> last_position{0};
  /// Passivation clock tick of the account's last command (Directory::sweep).
  std::atomic<std::uint32_t> last_active{0};

  AckInbox acks;
  CreditInbox credits;

  std::mutex mutex;
  /// Set (release) once `actor` is; from then on `actor` never changes while the engine runs,
  /// so it may be read without the mutex.
  std::atomic<bool> spawned{false};
  /// The live actor, or null while the account's state waits in `dormant`.
  caf::actor actor;
  std::unique_ptr<domain::AccountState> dormant;
};

class Directory {
 public:
  /// Loads an account that is not in memory: `*state` stays null if there is no such account.
  using Loader = std::function<Status(AccountId id, std::unique_ptr<domain::AccountState>* state)>;
  void set_loader(Loader loader) { loader_ = std::move(loader); }

  /// The entry of `id`, pinned (the caller unpins it), loading it if needed; null if there is
  /// no such account, or (logged) if loading failed.
  AccountEntry* find(AccountId id);
  /// The ledger of `id` if the account is in memory (no load, no pin); false otherwise.
  bool ledger_of(AccountId id, LedgerId* ledger) const;
  /// Same, with the loader's failure as status.
  [[nodiscard]] Status lookup(AccountId id, AccountEntry** entry);
  /// find() for each of ids[0, n) into out[0, n) (an id may repeat: pinned once per time),
  /// for routing a batch: the ids are taken stripe by stripe, one lock each, with their cache
  /// misses overlapped (IdMap::find_many) instead of one after the other.
  void find_many(const AccountId* ids, std::size_t n, AccountEntry** out);
  /// Inserts a new entry holding `state` (dormant); returns it pinned, or the existing entry
  /// (pinned) with `*inserted` false.
  AccountEntry* insert(std::unique_ptr<domain::AccountState> state, bool* inserted);
  std::uint64_t size() const { return size_.load(std::memory_order_relaxed); }
  void for_each(const std::function<void(AccountEntry&)>& fn) const;

  /// What sweep() and release_if_unheld() do with an entry.
  enum class Sweep : std::uint8_t { keep, remove };
  /// If nobody holds `entry` (no pins), calls `decide` under the stripe's lock (so nobody can
  /// take a pin meanwhile) and removes the entry if it answers `remove`: the entry is then
  /// destroyed and the caller must not touch it. Returns `keep` without calling `decide` if
  /// the entry is held.
  Sweep release_if_unheld(AccountEntry* entry, const std::function<Sweep()>& decide);
  /// Walks the entries one stripe at a time under its lock, starting after the stripe where the
  /// previous walk stopped, until `more()` answers false or every stripe was seen; `fn` sees
  /// only entries nobody holds, and those it answers `remove` for are removed (fn must not call
  /// the directory). Returns whether every stripe was seen.
  bool sweep(const std::function<Sweep(AccountEntry&)>& fn, const std::function<bool()>& more);

 private:
  static constexpr std::size_t stripes = 64;
  struct Stripe {
    mutable std::mutex mutex;
    /// Flat: two lookups per transfer when routing it (domain/id_map.hpp).
    domain::IdMap<std::unique_ptr<AccountEntry>> entries;
  };
  static std::size_t stripe_of(AccountId id) { return (id * 0x9E3779B97F4A7C15ULL) >> 58; }
  std::array<Stripe, stripes> stripes_;
  Loader loader_;
  std::size_t sweep_cursor_ = 0;  // sweeper thread only
  std::atomic<std::uint64_t> size_{0};
};

}  // namespace pointex::engine

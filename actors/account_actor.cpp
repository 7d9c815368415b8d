// The account actor: the only writer of one account's state. Thin: every rule is in
// src/domain; this file routes items, parks commands that wait on an in-flight transfer, and
// hands committed events to the journal.

#include "actors/account_actor.hpp"

#include <algorithm>
#include <atomic>
#include <caf/all.hpp>
#include <chrono>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/messages.hpp"
#include "domain/decide.hpp"
#include "engine/account_loader.hpp"
#include "engine/engine_impl.hpp"
#include "engine/log.hpp"
#include "engine/transfer_batch.hpp"

namespace pointex::actors {
namespace {

/// Wakes the actor of `entry`, which asked for it (AckInbox::want_poke) with commands parked.
/// The chunks hold no handle of the actor: a handle's reference count is an atomic shared with
/// the actor's own threads, which each chunk would touch twice, and a poke is rare. The actor
/// cannot have left meanwhile: it stops only with nothing parked and its inbox drained, and if
/// it drained the commit and stopped already, nothing waits for this poke (null actor).
void poke(engine::AccountEntry& entry) {
  caf::actor actor;
  {
    std::lock_guard<std::mutex> lock(entry.mutex);
    actor = entry.actor;
  }
  if (actor) caf::anon_send(actor, Poke{});
}

/// Transfers committed together: by a credit account's actor (one credit account), or by a
/// debit account's actor through the credit fast path (any number of credit accounts).
/// Answered on the writer thread once durable.
class TransferChunk final : public store::JournalChunk {
 public:
  struct Completion {
    engine::TransferBatch* batch;
    std::uint32_t index;
  };
  std::vector<Completion> completions;
  /// Each pinned by this chunk until it is answered.
  engine::AccountEntry* debit_entry = nullptr;
  std::vector<engine::AccountEntry*> credit_entries;
  /// False from the append until the debit actor has pushed this chunk's credits to their
  /// accounts' inboxes (credits without a message push after the append, so that nothing the
  /// credit accounts decide on them reaches the log before them). The answers wait for it: a
  /// caller that got its answer and then reads the credit account must see the credit. The
  /// chunk lives until then (its answer, or its failure, waits), so the actor may set it.
  std::atomic<bool> credits_pushed{true};

  void wait_for_credits() const {
    while (!credits_pushed.load(std::memory_order_acquire)) std::this_thread::yield();
  }

  void on_durable() override {
    wait_for_credits();
    const std::uint64_t last = first_position + events.size() - 1;
    debit_entry->committed_at(last);
    for (engine::AccountEntry* credit : credit_entries) credit->committed_at(last);
    // Tell the debit account first, then the callers: whatever a caller does after its answer
    // (a retry, closing the account) reaches the debit actor after the commit is in its inbox.
    auto* node = new engine::CommitNode{std::move(events), first_position, first_timestamp};
    if (debit_entry->acks.push(node)) poke(*debit_entry);
    for (std::size_t i = 0; i < completions.size(); ++i) {
      if (completions[i].batch == nullptr) continue;
      completions[i].batch->complete(completions[i].index,
                                     {TransferResult::ok, first_timestamp + i, first_position + i});
    }
    unpin();
  }
  void on_failed(const Status&) override {
    // A refused append (first_position 0) is answered in the actor's own append call, which
    // pushes nothing then; a group that failed later is answered on the writer thread.
    if (first_position != 0) wait_for_credits();
    for (const Completion& c : completions) {
      if (c.batch != nullptr) c.batch->fail(c.index);
    }
    unpin();
  }

 private:
  void unpin() {
    debit_entry->unpin();
    for (engine::AccountEntry* credit : credit_entries) credit->unpin();
  }
};

class CloseChunk final : public store::JournalChunk {
 public:
  std::function<void(const Status&, CloseResult, const Account&)> reply;
  Account account;
  engine::AccountEntry* entry = nullptr;  // pinned
  void on_durable() override {
    if (!events.empty()) entry->committed_at(first_position);
    reply(Status::ok(), CloseResult::ok, account);
    entry->unpin();
  }
  void on_failed(const Status& status) override {
    reply(status, CloseResult::ok, account);
    entry->unpin();
  }
};

struct AccountActorState {
  static inline const char* name = "pointex.account";
  Engine::Impl* core = nullptr;
  engine::AccountEntry* entry = nullptr;
  std::unique_ptr<domain::AccountState> account;
  bool poke_wanted = false;
  /// Whether this actor opened the account's credit gate (CreditInbox).
  bool gate_open = false;
  /// Debits applied tentatively and not yet durable or undone.
  std::uint64_t uncommitted = 0;
  /// Position of the account's last durable debit (at spawn: of its last event), for expiries
  /// computed from the read models (TransferBatch::lots_as_of).
  std::uint64_t last_debit_position = 0;
  /// The id of an expiry of due lots decided and not yet durable or undone, else 0. Debits
  /// decided meanwhile wait for it: they go to other credit accounts, so they could reach the
  /// log before it, and the log's order decides which lots a debit consumes (docs/expiry.md).
  TransferId expiry_in_flight = 0;
  /// Commands waiting for an in-flight transfer (by its id) to be durable or undone.
  std::unordered_map<TransferId, std::vector<DebitItem>> parked;
  /// Per handler: accepted events grouped by credit account (entry null: look it up by id).
  struct Outgoing {
    AccountId credit;
    engine::AccountEntry* entry;
    /// Pins on `entry` the items brought along (released once the batch is sent).
    std::uint32_t pins;
    CreditBatch batch;
  };
  std::vector<Outgoing> outbox;
  /// credit account -> its place in `outbox`, once the outbox is too long to search.
  std::unordered_map<AccountId, std::size_t> outbox_index;
  std::vector<ExpiryEntry> expiries;
};

using Self = caf::stateful_actor<AccountActorState>;

/// The batch for `credit`; `entry` (null: look it up by id) brings one pin along.
CreditBatch& outbox_for(AccountActorState& st, AccountId credit, engine::AccountEntry* entry) {
  constexpr std::size_t scan_max = 16;  // past it, an index (a hot account credits thousands)
  const std::uint32_t pin = entry != nullptr ? 1 : 0;
  AccountActorState::Outgoing* found = nullptr;
  if (st.outbox.size() <= scan_max) {
    for (auto& out : st.outbox) {
      if (out.credit == credit) found = &out;
    }
  } else {
    if (st.outbox_index.empty()) {
      for (std::size_t i = 0; i < st.outbox.size(); ++i) st.outbox_index[st.outbox[i].credit] = i;
    }
    const auto it = st.outbox_index.find(credit);
    if (it != st.outbox_index.end()) found = &st.outbox[it->second];
  }
  if (found != nullptr) {
    if (found->entry == nullptr) found->entry = entry;
    found->pins += pin;
    return found->batch;
  }
  if (!st.outbox_index.empty()) st.outbox_index.emplace(credit, st.outbox.size());
  st.outbox.push_back({credit, entry, pin, CreditBatch{{}, st.entry}});
  return st.outbox.back().batch;
}

/// Adds the credits other actors applied through the fast path to the balances.
void absorb_credits(AccountActorState& st) {
  engine::CreditNode* node = st.entry->credits.drain();
  while (node != nullptr) {
    domain::TransferEvent e;
    e.kind = node->kind;
    e.credit_account = st.account->id();
    e.amount = node->amount;
    e.pending_amount = node->pending_amount;
    domain::apply_credit(*st.account, e);
    delete std::exchange(node, node->next);
  }
}

/// Lets debit actors credit this account without a message, with the room it has now.
void open_gate(AccountActorState& st) {
  if (st.gate_open || st.account->closed()) return;
  st.entry->credits.open(domain::credit_room(st.account->account));
  st.gate_open = true;
}

/// Shuts the credit gate and adds every credit that went through it: from here until
/// open_gate(), the balances include every credit of the account appended so far.
void shut_gate(AccountActorState& st) {
  if (st.gate_open) {
    st.entry->credits.shut();
    st.gate_open = false;
  }
  absorb_credits(st);
}

/// The credit fast path for the batch of one credit account: true if its gate let us in and
/// none of the credits needs the account's own decision (then the caller appends the events,
/// pushes the credits and leaves the gate).
bool enter_gate(engine::AccountEntry& credit, const CreditBatch& batch) {
  if (!credit.credits.enter()) return false;
  std::uint64_t taken = 0;
  for (const CreditItem& item : batch.items) {
    const std::uint64_t room = domain::credit_room_needed(item.event);
    if (domain::credit_needs_owner(credit.spec, item.event) ||
        (room != 0 && !credit.credits.take_room(room))) {
      credit.credits.give_room(taken);
      credit.credits.leave();
      return false;
    }
    taken += room;
  }
  return true;
}

/// Sends what the handler decided. Credits that cannot be refused are committed here, in one
/// journal chunk (the credit fast path); the others go to their credit account's actor.
void flush_outbox(Self* self) {
  AccountActorState& st = self->state;
  std::unique_ptr<TransferChunk> chunk;
  struct Entered {
    engine::AccountEntry* entry;
    std::uint32_t pins;
    /// The credits for `entry`, linked newest first (pushed as one chain).
    engine::CreditNode* newest;
    engine::CreditNode* oldest;
    /// What they took from the entry's room below overflow.
    std::uint64_t room;
  };
  std::vector<Entered> entered;
  const std::uint32_t tick = st.core->passivation_tick.load(std::memory_order_relaxed);
  for (auto& out : st.outbox) {
    engine::AccountEntry* entry = out.entry;
    if (entry == nullptr) {
      entry = st.core->directory.find(out.credit);
      POINTEX_ASSERT(entry != nullptr);  // a pending transfer's credit account exists
      out.pins = 1;
    }
    if (enter_gate(*entry, out.batch)) {
      if (!chunk) chunk = std::make_unique<TransferChunk>();
      Entered e{entry, out.pins, nullptr, nullptr, 0};
      for (CreditItem& item : out.batch.items) {
        const domain::TransferEvent& ev = item.event;
        e.newest = new engine::CreditNode{ev.kind, ev.amount, ev.pending_amount, e.newest};
        if (e.oldest == nullptr) e.oldest = e.newest;
        e.room += domain::credit_room_needed(ev);
        chunk->events.emplace_back(std::move(item.event));
        chunk->completions.push_back({item.batch, item.index});
      }
      entry->last_active.store(tick, std::memory_order_relaxed);
      entry->pin();  // the chunk's
      chunk->credit_entries.push_back(entry);
      entered.push_back(std::move(e));
      continue;
    }
    st.entry->pin();  // the batch's debit_entry, handed on to the credit's journal chunk
    self->send(st.core->actor_of(*entry), std::move(out.batch));
    entry->unpin(out.pins);
  }
  st.outbox.clear();
  st.outbox_index.clear();
  if (chunk) {
    st.entry->pin();
    chunk->debit_entry = st.entry;
    // Appended before the credits are pushed: anything the credit accounts decide on them is
    // appended after them. Its answers wait until they are pushed (credits_pushed).
    const std::size_t events = chunk->events.size();
    TransferChunk* appending = chunk.get();
    appending->credits_pushed.store(entered.empty(), std::memory_order_relaxed);
    const bool appended = st.core->journal->append(std::move(chunk)).first_position != 0;
    if (appended) st.core->direct_credits.fetch_add(events, std::memory_order_relaxed);
    if (const std::uint32_t delay_us =
            st.core->test_credit_push_delay_us.load(std::memory_order_relaxed);
        delay_us != 0 && appended) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    }
    for (Entered& e : entered) {
      if (appended) {
        e.entry->credits.push(e.newest, e.oldest);
      } else {  // the log failed (fail-stop): nothing was credited
        e.entry->credits.give_room(e.room);
        while (e.newest != nullptr) delete std::exchange(e.newest, e.newest->next);
      }
    }
    // Not touched after this (a refused append answered and freed it at once).
    if (appended && !entered.empty()) {
      appending->credits_pushed.store(true, std::memory_order_release);
    }
    for (Entered& e : entered) {
      e.entry->credits.leave();
      if (e.pins != 0) e.entry->unpin(e.pins);
    }
  }
  if (!st.expiries.empty()) {
    self->send(st.core->expiry, ScheduleExpiry{std::move(st.expiries)});
    st.expiries.clear();
  }
}

/// Loads the records `ids` names that are not in memory (one id array, or a batch's ids).
/// False (logged) if the read models could not be read.
template <class Ids>
bool load_records(AccountActorState& st, Ids&& ids) {
  const Status s =
      engine::load_records(*st.core->read_model, *st.account, ids, &st.core->records_loaded);
  if (s.is_ok()) return true;
  log().error("account {}: loading transfer records: {}", st.account->id(), s.to_string());
  return false;
}

/// The item is answered without reaching its credit account: release the pin it carried.
void release_credit(const DebitItem& item) {
  if (item.credit_entry != nullptr) item.credit_entry->unpin();
}

/// Stamps the account as used now (passivation picks the idle ones).
void touch(AccountActorState& st) {
  st.entry->last_active.store(st.core->passivation_tick.load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
}

/// An expiry of due lots computed from the read models at the batch's `lots_as_of`
/// (docs/expiry.md): false when the read models may not have this account's lots as they are (a
/// debit in flight or after the checkpoint). Else takes at most what the account has available
/// (accounts without the debit limit too; balancing_debit clamps the others alike); false with the
/// item answered when nothing is.
bool expiry_guard(AccountActorState& st, DebitItem& item) {
  if (st.uncommitted > 0 || st.last_debit_position > item.batch->lots_as_of) {
    release_credit(item);
    item.batch->fail(item.index);  // tried again at the next sweep
    return false;
  }
  const std::int64_t available = st.account->account.available();
  if (available <= 0) {
    release_credit(item);
    item.batch->complete(item.index, {TransferResult::exceeds_credits, 0, 0});
    return false;
  }
  const auto room = static_cast<std::uint64_t>(available);
  if (item.transfer.amount > room) item.transfer.amount = room;
  return true;
}

/// `preloaded`: the batch's records were loaded already (absent ones are not looked up again).
void decide_one(Self* self, DebitItem& item, std::uint64_t now, bool preloaded = false) {
  AccountActorState& st = self->state;
  if (!preloaded && !load_records(st, domain::records_needed(item.transfer))) {
    release_credit(item);
    item.batch->fail(item.index);
    return;
  }
  const bool expiry = item.batch->lots_as_of != 0;
  if (expiry && !expiry_guard(st, item)) return;
  if (st.expiry_in_flight != 0 && !expiry) {
    st.parked[st.expiry_in_flight].push_back(item);  // decided after the expiry is in the log
    return;
  }
  domain::DebitDecision d = domain::decide_debit(*st.account, item.transfer, item.credit_closed,
                                                 now, item.batch->workflow);
  switch (d.kind) {
    case domain::DebitDecision::Kind::reject:
      release_credit(item);
      item.batch->complete(item.index, {d.result, 0, 0});
      return;
    case domain::DebitDecision::Kind::exists:
      release_credit(item);
      if (d.result == TransferResult::exists) {
        item.batch->complete(item.index, {d.result, d.record->event.timestamp, d.record->position});
      } else {
        item.batch->complete(item.index, {d.result, 0, 0});
      }
      return;
    case domain::DebitDecision::Kind::wait:
      st.parked[d.wait_for].push_back(item);
      return;
    case domain::DebitDecision::Kind::accept:
      break;
  }
  d.event.record_hint = domain::apply_debit(*st.account, d.event);
  ++st.uncommitted;
  if (expiry) st.expiry_in_flight = d.event.request.id;
  if (d.event.kind == domain::TransferKind::pending && d.event.expires_at != 0) {
    st.expiries.push_back({d.event.expires_at, st.account->id(), d.event.request.id});
  }
  outbox_for(st, d.event.credit_account, item.credit_entry)
      .items.push_back({d.event, item.batch, item.index});
}

/// Decides again the commands that waited on `id`.
void wake(Self* self, TransferId id, std::uint64_t now) {
  auto it = self->state.parked.find(id);
  if (it == self->state.parked.end()) return;
  std::vector<DebitItem> items = std::move(it->second);
  self->state.parked.erase(it);
  for (DebitItem& item : items) decide_one(self, item, now);
}

/// Marks durable what the journal acknowledged, and decides again what waited on it.
/// Returns whether anything arrived.
bool absorb_commits(Self* self, std::uint64_t now) {
  AccountActorState& st = self->state;
  absorb_credits(st);
  engine::CommitNode* node = st.entry->acks.drain();
  if (node == nullptr) return false;
  while (node != nullptr) {
    for (std::size_t i = 0; i < node->events.size(); ++i) {
      const auto& e = std::get<domain::TransferEvent>(node->events[i]);
      domain::confirm_debit(*st.account, e, node->first_timestamp + i, node->first_position + i);
      if (e.request.id == st.expiry_in_flight) st.expiry_in_flight = 0;
    }
    st.uncommitted -= node->events.size();
    st.last_debit_position =
        std::max(st.last_debit_position, node->first_position + node->events.size() - 1);
    if (!st.parked.empty()) {
      for (const domain::Event& event : node->events) {
        const auto& e = std::get<domain::TransferEvent>(event);
        if (e.request.id != 0) wake(self, e.request.id, now);
        if (e.is_two_phase_resolution()) wake(self, e.pending_id(), now);
      }
    }
    delete std::exchange(node, node->next);
  }
  return true;
}

void on_fail_parked(Self* self);

/// Ends every handler: while commands are parked, ask the journal for a poke, and absorb what
/// arrived meanwhile (see AckInbox); then send what was decided.
void settle(Self* self, std::uint64_t now) {
  AccountActorState& st = self->state;
  for (;;) {
    const bool want = !st.parked.empty();
    if (want != st.poke_wanted) {
      st.entry->acks.want_poke(want);
      st.poke_wanted = want;
    }
    if (!want || !absorb_commits(self, now)) break;
  }
  flush_outbox(self);
  // A log that failed before this handler's commands were parked sent its FailParked earlier
  // (or before this actor existed): nothing will wake them, so answer them now.
  if (!st.parked.empty() && st.core->journal->failed()) on_fail_parked(self);
  touch(st);
  const std::size_t cached_max = st.core->records_cap.load(std::memory_order_relaxed);
  if (st.account->transfers.size() > cached_max) {
    domain::evict_records(*st.account, st.core->projector->checkpoint(), cached_max / 2);
  }
}

void on_debits(Self* self, DebitBatch& msg) {
  AccountActorState& st = self->state;
  const std::uint64_t now = st.core->now();
  absorb_commits(self, now);
  // Records of the batch not in memory: one batched read instead of one per item.
  bool preloaded = false;
  if (!st.account->records_complete() && msg.items.size() > 1) {
    std::vector<TransferId> ids;
    ids.reserve(msg.items.size());
    for (const DebitItem& item : msg.items) {
      for (const TransferId id : domain::records_needed(item.transfer)) ids.push_back(id);
    }
    preloaded = load_records(st, ids);  // if not, each item tries again on its own
  }
  for (DebitItem& item : msg.items) decide_one(self, item, now, preloaded);
  settle(self, now);
}

void on_credits(Self* self, CreditBatch& msg) {
  AccountActorState& st = self->state;
  absorb_credits(st);
  auto chunk = std::make_unique<TransferChunk>();
  chunk->events.reserve(msg.items.size());
  chunk->completions.reserve(msg.items.size());
  RefusalBatch refusals;
  for (CreditItem& item : msg.items) {
    TransferResult r = domain::decide_credit(*st.account, item.event);
    const std::uint64_t room = domain::credit_room_needed(item.event);
    if (r == TransferResult::ok && st.gate_open && !st.entry->credits.take_room(room)) {
      // Fast-path credits in flight may have taken the room: decide with all of them.
      shut_gate(st);
      r = domain::decide_credit(*st.account, item.event);
    }
    if (r != TransferResult::ok) {
      refusals.items.push_back({item.event, r, item.batch, item.index});
      continue;
    }
    domain::apply_credit(*st.account, item.event);
    chunk->events.emplace_back(std::move(item.event));
    chunk->completions.push_back({item.batch, item.index});
  }
  open_gate(st);
  caf::actor debit = caf::actor_cast<caf::actor>(self->current_sender());
  POINTEX_ASSERT(debit);
  POINTEX_ASSERT(msg.debit_entry != nullptr);
  touch(st);
  if (!refusals.items.empty()) self->send(debit, std::move(refusals));
  if (chunk->events.empty()) {
    msg.debit_entry->unpin();
    return;
  }
  chunk->debit_entry = msg.debit_entry;  // the message's pin moves to the chunk
  chunk->credit_entries.push_back(st.entry);
  st.entry->pin();
  st.core->journal->append(std::move(chunk));
}

void on_refusals(Self* self, RefusalBatch& msg) {
  AccountActorState& st = self->state;
  const std::uint64_t now = st.core->now();
  absorb_commits(self, now);
  for (Refusal& r : msg.items) {
    domain::revert_debit(*st.account, r.event);
    --st.uncommitted;
    if (r.event.request.id == st.expiry_in_flight) st.expiry_in_flight = 0;
    if (r.batch != nullptr) r.batch->complete(r.index, {r.result, 0, 0});
  }
  for (Refusal& r : msg.items) {
    if (r.event.request.id != 0) wake(self, r.event.request.id, now);
    if (r.event.is_two_phase_resolution()) wake(self, r.event.pending_id(), now);
  }
  settle(self, now);
}

void on_expire(Self* self, ExpireDue& msg) {
  AccountActorState& st = self->state;
  const std::uint64_t now = st.core->now();
  absorb_commits(self, now);
  for (TransferId pending_id : msg.pending_ids) {
    if (!load_records(st, std::array<TransferId, 2>{pending_id, 0}))
      continue;  // it is tried again at the next open
    std::optional<domain::TransferEvent> e = domain::decide_expire(*st.account, pending_id, now);
    if (!e) continue;
    domain::apply_debit(*st.account, *e);
    ++st.uncommitted;
    outbox_for(st, e->credit_account, nullptr).items.push_back({*e, nullptr, 0});
  }
  settle(self, now);
}

void on_close(Self* self, CloseRequest& msg) {
  AccountActorState& st = self->state;
  absorb_commits(self, st.core->now());
  shut_gate(st);  // a credit that passes the gate now comes after the close: it is refused
  const CloseResult r = domain::decide_close(*st.account);
  auto chunk = std::make_unique<CloseChunk>();
  chunk->reply = std::move(msg.reply);
  if (r != CloseResult::ok) {
    open_gate(st);
    chunk->reply(Status::ok(), r, st.account->account);
    return;
  }
  if (!st.account->closed()) {
    domain::apply_close(*st.account);
    chunk->events.emplace_back(domain::AccountClosed{st.account->id(), 0});
    st.entry->closed.store(true, std::memory_order_release);
  }
  // A repeated close is a barrier: answered once the first close is durable.
  chunk->account = st.account->account;
  chunk->entry = st.entry;
  st.entry->pin();
  st.core->journal->append(std::move(chunk));
}

void on_fail_parked(Self* self) {
  for (auto& [id, items] : self->state.parked) {
    for (DebitItem& item : items) {
      release_credit(item);
      item.batch->fail(item.index);
    }
  }
  self->state.parked.clear();
}

/// Stops if nothing of the account is in flight: its state goes back to the directory
/// (dormant), or leaves memory when asked to and the read models include the account's last
/// event (then they hold its state and records, and the next command loads them from there).
void on_passivate(Self* self, bool leave_memory) {
  AccountActorState& st = self->state;
  const std::uint64_t now = st.core->now();
  absorb_commits(self, now);
  settle(self, now);
  if (!st.parked.empty() || st.uncommitted != 0) return;
  shut_gate(st);  // the state that leaves the actor holds every credit
  engine::AccountEntry* entry = st.entry;
  const std::uint64_t checkpoint = st.core->projector->checkpoint();
  bool stopped = false;
  const auto decision = st.core->directory.release_if_unheld(entry, [&] {
    using Sweep = engine::Directory::Sweep;
    if (!self->mailbox().empty() || !entry->acks.empty() || !entry->credits.empty()) {
      return Sweep::keep;
    }
    stopped = true;
    if (leave_memory && entry->last_position.load(std::memory_order_acquire) <= checkpoint) {
      return Sweep::remove;
    }
    std::lock_guard<std::mutex> lock(entry->mutex);
    entry->dormant = std::move(st.account);
    entry->spawned.store(false, std::memory_order_release);
    entry->actor = nullptr;
    return Sweep::keep;
  });
  if (!stopped) return open_gate(st);
  if (decision == engine::Directory::Sweep::remove) st.core->passivated.fetch_add(1);
  st.entry = nullptr;  // removed, or no longer this actor's
  self->quit();
}

caf::behavior account_actor(Self* self, Engine::Impl* core, engine::AccountEntry* entry,
                            domain::AccountState* account) {
  self->state.core = core;
  self->state.entry = entry;
  self->state.account.reset(account);
  self->state.last_debit_position = entry->last_position.load(std::memory_order_acquire);
  core->live_actors.fetch_add(1, std::memory_order_relaxed);
  self->attach_functor([core] { core->live_actors.fetch_sub(1, std::memory_order_relaxed); });
  open_gate(self->state);
  return {
      [=](DebitBatch& msg) { on_debits(self, msg); },
      [=](CreditBatch& msg) { on_credits(self, msg); },
      [=](Poke&) {
        const std::uint64_t now = self->state.core->now();
        absorb_commits(self, now);
        settle(self, now);
      },
      [=](RefusalBatch& msg) { on_refusals(self, msg); },
      [=](ExpireDue& msg) { on_expire(self, msg); },
      [=](CloseRequest& msg) { on_close(self, msg); },
      [=](LookupAccount& msg) {
        absorb_credits(self->state);
        msg.reply(self->state.account->account);
      },
      [=](LookupTransfer& msg) {
        absorb_commits(self, self->state.core->now());
        settle(self, self->state.core->now());
        (void)load_records(self->state, std::array<TransferId, 2>{msg.id, 0});
        const auto& transfers = self->state.account->transfers;
        const auto it = transfers.find(msg.id);
        if (it == transfers.end() || !it->second.committed) {
          msg.reply(std::nullopt);
        } else {
          msg.reply(domain::transfer_info(it->second));
        }
      },
      [=](FailParked&) { on_fail_parked(self); },
      [=](Passivate& msg) { on_passivate(self, msg.leave_memory); },
  };
}

}  // namespace

caf::actor spawn_account_actor(caf::actor_system& system, Engine::Impl* core,
                               engine::AccountEntry* entry,
                               std::unique_ptr<domain::AccountState> account) {
  return system.spawn(account_actor, core, entry, account.release());
}

}  // namespace pointex::actors

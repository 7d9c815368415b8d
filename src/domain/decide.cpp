#include "domain/decide.hpp"

#include <algorithm>

#include "domain/assert.hpp"
#include "domain/lots.hpp"

namespace pointex::domain {
namespace {

__extension__ typedef unsigned __int128 u128;

constexpr std::uint64_t ns_per_s = 1'000'000'000ULL;

bool exceeds_max(u128 sum) {
  return sum > static_cast<u128>(amount_sum_max);
}

TransferKind kind_of(std::uint32_t flags) {
  if ((flags & transfer_flags::pending) != 0) return TransferKind::pending;
  if ((flags & transfer_flags::post_pending) != 0) return TransferKind::post;
  if ((flags & transfer_flags::void_pending) != 0) return TransferKind::void_pending;
  return TransferKind::single;
}

int popcount(std::uint32_t x) {
  return __builtin_popcount(x);
}

DebitDecision reject(TransferResult result) {
  DebitDecision d;
  d.kind = DebitDecision::Kind::reject;
  d.result = result;
  return d;
}

DebitDecision wait_for(TransferId id) {
  DebitDecision d;
  d.kind = DebitDecision::Kind::wait;
  d.wait_for = id;
  return d;
}

DebitDecision accept(TransferEvent event) {
  DebitDecision d;
  d.kind = DebitDecision::Kind::accept;
  d.event = event;
  return d;
}

std::uint64_t expiry_of(std::uint64_t now_ns, std::uint32_t timeout_s) {
  if (timeout_s == 0) return 0;
  const u128 at = static_cast<u128>(now_ns) + static_cast<u128>(timeout_s) * ns_per_s;
  return at > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(at);
}

bool expired_at(const TransferEvent& pending, std::uint64_t now_ns) {
  return pending.expires_at != 0 && now_ns >= pending.expires_at;
}

DebitDecision decide_new_debit(const AccountState& debit, const Transfer& t, TransferKind kind,
                               std::uint64_t now_ns) {
  const Account& a = debit.account;
  std::uint64_t amount = t.amount;
  if ((a.spec.flags & account_flags::debits_must_not_exceed_credits) != 0) {
    const u128 held = static_cast<u128>(a.debits_posted) + a.debits_pending;
    if ((t.flags & transfer_flags::balancing_debit) != 0) {
      // As much as the limit allows, up to the amount asked.
      const u128 room = held >= a.credits_posted ? 0 : a.credits_posted - held;
      if (room == 0) return reject(TransferResult::exceeds_credits);
      if (room < amount) amount = static_cast<std::uint64_t>(room);
    }
    if (held + amount > a.credits_posted) return reject(TransferResult::exceeds_credits);
  }
  // Posted and pending together stay within amount_sum_max, so available() always fits.
  if (exceeds_max(static_cast<u128>(a.debits_posted) + a.debits_pending + amount)) {
    return reject(TransferResult::overflow);
  }

  TransferEvent e;
  e.request = t;
  e.kind = kind;
  e.debit_account = t.debit_account;
  e.credit_account = t.credit_account;
  e.ledger = t.ledger;
  e.code = t.code;
  e.amount = amount;
  e.expires_at = kind == TransferKind::pending ? expiry_of(now_ns, t.timeout_s) : 0;
  return accept(e);
}

DebitDecision decide_resolution(const AccountState& debit, const Transfer& t, TransferKind kind,
                                std::uint64_t now_ns, bool workflow) {
  const auto it = debit.transfers.find(t.pending_id);
  if (it == debit.transfers.end()) return reject(TransferResult::pending_transfer_not_found);
  const TransferRecord& p = it->second;
  if (!p.committed) return wait_for(t.pending_id);
  if (p.event.kind != TransferKind::pending) return reject(TransferResult::not_a_pending_transfer);
  // Only the workflow that made it resolves a leg (else one leg could move without the other).
  if (!workflow && workflow_transfer_code(p.event.code)) {
    return reject(TransferResult::code_reserved);
  }
  if (p.busy_with != 0) return wait_for(p.busy_with);
  switch (p.state) {
    case TransferState::posted:
      return reject(TransferResult::pending_transfer_already_posted);
    case TransferState::voided:
      return reject(TransferResult::pending_transfer_already_voided);
    case TransferState::expired:
      return reject(TransferResult::pending_transfer_expired);
    case TransferState::pending:
      break;
  }
  if (expired_at(p.event, now_ns)) return reject(TransferResult::pending_transfer_expired);
  const TransferEvent& pe = p.event;
  if ((t.credit_account != 0 && t.credit_account != pe.credit_account) ||
      (t.ledger != 0 && t.ledger != pe.ledger) || (t.code != 0 && t.code != pe.code)) {
    return reject(TransferResult::pending_transfer_has_different_fields);
  }
  std::uint64_t amount = pe.amount;
  if (kind == TransferKind::post) {
    if (t.amount > pe.amount) return reject(TransferResult::exceeds_pending_amount);
    if (t.amount != 0) amount = t.amount;
    // No overflow check: a post moves at most the pending amount from pending to posted.
  } else if (t.amount != 0 && t.amount != pe.amount) {
    return reject(TransferResult::pending_transfer_has_different_fields);
  }
  TransferEvent e;
  e.request = t;
  e.kind = kind;
  e.debit_account = pe.debit_account;
  e.credit_account = pe.credit_account;
  e.ledger = pe.ledger;
  e.code = pe.code;
  e.amount = amount;
  e.pending_amount = pe.amount;
  return accept(e);
}

TransferRecord& record_of(AccountState& s, TransferId id) {
  const auto it = s.transfers.find(id);
  POINTEX_ASSERT(it != s.transfers.end());
  return it->second;
}

void release_debit_pending(Account& a, std::uint64_t pending_amount) {
  POINTEX_ASSERT(a.debits_pending >= pending_amount);
  a.debits_pending -= pending_amount;
}

/// The debit side's balance effect of an event.
void debit_balances(Account& a, const TransferEvent& e) {
  switch (e.kind) {
    case TransferKind::single:
      a.debits_posted += e.amount;
      break;
    case TransferKind::pending:
      a.debits_pending += e.amount;
      break;
    case TransferKind::post:
      POINTEX_ASSERT(e.amount <= e.pending_amount);
      release_debit_pending(a, e.pending_amount);
      a.debits_posted += e.amount;
      break;
    case TransferKind::void_pending:
    case TransferKind::expire:
      release_debit_pending(a, e.pending_amount);
      break;
  }
  POINTEX_ASSERT(static_cast<u128>(a.debits_posted) + a.debits_pending <= amount_sum_max);
}

/// The credit side's balance effect of an event.
void credit_balances(Account& a, const TransferEvent& e) {
  switch (e.kind) {
    case TransferKind::single:
      a.credits_posted += e.amount;
      break;
    case TransferKind::pending:
      a.credits_pending += e.amount;
      break;
    case TransferKind::post:
      POINTEX_ASSERT(a.credits_pending >= e.pending_amount);
      a.credits_pending -= e.pending_amount;
      a.credits_posted += e.amount;
      break;
    case TransferKind::void_pending:
    case TransferKind::expire:
      POINTEX_ASSERT(a.credits_pending >= e.pending_amount);
      a.credits_pending -= e.pending_amount;
      break;
  }
  POINTEX_ASSERT(static_cast<u128>(a.credits_posted) + a.credits_pending <= amount_sum_max);
}

}  // namespace

TransferResult validate_transfer(const Transfer& t) {
  if (t.id == 0) return TransferResult::id_must_not_be_zero;
  if ((t.flags & ~transfer_flags::all) != 0) return TransferResult::unknown_flags;
  // balancing_debit is a single transfer's: alone, like the others.
  if (popcount(t.flags & transfer_flags::all) > 1) {
    return TransferResult::flags_are_mutually_exclusive;
  }
  if (t.debit_account == 0) return TransferResult::debit_account_must_not_be_zero;
  const TransferKind kind = kind_of(t.flags);
  if (kind == TransferKind::single || kind == TransferKind::pending) {
    if (t.credit_account == 0) return TransferResult::credit_account_must_not_be_zero;
    if (t.amount == 0) return TransferResult::amount_must_not_be_zero;
    if (t.debit_account == t.credit_account) return TransferResult::accounts_must_be_different;
    if (t.pending_id != 0) return TransferResult::pending_id_must_be_zero;
    if (kind == TransferKind::single && t.timeout_s != 0) {
      return TransferResult::timeout_reserved_for_pending_transfer;
    }
    if (t.ledger == 0) return TransferResult::ledger_must_not_be_zero;
    if (t.code == 0) return TransferResult::code_must_not_be_zero;
    return TransferResult::ok;
  }
  if (t.debit_account == t.credit_account) return TransferResult::accounts_must_be_different;
  if (t.pending_id == 0) return TransferResult::pending_id_must_not_be_zero;
  if (t.pending_id == t.id) return TransferResult::pending_id_must_be_different;
  if (t.timeout_s != 0) return TransferResult::timeout_reserved_for_pending_transfer;
  return TransferResult::ok;
}

TransferResult check_accounts(const Transfer& t, const AccountSpec* debit,
                              const AccountSpec* credit) {
  if (debit == nullptr) return TransferResult::debit_account_not_found;
  if (t.credit_account != 0 && credit == nullptr) return TransferResult::credit_account_not_found;
  if (t.ledger != 0 && t.ledger != debit->ledger) return TransferResult::ledger_mismatch;
  if (credit != nullptr && credit->ledger != debit->ledger) return TransferResult::ledger_mismatch;
  return TransferResult::ok;
}

TransferResult check_client_transfer(const Transfer& t) {
  if (t.id >= workflow_transfer_id_min) return TransferResult::id_reserved;
  if (workflow_transfer_code(t.code)) return TransferResult::code_reserved;
  return TransferResult::ok;
}

DebitDecision decide_debit(const AccountState& debit, const Transfer& t, bool credit_closed,
                           std::uint64_t now_ns, bool workflow) {
  POINTEX_ASSERT(t.debit_account == debit.id());
  const auto existing = debit.transfers.find(t.id);
  if (existing != debit.transfers.end()) {
    const TransferRecord& record = existing->second;
    if (!record.committed) return wait_for(t.id);
    DebitDecision d;
    d.kind = DebitDecision::Kind::exists;
    d.result = record.event.request == t ? TransferResult::exists
                                         : TransferResult::exists_with_different_fields;
    d.record = &record;
    return d;
  }
  if (debit.closed() || credit_closed) return reject(TransferResult::account_closed);
  const TransferKind kind = kind_of(t.flags);
  if (kind == TransferKind::single || kind == TransferKind::pending) {
    return decide_new_debit(debit, t, kind, now_ns);
  }
  return decide_resolution(debit, t, kind, now_ns, workflow);
}

std::optional<TransferEvent> decide_expire(const AccountState& debit, TransferId pending_id,
                                           std::uint64_t now_ns) {
  const auto it = debit.transfers.find(pending_id);
  if (it == debit.transfers.end()) return std::nullopt;
  const TransferRecord& p = it->second;
  if (!p.committed || p.busy_with != 0 || p.event.kind != TransferKind::pending ||
      p.state != TransferState::pending || !expired_at(p.event, now_ns)) {
    return std::nullopt;
  }
  TransferEvent e;
  e.request.debit_account = p.event.debit_account;
  e.request.pending_id = pending_id;
  e.kind = TransferKind::expire;
  e.debit_account = p.event.debit_account;
  e.credit_account = p.event.credit_account;
  e.ledger = p.event.ledger;
  e.code = p.event.code;
  e.amount = p.event.amount;
  e.pending_amount = p.event.amount;
  return e;
}

TransferResult decide_credit(const AccountState& credit, const TransferEvent& e) {
  POINTEX_ASSERT(e.credit_account == credit.id());
  const Account& a = credit.account;
  switch (e.kind) {
    case TransferKind::single:
    case TransferKind::pending: {
      if (credit.closed()) return TransferResult::account_closed;
      if ((a.spec.flags & account_flags::credits_must_not_exceed_debits) != 0) {
        const u128 credits = static_cast<u128>(a.credits_posted) + a.credits_pending + e.amount;
        if (credits > a.debits_posted) return TransferResult::exceeds_debits;
      }
      if (exceeds_max(static_cast<u128>(a.credits_posted) + a.credits_pending + e.amount)) {
        return TransferResult::overflow;
      }
      return TransferResult::ok;
    }
    case TransferKind::post:
      // Moves at most the pending amount from pending to posted: it cannot overflow.
      POINTEX_ASSERT(e.amount <= e.pending_amount);
      POINTEX_ASSERT(a.credits_pending >= e.pending_amount);
      return TransferResult::ok;
    case TransferKind::void_pending:
    case TransferKind::expire:
      POINTEX_ASSERT(a.credits_pending >= e.pending_amount);
      return TransferResult::ok;
  }
  POINTEX_ASSERT(false);
  return TransferResult::ok;
}

std::uint32_t apply_debit(AccountState& debit, const TransferEvent& e) {
  POINTEX_ASSERT(e.debit_account == debit.id());
  Account& a = debit.account;
  TransferRecord record;
  record.event = e;
  switch (e.kind) {
    case TransferKind::single:
      debit_balances(a, e);
      record.state = TransferState::posted;
      break;
    case TransferKind::pending:
      debit_balances(a, e);
      record.state = TransferState::pending;
      break;
    case TransferKind::post: {
      debit_balances(a, e);
      TransferRecord& p = record_of(debit, e.pending_id());
      p.state = TransferState::posted;
      p.busy_with = e.request.id;
      record.state = TransferState::posted;
      break;
    }
    case TransferKind::void_pending: {
      debit_balances(a, e);
      TransferRecord& p = record_of(debit, e.pending_id());
      p.state = TransferState::voided;
      p.busy_with = e.request.id;
      record.state = TransferState::voided;
      break;
    }
    case TransferKind::expire: {
      debit_balances(a, e);
      TransferRecord& p = record_of(debit, e.pending_id());
      p.state = TransferState::expired;
      p.busy_with = e.pending_id();
      return 0;  // an expiry is no transfer of its own
    }
  }
  POINTEX_ASSERT(e.request.id != 0);
  const auto [at, inserted] = debit.transfers.emplace(e.request.id, record);
  POINTEX_ASSERT(inserted);
  return debit.transfers.place_of(at);
}

void confirm_debit(AccountState& debit, const TransferEvent& e, std::uint64_t timestamp,
                   std::uint64_t position) {
  if (e.kind != TransferKind::expire) {
    const auto it = debit.transfers.find_hinted(e.request.id, e.record_hint);
    POINTEX_ASSERT(it != debit.transfers.end());
    TransferRecord& r = it->second;
    POINTEX_ASSERT(!r.committed);
    r.committed = true;
    r.event.timestamp = timestamp;
    r.position = position;
    r.changed_at = position;
    debit.changes.push_back({e.request.id, position});
  }
  if (e.is_two_phase_resolution()) {
    TransferRecord& p = record_of(debit, e.pending_id());
    p.busy_with = 0;
    p.changed_at = position;
    debit.changes.push_back({e.pending_id(), position});
  }
}

void revert_debit(AccountState& debit, const TransferEvent& e) {
  Account& a = debit.account;
  switch (e.kind) {
    case TransferKind::single:
      POINTEX_ASSERT(a.debits_posted >= e.amount);
      a.debits_posted -= e.amount;
      break;
    case TransferKind::pending:
      release_debit_pending(a, e.amount);
      break;
    case TransferKind::post:
    case TransferKind::void_pending:
    case TransferKind::expire: {
      if (e.kind == TransferKind::post) {
        POINTEX_ASSERT(a.debits_posted >= e.amount);
        a.debits_posted -= e.amount;
      }
      a.debits_pending += e.pending_amount;
      TransferRecord& p = record_of(debit, e.pending_id());
      p.state = TransferState::pending;
      p.busy_with = 0;
      debit.changes.push_back({e.pending_id(), p.changed_at});  // evictable again
      break;
    }
  }
  if (e.kind != TransferKind::expire) {
    const auto erased = debit.transfers.erase(e.request.id);
    POINTEX_ASSERT(erased == 1);
  }
}

void apply_credit(AccountState& credit, const TransferEvent& e) {
  POINTEX_ASSERT(e.credit_account == credit.id());
  credit_balances(credit.account, e);
}

bool credit_needs_owner(const AccountSpec& credit, const TransferEvent& e) {
  return (credit.flags & account_flags::credits_must_not_exceed_debits) != 0 &&
         credit_room_needed(e) != 0;
}

std::uint64_t credit_room_needed(const TransferEvent& e) {
  return e.kind == TransferKind::single || e.kind == TransferKind::pending ? e.amount : 0;
}

std::uint64_t credit_room(const Account& a) {
  const u128 used = static_cast<u128>(a.credits_posted) + a.credits_pending;
  POINTEX_ASSERT(used <= amount_sum_max);
  return static_cast<std::uint64_t>(amount_sum_max - used);
}

void apply_balances(Account& account, const TransferEvent& e) {
  if (account.spec.id == e.debit_account) debit_balances(account, e);
  if (account.spec.id == e.credit_account) credit_balances(account, e);
}

void evolve(AccountState& state, const TransferEvent& e, std::uint64_t position) {
  if (state.id() == e.debit_account) {
    apply_debit(state, e);
    confirm_debit(state, e, e.timestamp, position);
    POINTEX_ASSERT(static_cast<u128>(state.account.debits_posted) + state.account.debits_pending <=
                   amount_sum_max);
  }
  if (state.id() == e.credit_account) apply_credit(state, e);
}

std::uint64_t account_lot_expiry_ns(const AccountSpec& spec, const Ledger& ledger) {
  POINTEX_ASSERT(spec.ledger == ledger.id);
  return spec.kind == AccountKind::member ? lot_expiry_ns(ledger.expiry_days) : 0;
}

void apply_lots(Account& account, std::uint64_t expiry_ns, const TransferEvent& e) {
  if (expiry_ns == 0) return;
  if (e.kind != TransferKind::single && e.kind != TransferKind::post) return;
  if (account.spec.id == e.debit_account) consume_lots(account.expiring, e.amount);
  if (account.spec.id == e.credit_account) {
    add_lot(account.expiring, e.amount, e.timestamp, expiry_ns);
  }
}

CloseResult decide_close(const AccountState& state) {
  if (state.closed()) return CloseResult::ok;
  if (!state.empty()) return CloseResult::account_not_empty;
  // The balances include tentatively applied debits that may still be undone (revert_debit):
  // an account is only empty once nothing of it is in flight.
  for (const auto& [id, record] : state.transfers) {
    if (!record.committed || record.busy_with != 0) return CloseResult::account_not_empty;
  }
  return CloseResult::ok;
}

void apply_close(AccountState& state) {
  state.account.spec.flags |= account_flags::closed;
}

AccountResult validate_account(const AccountSpec& spec) {
  if (spec.id == 0) return AccountResult::id_must_not_be_zero;
  constexpr std::uint32_t limit_flags =
      account_flags::debits_must_not_exceed_credits | account_flags::credits_must_not_exceed_debits;
  if ((spec.flags & ~limit_flags) != 0) return AccountResult::flags_invalid;
  if ((spec.flags & limit_flags) == limit_flags) {
    return AccountResult::flags_are_mutually_exclusive;
  }
  if (spec.owner.size() > owner_bytes_max) return AccountResult::owner_too_long;
  if (static_cast<std::uint8_t>(spec.kind) > static_cast<std::uint8_t>(AccountKind::system)) {
    return AccountResult::flags_invalid;
  }
  return AccountResult::ok;
}

LedgerResult validate_ledger(const Ledger& ledger) {
  if (ledger.id == 0) return LedgerResult::id_must_not_be_zero;
  if (ledger.code.empty() || ledger.code.size() > ledger_code_bytes_max) {
    return LedgerResult::code_invalid;
  }
  for (const char c : ledger.code) {
    const bool valid = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!valid) return LedgerResult::code_invalid;
  }
  if (ledger.name.size() > ledger_name_bytes_max) return LedgerResult::name_too_long;
  return LedgerResult::ok;
}

TransferState state_after(TransferKind kind) {
  switch (kind) {
    case TransferKind::pending:
      return TransferState::pending;
    case TransferKind::void_pending:
      return TransferState::voided;
    case TransferKind::expire:
      return TransferState::expired;
    case TransferKind::single:
    case TransferKind::post:
      break;
  }
  return TransferState::posted;
}

TransferInfo transfer_info(const TransferEvent& e, TransferState state, std::uint64_t position) {
  TransferInfo info;
  info.request = e.request;
  info.debit_account = e.debit_account;
  info.credit_account = e.credit_account;
  info.ledger = e.ledger;
  info.code = e.code;
  info.amount = e.amount;
  info.state = state;
  info.expires_at = e.expires_at;
  info.timestamp = e.timestamp;
  info.position = position;
  return info;
}

TransferInfo transfer_info(const TransferRecord& record) {
  return transfer_info(record.event, record.state, record.position);
}

bool evictable(const TransferRecord& record, std::uint64_t checkpoint) {
  return record.committed && record.busy_with == 0 && record.changed_at <= checkpoint;
}

std::uint32_t records_cap(std::uint64_t budget, std::uint64_t accounts_in_memory,
                          std::uint32_t per_account_max) {
  constexpr std::uint64_t cap_min = 2;  // evicting down to half still keeps one
  if (budget == 0) return per_account_max;
  const std::uint64_t share = budget / std::max<std::uint64_t>(accounts_in_memory, 1);
  return static_cast<std::uint32_t>(
      std::min<std::uint64_t>(std::max(share, cap_min), per_account_max));
}

std::size_t evict_records(AccountState& state, std::uint64_t checkpoint, std::size_t keep) {
  std::size_t evicted = 0;
  auto& changes = state.changes;
  std::size_t& head = state.changes_head;
  while (state.transfers.size() > keep && head < changes.size()) {
    const AccountState::Change c = changes[head];
    if (c.at > checkpoint) break;  // newer ones are not in the read models either
    ++head;
    const auto it = state.transfers.find(c.id);
    if (it == state.transfers.end() || it->second.changed_at != c.at) continue;  // stale
    // Busy: its resolution queues it again when it commits or is undone.
    if (!evictable(it->second, checkpoint)) continue;
    state.outside_id_max = std::max(state.outside_id_max, c.id);
    state.transfers.erase(it);
    ++evicted;
  }
  if (head > 64 && head * 2 > changes.size()) {
    changes.erase(changes.begin(), changes.begin() + static_cast<std::ptrdiff_t>(head));
    head = 0;
  }
  return evicted;
}

void load_record(AccountState& state, const TransferInfo& info) {
  const auto [it, inserted] = state.transfers.emplace(info.request.id, record_from_info(info));
  if (inserted) state.changes.push_back({info.request.id, it->second.changed_at});
}

TransferRecord record_from_info(const TransferInfo& info) {
  TransferRecord r;
  TransferEvent& e = r.event;
  e.request = info.request;
  e.kind = kind_of(info.request.flags);
  e.debit_account = info.debit_account;
  e.credit_account = info.credit_account;
  e.ledger = info.ledger;
  e.code = info.code;
  e.amount = info.amount;
  // What a post or void released is not kept in the read models; nothing decided later needs
  // it (only undoing an uncommitted event does, and those never leave memory).
  e.pending_amount = 0;
  e.expires_at = info.expires_at;
  e.timestamp = info.timestamp;
  r.state = info.state;
  r.position = info.position;
  r.changed_at = info.position;
  r.committed = true;
  return r;
}

std::array<TransferId, 2> records_needed(const Transfer& t) {
  const TransferKind kind = kind_of(t.flags);
  const bool resolution = kind == TransferKind::post || kind == TransferKind::void_pending;
  return {t.id, resolution ? t.pending_id : 0};
}

}  // namespace pointex::domain

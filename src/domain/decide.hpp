#pragma once
/// The business rules of PointEx as pure functions: no I/O, no clock reads, no actors.
///
/// A transfer touches two accounts, each owned by its own actor, so its decision is split along
/// the order in which the checks run (docs/semantics.md has the full list):
///   1. validate_transfer: the item's own fields;
///   2. check_accounts: both accounts exist and share the ledger (from the account directory);
///   3. decide_debit (debit account's actor): idempotency, closed, the pending transfer named by a
///      post or void, the debit account's balance limit and overflow. Accepting applies the
///      debit side tentatively (apply_debit) so that later commands see it;
///   4. decide_credit (credit account's actor): closed, the credit account's balance limit and
///      overflow. Accepting applies the credit side (apply_credit) and commits the event;
///      refusing makes the debit actor undo step 3 (revert_debit).
/// evolve() applies a committed event to an account (recovery, tests); it never rejects.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "domain/account_state.hpp"
#include "domain/events.hpp"
#include "pointex/types.hpp"

namespace pointex::domain {

/// Step 1: checks that need nothing but the item.
TransferResult validate_transfer(const Transfer& transfer);

/// Step 2: `debit`/`credit` are the accounts named by the transfer, or null when not found.
/// A post or void with credit_account 0 passes a null `credit`.
TransferResult check_accounts(const Transfer& transfer, const AccountSpec* debit,
                              const AccountSpec* credit);

/// What the debit account's actor does with a transfer.
struct DebitDecision {
  enum class Kind : std::uint8_t {
    /// Rejected with `result`; nothing changes.
    reject,
    /// Same id already stored (`result` is exists or exists_with_different_fields); `record`
    /// holds the original. The original outcome stands.
    exists,
    /// Depends on an in-flight transfer `wait_for`; decide again once it is durable or undone.
    wait,
    /// Accepted: apply `event` to the debit account and pass it on to the credit account.
    accept,
  };
  Kind kind = Kind::reject;
  TransferResult result = TransferResult::ok;
  const TransferRecord* record = nullptr;
  TransferId wait_for = 0;
  TransferEvent event;
};

/// Step 1, for transfers from clients only (the end of step 1): ids from
/// workflow_transfer_id_min up (`id_reserved`) and the codes of workflow_transfer_code()
/// (`code_reserved`) are the engine's workflows'.
TransferResult check_client_transfer(const Transfer& transfer);

/// Step 3. `credit_closed` is what the account directory knows of the credit account (the
/// credit actor checks again authoritatively). `now_ns` decides expiry and sets expires_at.
/// `workflow`: the engine's workflows submitted it; only they may post or void a pending
/// transfer with a workflow_transfer_code() (a client gets `code_reserved`).
DebitDecision decide_debit(const AccountState& debit, const Transfer& transfer, bool credit_closed,
                           std::uint64_t now_ns, bool workflow = false);

/// The debit account's own expiry of a pending transfer whose timeout has passed. Returns the
/// expire event, or nothing if the pending transfer is no longer pending (or busy, or not due).
std::optional<TransferEvent> decide_expire(const AccountState& debit, TransferId pending_id,
                                           std::uint64_t now_ns);

/// Step 4: ok, account_closed, exceeds_debits or overflow.
TransferResult decide_credit(const AccountState& credit, const TransferEvent& event);

/// Applies the debit side of an accepted event (tentatively: record not yet committed).
/// Returns where its record sits, for TransferEvent::record_hint (0: it adds none).
std::uint32_t apply_debit(AccountState& debit, const TransferEvent& event);
/// Marks a tentatively applied event durable at `timestamp`/`position`.
void confirm_debit(AccountState& debit, const TransferEvent& event, std::uint64_t timestamp,
                   std::uint64_t position);
/// Undoes apply_debit after the credit account refused the event.
void revert_debit(AccountState& debit, const TransferEvent& event);
/// Applies the credit side of an event.
void apply_credit(AccountState& credit, const TransferEvent& event);

/// The credit fast path (docs/architecture.md, "Credits without a message"): a credit that
/// decide_credit could only refuse for `account_closed` or `overflow` may be applied by the
/// debit account's actor, provided the credit account's actor has shut out closing (its credit
/// gate) and set aside room below overflow. These are the rules; the gate is the actors'.
///
/// Whether the credit account's own balance limit must decide this event (an account with
/// `credits_must_not_exceed_debits` taking a single or pending credit): then it goes the
/// usual way, as a message to the credit account's actor.
bool credit_needs_owner(const AccountSpec& credit, const TransferEvent& event);
/// What a credit of this event takes from the room below overflow (0 for post, void and
/// expire: they move pending credits, never adding to posted + pending).
std::uint64_t credit_room_needed(const TransferEvent& event);
/// The room below overflow an account has: amount_sum_max - credits_posted - credits_pending.
std::uint64_t credit_room(const Account& account);

/// The balance effect of an event on an account, on whichever side(s) it is; no records.
/// (Projections and audits fold balances with this.)
void apply_balances(Account& account, const TransferEvent& event);

/// The lot expiry duration of an account (docs/expiry.md): lot_expiry_ns(ledger.expiry_days)
/// for a member, 0 (no lots) for every other kind. Fixed when the account's state is built
/// (ledgers are immutable), so an account without lots pays one comparison per event.
std::uint64_t account_lot_expiry_ns(const AccountSpec& spec, const Ledger& ledger);

/// The lots effect of a committed event (its timestamp set) on `account`, on whichever side(s)
/// it is, for an account whose lot expiry duration is `expiry_ns` (0: nothing). Posted credits
/// (single, post: the posted amount) add a lot; posted debits (single, post) consume the oldest
/// lots; pending, void and expiry of a pending transfer change nothing.
void apply_lots(Account& account, std::uint64_t expiry_ns, const TransferEvent& event);

/// Applies a committed event to `state` on whichever side(s) `state` is (recovery, tests).
void evolve(AccountState& state, const TransferEvent& event, std::uint64_t position);

/// Closing: ok (also when already closed) or account_not_empty.
CloseResult decide_close(const AccountState& state);
void apply_close(AccountState& state);

/// Account creation checks that need nothing but the spec (ledger existence is checked by the
/// caller, after these).
AccountResult validate_account(const AccountSpec& spec);

/// Ledger definition checks.
LedgerResult validate_ledger(const Ledger& ledger);

/// Transfer records in memory are a cache of the read models (rm_transfers). A record may
/// leave memory once nothing waits on it and the read models include its last change
/// (`checkpoint` is the position they include).
bool evictable(const TransferRecord& record, std::uint64_t checkpoint);
/// Evicts evictable records until at most `keep` remain (or none is evictable); returns how
/// many left. The account then no longer holds all its records (outside_id_max).
std::size_t evict_records(AccountState& state, std::uint64_t checkpoint, std::size_t keep);
/// How many records each account may keep: the memory budget for records (0: none) shared out
/// among the accounts in memory, at least 2 and at most `per_account_max`.
std::uint32_t records_cap(std::uint64_t budget, std::uint64_t accounts_in_memory,
                          std::uint32_t per_account_max);
/// The record of a committed transfer as the read models hold it (loaded back on demand).
TransferRecord record_from_info(const TransferInfo& info);
/// Puts a record loaded from the read models back into memory (evictable again later).
void load_record(AccountState& state, const TransferInfo& info);
/// The records deciding `transfer` needs in memory (its id; for a post or void, also the
/// pending id): up to two ids, 0 where none.
std::array<TransferId, 2> records_needed(const Transfer& transfer);

/// The state a transfer of this kind has right after its event (a post: posted, ...).
TransferState state_after(TransferKind kind);
/// The transfer of an event, in `state`, committed at `position`.
TransferInfo transfer_info(const TransferEvent& event, TransferState state, std::uint64_t position);
/// The transfer as a lookup shows it.
TransferInfo transfer_info(const TransferRecord& record);

}  // namespace pointex::domain

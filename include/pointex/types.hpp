#pragma once
/// Public value types of the PointEx embedding API: ledgers, accounts, transfers and the stable
/// result codes every command answers with. No CAF or RocksDB type appears here.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pointex {

using LedgerId = std::uint64_t;
using AccountId = std::uint64_t;
using TransferId = std::uint64_t;

/// On each side of an account, posted plus pending (debits_posted + debits_pending, and
/// credits_posted + credits_pending) stays at or below this, so that `balance` and `available`
/// always fit a signed 64-bit integer. A transfer that would pass it fails with
/// `TransferResult::overflow`; a post never can (it moves pending to posted).
inline constexpr std::uint64_t amount_sum_max =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

/// Outcome of one transfer. Numbers are stable and never reused: they are part of the API.
/// Codes 0-19 are the ones listed in API.md; 20 and up are additions for field checks API.md
/// leaves implicit (each still answers the item alone, never the whole batch).
enum class TransferResult : std::uint32_t {
  ok = 0,
  exists = 1,
  exists_with_different_fields = 2,
  id_must_not_be_zero = 3,
  amount_must_not_be_zero = 4,
  accounts_must_be_different = 5,
  debit_account_not_found = 6,
  credit_account_not_found = 7,
  ledger_mismatch = 8,
  exceeds_credits = 9,
  exceeds_debits = 10,
  account_closed = 11,
  pending_transfer_not_found = 12,
  pending_transfer_already_posted = 13,
  pending_transfer_already_voided = 14,
  pending_transfer_expired = 15,
  exceeds_pending_amount = 16,
  pending_transfer_has_different_fields = 17,
  not_a_pending_transfer = 18,
  overflow = 19,
  flags_are_mutually_exclusive = 20,
  pending_id_must_not_be_zero = 21,
  pending_id_must_be_zero = 22,
  pending_id_must_be_different = 23,
  timeout_reserved_for_pending_transfer = 24,
  code_must_not_be_zero = 25,
  ledger_must_not_be_zero = 26,
  credit_account_must_not_be_zero = 27,
  debit_account_must_not_be_zero = 28,
  unknown_flags = 29,
  /// The transfer's code, or the code of the pending transfer a post or void names, is
  /// reserved for the engine's workflows (exchange_transfer_code, order_transfer_code): a
  /// client may not make or resolve such a transfer.
  code_reserved = 30,
  /// Ids from workflow_transfer_id_min up are reserved for the transfers the engine's
  /// workflows make.
  id_reserved = 31,
};
inline constexpr std::uint32_t transfer_result_count = 32;

/// Outcome of creating one account. Stable numbers.
enum class AccountResult : std::uint32_t {
  ok = 0,
  exists = 1,
  exists_with_different_fields = 2,
  id_must_not_be_zero = 3,
  ledger_not_found = 4,
  flags_are_mutually_exclusive = 5,
  owner_too_long = 6,
  /// `closed` (or an unknown bit) was given at creation; accounts are closed only by closing.
  flags_invalid = 7,
};
inline constexpr std::uint32_t account_result_count = 8;

/// Outcome of creating a ledger. Stable numbers.
enum class LedgerResult : std::uint32_t {
  ok = 0,
  exists = 1,
  exists_with_different_fields = 2,
  id_must_not_be_zero = 3,
  /// `code` must be 1-16 characters of A-Z, 0-9 and `_`.
  code_invalid = 4,
  name_too_long = 5,
  /// Another ledger already uses this code.
  code_taken = 6,
};

/// Outcome of closing an account. Stable numbers.
enum class CloseResult : std::uint32_t {
  ok = 0,
  account_not_found = 1,
  /// Balance or a pending amount is not zero (a transfer may still be in flight).
  account_not_empty = 2,
};

std::string_view to_string(TransferResult result);
std::string_view to_string(AccountResult result);
std::string_view to_string(LedgerResult result);
std::string_view to_string(CloseResult result);
std::optional<TransferResult> transfer_result_from_string(std::string_view name);

enum class AccountKind : std::uint8_t { member = 0, issuer = 1, system = 2 };
std::string_view to_string(AccountKind kind);
std::optional<AccountKind> account_kind_from_string(std::string_view name);

/// Account flag bits.
namespace account_flags {
inline constexpr std::uint32_t debits_must_not_exceed_credits = 1U << 0;
inline constexpr std::uint32_t credits_must_not_exceed_debits = 1U << 1;
inline constexpr std::uint32_t closed = 1U << 2;
inline constexpr std::uint32_t all =
    debits_must_not_exceed_credits | credits_must_not_exceed_debits | closed;
}  // namespace account_flags

/// Transfer flag bits. At most one may be set.
namespace transfer_flags {
inline constexpr std::uint32_t pending = 1U << 0;
inline constexpr std::uint32_t post_pending = 1U << 1;
inline constexpr std::uint32_t void_pending = 1U << 2;
/// A single transfer that moves at most `amount`: as much as the debit account's limit
/// (debits_must_not_exceed_credits) allows, `exceeds_credits` only when that is nothing. The
/// amount moved is the committed transfer's amount (TigerBeetle's balancing_debit).
inline constexpr std::uint32_t balancing_debit = 1U << 3;
inline constexpr std::uint32_t all = pending | post_pending | void_pending | balancing_debit;
}  // namespace transfer_flags

/// Transfer code of expiries of earned points (member -> issuer expiry account). Ledger
/// statistics count transfers to an issuer account with this code as `expired`, other
/// transfers to an issuer account as `redeemed`.
inline constexpr std::uint16_t expiry_transfer_code = 65535;

/// Transfer code of the two pending legs of an alliance exchange (and of their posts and
/// voids). Reserved: a client transfer with this code, or a client post or void of a pending
/// transfer with it, fails with `code_reserved`, so only the exchange resolves its legs.
inline constexpr std::uint16_t exchange_transfer_code = 65534;

/// Transfer code of a points + cash order's reservation (member -> merchant, pending) and of its
/// post or void (include/pointex/orders.hpp). Reserved like exchange_transfer_code.
inline constexpr std::uint16_t order_transfer_code = 65533;

/// Transfer code of a purchase's rebate: its pending credit (issuer -> member), the post or
/// void of it, and its clawbacks (include/pointex/rebates.hpp). Reserved like
/// exchange_transfer_code.
inline constexpr std::uint16_t rebate_transfer_code = 65532;

/// Whether a transfer code is reserved for the engine's workflows (code_reserved for clients).
inline constexpr bool workflow_transfer_code(std::uint16_t code) {
  return code == exchange_transfer_code || code == order_transfer_code ||
         code == rebate_transfer_code;
}

/// Transfer ids from here up are reserved for the transfers the engine's workflows make (the
/// posts and voids of an exchange's legs: id = workflow_transfer_id_min | exchange id). A client
/// transfer with such an id fails with `id_reserved`, so a workflow's own transfer can never
/// collide with a client's.
inline constexpr std::uint64_t workflow_transfer_id_min = 1ULL << 63;

/// The largest id of a new durable process (exchange, order, purchase): the reserved transfer
/// ids above workflow_transfer_id_min | process_id_max are the clawbacks of purchases (their
/// refund step's position), which must not meet a process's own.
inline constexpr std::uint64_t process_id_max = (1ULL << 62) - 1;

/// The id of a member account's expiry of due points on UTC day `day` (days since the Unix
/// epoch): reserved workflow ids above the clawbacks' (docs/expiry.md). Ids are per debit
/// account, so one a day per member: a second sweep of the day, or one after a restart, gets
/// `exists` instead of expiring twice.
inline constexpr std::uint64_t expiry_transfer_id(std::uint64_t day) {
  return workflow_transfer_id_min | (1ULL << 62) | (1ULL << 61) | day;
}

/// Limits on strings, shared by the library and the daemon.
inline constexpr std::size_t owner_bytes_max = 256;
inline constexpr std::size_t ledger_name_bytes_max = 256;
inline constexpr std::size_t ledger_code_bytes_max = 16;

struct Ledger {
  LedgerId id = 0;
  /// Short name, 1-16 of A-Z, 0-9, `_` (e.g. "MALL").
  std::string code;
  std::string name;
  /// Days after earning at which points expire; 0 means never.
  std::uint32_t expiry_days = 0;
  /// Assigned by the engine when the ledger was created.
  std::uint64_t timestamp = 0;

  bool same_definition(const Ledger& other) const {
    return id == other.id && code == other.code && name == other.name &&
           expiry_days == other.expiry_days;
  }
};

/// What a caller gives to create an account.
struct AccountSpec {
  AccountId id = 0;
  LedgerId ledger = 0;
  AccountKind kind = AccountKind::member;
  std::uint32_t flags = 0;
  std::uint64_t user_data = 0;
  std::string owner;

  bool operator==(const AccountSpec& other) const {
    return id == other.id && ledger == other.ledger && kind == other.kind && flags == other.flags &&
           user_data == other.user_data && owner == other.owner;
  }
  bool operator!=(const AccountSpec& other) const { return !(*this == other); }
};

/// Points of an account that expire together (docs/expiry.md): `amount` still held of what was
/// earned on one UTC day, due to expire at `at` (Unix ns, the start of a UTC day).
struct ExpiringLot {
  std::uint64_t amount = 0;
  std::uint64_t at = 0;

  bool operator==(const ExpiringLot& other) const {
    return amount == other.amount && at == other.at;
  }
  bool operator!=(const ExpiringLot& other) const { return !(*this == other); }
};

/// The state of an account: its definition, its four balance fields and its expiring lots.
struct Account {
  AccountSpec spec;
  std::uint64_t debits_posted = 0;
  std::uint64_t credits_posted = 0;
  std::uint64_t debits_pending = 0;
  std::uint64_t credits_pending = 0;
  /// Assigned by the engine when the account was created.
  std::uint64_t timestamp = 0;
  /// Members on a ledger with expiry_days > 0: their posted points by expiry day, oldest first
  /// (docs/expiry.md). Empty for every other account.
  std::vector<ExpiringLot> expiring;

  /// credits_posted - debits_posted (negative for an issuer with outstanding points).
  std::int64_t balance() const {
    return static_cast<std::int64_t>(credits_posted) - static_cast<std::int64_t>(debits_posted);
  }
  /// balance - debits_pending: what can still be debited.
  std::int64_t available() const { return balance() - static_cast<std::int64_t>(debits_pending); }
  bool closed() const { return (spec.flags & account_flags::closed) != 0; }
};

/// A transfer as a client submits it. For `post_pending` and `void_pending`, only `id`,
/// `debit_account` (routing) and `pending_id` are required; other zero fields mean "as in the
/// pending transfer" and non-zero ones must match it.
struct Transfer {
  TransferId id = 0;
  AccountId debit_account = 0;
  AccountId credit_account = 0;
  std::uint64_t amount = 0;
  LedgerId ledger = 0;
  /// Why the transfer was made (earn, redeem, ...): 1-65535.
  std::uint16_t code = 0;
  std::uint32_t flags = 0;
  TransferId pending_id = 0;
  /// Pending transfers only: void automatically (state `expired`) after this many seconds;
  /// 0 means never.
  std::uint32_t timeout_s = 0;
  std::uint64_t user_data = 0;

  bool operator==(const Transfer& other) const {
    return id == other.id && debit_account == other.debit_account &&
           credit_account == other.credit_account && amount == other.amount &&
           ledger == other.ledger && code == other.code && flags == other.flags &&
           pending_id == other.pending_id && timeout_s == other.timeout_s &&
           user_data == other.user_data;
  }
  bool operator!=(const Transfer& other) const { return !(*this == other); }
};

/// One item's answer. `timestamp` and `position` are set for `ok` and `exists` (the original
/// transfer's values), zero otherwise.
struct TransferOutcome {
  TransferResult result = TransferResult::ok;
  std::uint64_t timestamp = 0;
  std::uint64_t position = 0;
};

enum class TransferState : std::uint8_t { pending = 0, posted = 1, voided = 2, expired = 3 };
std::string_view to_string(TransferState state);

/// What one committed transfer event did to the balances of its two accounts.
enum class TransferKind : std::uint8_t {
  /// Single-phase: debits_posted / credits_posted += amount.
  single = 0,
  /// Reserve: debits_pending / credits_pending += amount.
  pending = 1,
  /// Post a pending transfer: pending -= the pending amount, posted += amount (<= it).
  post = 2,
  /// Void a pending transfer: pending -= the pending amount.
  void_pending = 3,
  /// A pending transfer's timeout ran out: pending -= the pending amount; state `expired`.
  expire = 4,
};
std::string_view to_string(TransferKind kind);

/// A stored transfer as a lookup returns it.
struct TransferInfo {
  /// The transfer as it was submitted.
  Transfer request;
  /// Resolved fields: for posts and voids taken from the pending transfer.
  AccountId debit_account = 0;
  AccountId credit_account = 0;
  LedgerId ledger = 0;
  std::uint16_t code = 0;
  /// The amount moved (posted, reserved, or released by a void).
  std::uint64_t amount = 0;
  TransferState state = TransferState::posted;
  /// Pending transfers with a timeout: when they expire (Unix ns); 0 otherwise.
  std::uint64_t expires_at = 0;
  std::uint64_t timestamp = 0;
  std::uint64_t position = 0;
};

/// One event in an account's history (newest first in a page).
struct AccountEvent {
  std::uint64_t position = 0;
  std::uint64_t timestamp = 0;
  TransferKind kind = TransferKind::single;
  std::uint16_t code = 0;
  std::uint64_t amount = 0;
  /// The transfer and its current state (for an expiry: the pending transfer that expired).
  TransferInfo transfer;
  /// The account's balances right after this event.
  std::uint64_t debits_posted = 0;
  std::uint64_t credits_posted = 0;
  std::uint64_t debits_pending = 0;
  std::uint64_t credits_pending = 0;
};

/// Per ledger and UTC day (days since 1970-01-01).
struct LedgerDayStats {
  std::uint32_t day = 0;
  /// Posted from an issuer account to a non-issuer account.
  std::uint64_t issued = 0;
  /// Posted from a non-issuer account to an issuer account (code other than
  /// expiry_transfer_code).
  std::uint64_t redeemed = 0;
  /// Same, with code expiry_transfer_code.
  std::uint64_t expired = 0;
  /// Transfers committed (posts and voids count, expiries do not).
  std::uint64_t transfers = 0;
  /// Outstanding liability at the end of the day: points held outside issuer accounts.
  std::int64_t outstanding = 0;
};

/// The balances of one account right after an event.
struct AccountBalances {
  AccountId account = 0;
  std::uint64_t debits_posted = 0;
  std::uint64_t credits_posted = 0;
  std::uint64_t debits_pending = 0;
  std::uint64_t credits_pending = 0;
};

/// One committed event as the feed delivers it (event-carried state transfer: it carries the
/// resulting balances of the accounts it touched, so consumers need not call back).
struct FeedEvent {
  enum class Type : std::uint8_t {
    ledger_created = 0,
    account_created = 1,
    account_closed = 2,
    transfer = 3
  };
  std::uint64_t position = 0;
  std::uint64_t timestamp = 0;
  Type type = Type::transfer;
  /// ledger_created
  Ledger ledger;
  /// account_created, account_closed (for a close: the account's definition, with its ledger,
  /// and the closed flag)
  AccountSpec account;
  /// transfer: what it did, and the transfer as committed (state: its state right after this
  /// event; for an expiry, `transfer.request.pending_id` names the pending transfer).
  TransferKind kind = TransferKind::single;
  TransferInfo transfer;
  /// transfer: the debit and credit accounts' balances after it.
  AccountBalances debit;
  AccountBalances credit;
};
std::string_view to_string(FeedEvent::Type type);

// ---------------------------------------------------------------------------------------------
// Alliance exchange (docs/workflows.md): points of one ledger for another's at a set rate.

/// Outcome of setting an exchange rate. Stable numbers.
enum class RateResult : std::uint32_t {
  ok = 0,
  from_ledger_not_found = 1,
  to_ledger_not_found = 2,
  ledgers_must_be_different = 3,
  numerator_must_not_be_zero = 4,
  denominator_must_not_be_zero = 5,
  /// fee_bps is over 10000 (100%).
  fee_bps_too_high = 6,
  from_exchange_account_not_found = 7,
  to_exchange_account_not_found = 8,
  /// The from exchange account is not on from_ledger.
  from_exchange_account_ledger_mismatch = 9,
  /// The to exchange account is not on to_ledger.
  to_exchange_account_ledger_mismatch = 10,
};
inline constexpr std::uint32_t rate_result_count = 11;
std::string_view to_string(RateResult result);

/// The rate of exchanging points of `from_ledger` (A) for points of `to_ledger` (B). An
/// exchange of `amount` A-points credits gross - fee B-points, where
///   gross = floor(amount * numerator / denominator)   (exact, 128-bit)
///   fee   = ceil(gross * fee_bps / 10000)
/// Caps count A-points debited per UTC day (of the engine clock); 0 means no cap.
struct Rate {
  LedgerId from_ledger = 0;
  LedgerId to_ledger = 0;
  std::uint64_t numerator = 0;
  std::uint64_t denominator = 0;
  /// Fee in basis points of the gross B-points, 0-10000.
  std::uint32_t fee_bps = 0;
  /// Most A-points one member (the exchange's from_account) may exchange per UTC day.
  std::uint64_t member_daily_cap = 0;
  /// Most A-points exchanged per UTC day over this pair of ledgers, all members together.
  std::uint64_t pair_daily_cap = 0;
  /// The issuer of A's exchange account (on from_ledger): it receives the member's A-points.
  AccountId from_exchange_account = 0;
  /// The issuer of B's exchange account (on to_ledger): it pays the member's B-points.
  AccountId to_exchange_account = 0;
  /// Assigned by the engine when the rate was last set.
  std::uint64_t timestamp = 0;

  bool same_definition(const Rate& o) const {
    return from_ledger == o.from_ledger && to_ledger == o.to_ledger && numerator == o.numerator &&
           denominator == o.denominator && fee_bps == o.fee_bps &&
           member_daily_cap == o.member_daily_cap && pair_daily_cap == o.pair_daily_cap &&
           from_exchange_account == o.from_exchange_account &&
           to_exchange_account == o.to_exchange_account;
  }
};

using ExchangeId = std::uint64_t;

/// An exchange as a client submits it: `amount` points of from_account's ledger for points of
/// to_account's ledger, at the rate set between the two ledgers.
struct Exchange {
  /// The idempotency key (1 to process_id_max = 2^62 - 1). The two legs are pending
  /// transfers with this id on their debit accounts (from_account, and the rate's
  /// to_exchange_account): a client transfer that already uses the id there makes the leg fail.
  ExchangeId id = 0;
  AccountId from_account = 0;
  AccountId to_account = 0;
  std::uint64_t amount = 0;

  bool operator==(const Exchange& o) const {
    return id == o.id && from_account == o.from_account && to_account == o.to_account &&
           amount == o.amount;
  }
  bool operator!=(const Exchange& o) const { return !(*this == o); }
};

/// Outcome of an exchange. Stable numbers.
enum class ExchangeResult : std::uint32_t {
  /// Both legs posted.
  ok = 0,
  /// Same id, same body, and the original exchange succeeded (its amounts stand).
  exists = 1,
  exists_with_different_fields = 2,
  id_must_not_be_zero = 3,
  amount_must_not_be_zero = 4,
  accounts_must_be_different = 5,
  from_account_not_found = 6,
  to_account_not_found = 7,
  /// No rate is set from from_account's ledger to to_account's.
  rate_not_found = 8,
  /// The credited amount would be zero.
  amount_too_small = 9,
  member_daily_cap_exceeded = 10,
  pair_daily_cap_exceeded = 11,
  /// The gross amount does not fit 64 bits.
  overflow = 12,
  /// The id is above process_id_max (2^62 - 1; exchanges logged before with larger ids still
  /// recover).
  id_reserved = 13,
  /// A leg was refused (`leg`, `leg_result` say which and why): both legs were voided.
  leg_failed = 14,
  /// The engine stopped before the legs were both made (a crash); both were voided on restart.
  interrupted = 15,
};
inline constexpr std::uint32_t exchange_result_count = 16;
std::string_view to_string(ExchangeResult result);

/// Where an exchange is: every step is durable in the event log.
enum class ExchangeStep : std::uint8_t {
  /// Amounts computed, caps counted, the two pending legs under way.
  started = 0,
  /// Commit (post both legs) or abort (void the legs that were made) decided.
  decided = 1,
  /// Both legs posted, or none left pending: the outcome is final.
  completed = 2,
};
std::string_view to_string(ExchangeStep step);

/// What an exchange answered. Amounts are set once it started (also for a recorded failure,
/// then nothing moved), zero for a refusal before it started.
struct ExchangeOutcome {
  ExchangeResult result = ExchangeResult::ok;
  /// leg_failed: 1 (from_account -> A's exchange account) or 2 (B's exchange account ->
  /// to_account), and that leg's transfer result.
  std::uint32_t leg = 0;
  TransferResult leg_result = TransferResult::ok;
  /// A-points taken from from_account.
  std::uint64_t debited = 0;
  /// B-points given to to_account (gross - fee).
  std::uint64_t credited = 0;
  /// B-points kept as the fee.
  std::uint64_t fee = 0;
};

/// A stored exchange as a lookup shows it.
struct ExchangeInfo {
  Exchange request;
  LedgerId from_ledger = 0;
  LedgerId to_ledger = 0;
  AccountId from_exchange_account = 0;
  AccountId to_exchange_account = 0;
  std::uint64_t debited = 0;
  std::uint64_t gross = 0;
  std::uint64_t fee = 0;
  std::uint64_t credited = 0;
  /// The UTC day (days since 1970-01-01) its caps count on.
  std::uint32_t day = 0;
  ExchangeStep step = ExchangeStep::started;
  /// From `decided` on: whether the legs are posted (true) or voided.
  bool commit = false;
  /// From `decided` on: the outcome (ok, leg_failed, interrupted).
  ExchangeResult result = ExchangeResult::ok;
  std::uint32_t leg = 0;
  TransferResult leg_result = TransferResult::ok;
  /// Timestamps of its first and last steps, and the last step's position.
  std::uint64_t started_at = 0;
  std::uint64_t updated_at = 0;
  std::uint64_t position = 0;
};

}  // namespace pointex

#pragma once
/// Shopping rebates (docs/workflows.md, "Rebates"): a ledger's earning rules turn a member's
/// purchase into points, credited as a pending transfer that becomes available when the
/// purchase's return window ends (posted automatically: unlike an order's reservation, which
/// is voided when its time runs out). A refund inside the window reduces or voids the points;
/// after it, a clawback takes back what the member's balance allows and records the rest.
/// No CAF or RocksDB type appears here.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pointex/types.hpp"

namespace pointex {

using PurchaseId = std::uint64_t;
using RefundId = std::uint64_t;

// rebate_transfer_code (65532, pointex/types.hpp) is the code of a purchase's pending credit,
// its post or void, and its clawbacks. Reserved like exchange_transfer_code.

/// Limits of a ledger's rules.
inline constexpr std::size_t rebate_categories_max = 64;
inline constexpr std::size_t rebate_campaigns_max = 64;
/// A category's name: 1 to this many of a-z, 0-9, `_` and `-`.
inline constexpr std::size_t rebate_category_bytes_max = 32;
/// The longest return window: 365 days.
inline constexpr std::uint32_t rebate_return_window_s_max = 365U * 86'400U;
/// Refunds of one purchase (inside and after the window together).
inline constexpr std::size_t purchase_refunds_max = 32;

/// Points per purchase amount in one category: `rate_bps` points per 10000 minor units
/// (100 bps on 12.34 EUR = 1234 cents earns 12 points).
struct CategoryRate {
  std::string category;
  std::uint32_t rate_bps = 0;

  bool operator==(const CategoryRate& o) const {
    return category == o.category && rate_bps == o.rate_bps;
  }
};

/// A campaign multiplies what purchases earn while it runs: `multiplier_bps` / 10000 (20000 =
/// double points), for purchases made in [starts_at, ends_at) (Unix ns, engine clock), in the
/// listed categories (empty: every category). Where campaigns overlap the largest multiplier
/// applies (they do not compound).
struct Campaign {
  std::uint64_t starts_at = 0;
  std::uint64_t ends_at = 0;
  std::uint32_t multiplier_bps = 10'000;
  std::vector<std::string> categories;

  bool operator==(const Campaign& o) const {
    return starts_at == o.starts_at && ends_at == o.ends_at && multiplier_bps == o.multiplier_bps &&
           categories == o.categories;
  }
};

/// A ledger's earning rules. Setting them again replaces them for purchases that start after;
/// a purchase keeps the rate, multiplier and window it started with.
///
/// points = floor(amount * rate_bps * multiplier_bps / 10^8), 0 below `min_purchase`, then at
/// most `cap_per_order`, then at most what is left of `cap_per_member_day` (points earned by
/// the member's purchases that started that UTC day, less what refunds inside their windows
/// gave back).
struct EarningRules {
  LedgerId ledger = 0;
  /// The issuer account (kind issuer, on the ledger) the points come from.
  AccountId issuer_account = 0;
  /// The issuer account (kind issuer, on the ledger) that receives expired points when the
  /// ledger's points expire (Ledger::expiry_days); 0: none named.
  AccountId expiry_account = 0;
  /// Purchases must be in it: three of A-Z.
  std::string currency;
  /// At least one; unique names. A purchase in another category is refused.
  std::vector<CategoryRate> categories;
  /// Minor units; a smaller purchase earns nothing (it is recorded with 0 points).
  std::uint64_t min_purchase = 0;
  /// Points; 0: no cap.
  std::uint64_t cap_per_order = 0;
  std::uint64_t cap_per_member_day = 0;
  /// Seconds from the purchase until its points become available (0: at once; at most
  /// rebate_return_window_s_max).
  std::uint32_t return_window_s = 0;
  std::vector<Campaign> campaigns;
  /// When they were set (engine clock); ignored when setting.
  std::uint64_t timestamp = 0;

  bool same_definition(const EarningRules& o) const {
    return ledger == o.ledger && issuer_account == o.issuer_account &&
           expiry_account == o.expiry_account && currency == o.currency &&
           categories == o.categories && min_purchase == o.min_purchase &&
           cap_per_order == o.cap_per_order && cap_per_member_day == o.cap_per_member_day &&
           return_window_s == o.return_window_s && campaigns == o.campaigns;
  }
};

/// Answer of set_rules. Stable numbers.
enum class RulesResult : std::uint32_t {
  ok = 0,
  ledger_not_found = 1,
  issuer_account_not_found = 2,
  /// The issuer account is on another ledger or is not of kind issuer.
  issuer_account_invalid = 3,
  currency_invalid = 4,
  categories_invalid = 5,
  category_rate_invalid = 6,
  return_window_too_long = 7,
  campaigns_invalid = 8,
  expiry_account_not_found = 9,
  /// The expiry account is on another ledger or is not of kind issuer.
  expiry_account_invalid = 10,
};
inline constexpr std::uint32_t rules_result_count = 11;
std::string_view to_string(RulesResult result);

/// A purchase to earn on, as a client submits it. Two submissions are the same purchase when
/// every field is equal.
struct Purchase {
  /// The idempotency key: 1 to process_id_max.
  PurchaseId id = 0;
  AccountId member_account = 0;
  /// Minor units of `currency`.
  std::uint64_t amount = 0;
  std::string currency;
  std::string category;

  bool operator==(const Purchase& o) const {
    return id == o.id && member_account == o.member_account && amount == o.amount &&
           currency == o.currency && category == o.category;
  }
  bool operator!=(const Purchase& o) const { return !(*this == o); }
};

/// A refund of (part of) a purchase. Idempotent by (purchase, id).
struct Refund {
  PurchaseId purchase_id = 0;
  RefundId id = 0;
  /// Minor units refunded (all refunds of a purchase together at most its amount).
  std::uint64_t amount = 0;
};

/// Answer of purchase and refund. Stable numbers.
enum class PurchaseResult : std::uint32_t {
  /// Recorded (see its status); a refund: applied.
  ok = 0,
  /// The same purchase or refund was recorded before (its state as it is).
  exists = 1,
  /// A purchase or refund with this id and another body exists.
  exists_with_different_fields = 2,
  id_must_not_be_zero = 3,
  /// The id is above process_id_max.
  id_reserved = 4,
  amount_must_not_be_zero = 5,
  member_account_not_found = 6,
  /// The member's ledger has no earning rules.
  rules_not_found = 7,
  currency_mismatch = 8,
  category_not_found = 9,
  /// refund: no purchase with this id.
  purchase_not_found = 10,
  /// refund: the purchase's refunds would exceed its amount.
  refund_exceeds_purchase = 11,
  /// refund: purchase_refunds_max refunds were made.
  too_many_refunds = 12,
  /// purchase: the member account is not a member (it must be of kind member).
  member_account_invalid = 13,
};
inline constexpr std::uint32_t purchase_result_count = 14;
std::string_view to_string(PurchaseResult result);

/// Where a purchase's points are. Stable numbers.
enum class PurchaseStatus : std::uint8_t {
  /// Being credited, or credited and pending until the return window ends.
  pending = 0,
  /// The window ended: the points due were posted (later refunds claw them back).
  available = 1,
  /// Refunded in full inside the window: the points were voided.
  refunded = 2,
  /// The credit was refused (OrderInfo-like `credit_result` says why), or it earned nothing.
  failed = 3,
  /// It earned 0 points (below the minimum, or capped): nothing was credited.
  nothing_earned = 4,
};
std::string_view to_string(PurchaseStatus status);

/// One refund as recorded.
struct RefundInfo {
  RefundId id = 0;
  std::uint64_t amount = 0;
  std::uint64_t timestamp = 0;
  /// Inside the window: points the purchase no longer earns (given back before they were
  /// posted).
  std::uint64_t points_reduced = 0;
  /// After the window: the points to take back, what the clawback took, and what it could
  /// not (the member's balance was short).
  bool clawback = false;
  std::uint64_t clawback_points = 0;
  std::uint64_t clawed_back = 0;
  std::uint64_t shortfall = 0;
  /// The clawback's transfer id on the member account (0 until it is decided).
  TransferId clawback_transfer_id = 0;
  /// The clawback is done (recorded with what it took).
  bool done = false;
};

/// A purchase as a lookup shows it.
struct PurchaseInfo {
  Purchase request;
  LedgerId ledger = 0;
  AccountId issuer_account = 0;
  /// What it started with: the category's rate, the campaign multiplier (10000: none), the
  /// points before caps, and the points awarded after them.
  std::uint32_t rate_bps = 0;
  std::uint32_t multiplier_bps = 10'000;
  std::uint64_t points_earned = 0;
  std::uint64_t points = 0;
  /// Points still due after refunds inside the window (posted at its end).
  std::uint64_t points_due = 0;
  /// When the return window ends (Unix ns, engine clock).
  std::uint64_t window_ends_at = 0;
  PurchaseStatus status = PurchaseStatus::pending;
  /// failed: the credit's transfer result.
  TransferResult credit_result = TransferResult::ok;
  /// Points posted at the end of the window.
  std::uint64_t points_posted = 0;
  std::vector<RefundInfo> refunds;
  std::uint64_t refunded_amount = 0;
  /// Clawbacks together: taken, and not taken (the member's balance was short).
  std::uint64_t clawed_back = 0;
  std::uint64_t shortfall = 0;
  /// Nothing more is under way (the points are posted or voided, every clawback done).
  bool settled = false;
  std::uint64_t created_at = 0;
  std::uint64_t updated_at = 0;
  std::uint64_t position = 0;
};

struct PurchaseOutcome {
  PurchaseResult result = PurchaseResult::ok;
  std::optional<PurchaseInfo> purchase;
};

}  // namespace pointex

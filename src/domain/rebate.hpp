#pragma once
/// Shopping rebates as pure functions (docs/workflows.md, "Rebates"): the checks and encoding
/// of a ledger's earning rules, what a purchase earns, the encoding and fold of a purchase's
/// steps, refunds inside and after the return window, and the purchase's transfers. No I/O, no
/// clock reads: the engine passes the time.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/codec.hpp"
#include "domain/process.hpp"
#include "pointex/rebates.hpp"

namespace pointex::domain {

/// A purchase's steps (ProcessStepped::step). Stable numbers.
enum class PurchaseStep : std::uint8_t {
  /// What it earns, fixed when it began.
  started = 0,
  /// The pending credit issuer -> member is made.
  credited = 1,
  /// A refund: inside the window it reduces the points due; after the decision it asks for a
  /// clawback of the posted points it no longer earns.
  refunded = 2,
  /// The outcome: post the points due, void them, nothing earned, or the credit refused.
  decided = 3,
  /// The post or void is done (or there was nothing to do).
  completed = 4,
  /// A clawback asked by a refund is done: what it took and what it could not.
  clawed_back = 5,
};

// ---------------------------------------------------------------------------------------------
// Rules.

/// Checks of rules that need nothing but their fields, in the order of RulesResult's numbers
/// (the ledger and issuer account are checked by the caller first).
RulesResult validate_rules(const EarningRules& rules);
/// The issuer account: found, of kind issuer, on the rules' ledger; then the expiry account
/// the same when one is named (`expiry` null: not found).
RulesResult check_rules_account(const EarningRules& rules, const AccountSpec* issuer,
                                const AccountSpec* expiry = nullptr);
bool valid_category(std::string_view category);

/// The rules as stored in the event log and the read models (versioned by the first byte).
std::string encode_rules(const EarningRules& rules);
[[nodiscard]] DecodeError decode_rules(std::string_view data, EarningRules* out);

/// What a purchase earns under `rules` at `now_ns`, before the daily cap.
struct Earning {
  PurchaseResult result = PurchaseResult::ok;
  std::uint32_t rate_bps = 0;
  std::uint32_t multiplier_bps = 10'000;
  /// floor(amount * rate * multiplier / 10^8), 0 below min_purchase.
  std::uint64_t points_earned = 0;
  /// After cap_per_order.
  std::uint64_t points = 0;
};
/// REQUIRES: rules valid, purchase.amount not zero. result: ok, currency_mismatch or
/// category_not_found.
Earning earn(const EarningRules& rules, const Purchase& purchase, std::uint64_t now_ns);
/// At most what is left of the member's daily cap (0: none) after `earned_today`.
std::uint64_t apply_daily_cap(std::uint64_t points, std::uint64_t cap, std::uint64_t earned_today);

/// Checks of a purchase that need nothing but its fields.
PurchaseResult validate_purchase(const Purchase& purchase);

// ---------------------------------------------------------------------------------------------
// Steps.

struct PurchaseStarted {
  Purchase request;
  LedgerId ledger = 0;
  AccountId issuer_account = 0;
  std::uint32_t rate_bps = 0;
  std::uint32_t multiplier_bps = 10'000;
  std::uint64_t points_earned = 0;
  /// Awarded after both caps.
  std::uint64_t points = 0;
  std::uint64_t window_ends_at = 0;
  /// UTC day of the start: the member's daily cap counter.
  std::uint32_t day = 0;
};

struct PurchaseRefunded {
  RefundId id = 0;
  std::uint64_t amount = 0;
  /// Inside the window: points no longer due.
  std::uint64_t points_reduced = 0;
  /// After the decision, with points posted: points to claw back.
  std::uint64_t clawback_points = 0;
};

struct PurchaseDecided {
  /// available (post points_due), refunded (void), nothing_earned, failed.
  PurchaseStatus status = PurchaseStatus::available;
  std::uint64_t points_posted = 0;
  /// failed: the credit's result.
  TransferResult credit_result = TransferResult::ok;
};

struct PurchaseClawedBack {
  RefundId refund_id = 0;
  std::uint64_t taken = 0;
  std::uint64_t shortfall = 0;
};

std::string encode_step(const PurchaseStarted& started);
std::string encode_step(const PurchaseRefunded& refunded);
std::string encode_step(const PurchaseDecided& decided);
std::string encode_step(const PurchaseClawedBack& clawed);
/// `credited` and `completed`: the version byte alone.
std::string encode_empty_purchase_step();
[[nodiscard]] DecodeError decode_step(std::string_view data, PurchaseStarted* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, PurchaseRefunded* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, PurchaseDecided* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, PurchaseClawedBack* out);

/// A purchase as the fold of its steps.
struct PurchaseState {
  PurchaseStarted started;
  bool credited = false;
  bool decided = false;
  PurchaseDecided decision;
  bool completed = false;
  std::vector<RefundInfo> refunds;
  std::uint64_t refunded_amount = 0;
  /// Points due now: the points less what refunds inside the window reduced.
  std::uint64_t points_due = 0;
  /// Refunds whose clawback is asked and not done (their positions give the transfer ids).
  std::size_t clawbacks_open = 0;
  std::uint64_t created_at = 0;
  std::uint64_t updated_at = 0;
  std::uint64_t last_position = 0;
};
/// Valid histories: started, credited (if it earned points), refunds inside the window,
/// decided, completed; after decided, refunds (a clawback each when points were posted) and
/// their clawed_back steps, once the decision is completed, in refund order.
[[nodiscard]] DecodeError fold_purchase(const ProcessRecord& record, PurchaseState* state);
/// Completed, and every clawback done.
bool purchase_finished(const ProcessRecord& record);
PurchaseInfo purchase_info(const PurchaseState& state);

/// The daily cap counter's changes of a step (scope counter_scope_rebate_member): `started`
/// counts its points, a refund inside the window gives back the points it reduced, a refused
/// credit gives back all of them.
std::vector<CounterDelta> purchase_counter_deltas(const ProcessRecord& before,
                                                  const ProcessStepped& step);
CounterKey rebate_member_counter(std::uint32_t day, AccountId member);

// ---------------------------------------------------------------------------------------------
// Transfers and decisions.

/// The pending credit: issuer -> member, the points, id = the purchase id, code
/// rebate_transfer_code, no timeout (the purchase's window ends it).
Transfer purchase_credit(const PurchaseStarted& started);
/// Its post (amount = the points due) or void: id = workflow_transfer_id_min | purchase id.
Transfer purchase_resolution(const PurchaseStarted& started, bool post, std::uint64_t amount);
bool purchase_resolution_done(bool post, TransferResult result);
/// A clawback: member -> issuer, balancing_debit (what the balance allows), id =
/// workflow_transfer_id_min | clawback_id_bit | the position of its refund step.
Transfer purchase_clawback(const PurchaseStarted& started, std::uint64_t points,
                           std::uint64_t refund_position);
inline constexpr std::uint64_t clawback_id_bit = 1ULL << 62;

/// After the credit answered: nullopt when the points are credited (ok, or exists: made before
/// a crash); else the purchase fails with that result.
std::optional<PurchaseDecided> decide_after_credit(TransferResult result);
/// The window ended (`now_ns`) and nothing decided the purchase: post the points due (void if
/// none are left).
bool purchase_due(const PurchaseState& state, std::uint64_t now_ns);
PurchaseDecided decide_window_end(const PurchaseState& state);

/// What a refund does.
struct RefundDecision {
  PurchaseResult result = PurchaseResult::ok;
  /// ok: the step to make durable.
  PurchaseRefunded step;
  /// ok, inside the window: nothing is due any more (void now).
  bool void_now = false;
  /// exists: the refund as recorded.
  std::optional<RefundInfo> existing;
};
/// REQUIRES: the purchase started and is not being decided. Points due after a refund are
/// floor(points * (amount - refunded) / amount): inside the window the difference is reduced;
/// after the decision, with points posted, it is clawed back.
RefundDecision decide_refund(const PurchaseState& state, const Refund& refund);

}  // namespace pointex::domain

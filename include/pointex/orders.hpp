#pragma once
/// Points + cash orders (docs/workflows.md, "Orders"): a member pays a merchant with points
/// and cash; the points are reserved (a pending transfer) while a payment provider takes the
/// cash, then posted when the payment succeeds, or voided when it fails, times out or the
/// order is cancelled. No CAF or RocksDB type appears here.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pointex/payments.hpp"
#include "pointex/types.hpp"

namespace pointex {

using OrderId = std::uint64_t;

// order_transfer_code (65533, pointex/types.hpp) is the code of an order's reservation and of
// its post or void. Reserved like exchange_transfer_code: a client transfer with it, or a client
// post or void of a pending transfer with it, fails with `code_reserved`, so only the order
// resolves its points.

/// The cash part of an order.
struct Cash {
  /// Minor units (cents); 0: the order is paid with points alone.
  std::uint64_t amount = 0;
  /// ISO 4217: three of A-Z. May be empty when amount is 0.
  std::string currency;

  bool operator==(const Cash& o) const { return amount == o.amount && currency == o.currency; }
};

/// An order as a client submits it. Two submissions are the same order when every field is
/// equal (as given: an absent timeout and the default's value are different bodies).
struct Order {
  /// The idempotency key (1 to process_id_max = 2^62 - 1). The reservation is a pending
  /// transfer with this id on member_account: a client transfer there with the id makes the
  /// order fail (exists_with_different_fields).
  OrderId id = 0;
  AccountId member_account = 0;
  AccountId merchant_account = 0;
  /// Points moved from the member to the merchant (same ledger).
  std::uint64_t points = 0;
  Cash cash;
  /// Seconds the payment may take before the order expires; 0: the engine's default
  /// (EngineOptions::order_timeout_s_default). At most order_timeout_s_max.
  std::uint32_t timeout_s = 0;
  /// The payment provider's name; empty: the first of EngineOptions::payment_providers.
  /// Unused when cash.amount is 0.
  std::string provider;

  bool operator==(const Order& o) const {
    return id == o.id && member_account == o.member_account &&
           merchant_account == o.merchant_account && points == o.points && cash == o.cash &&
           timeout_s == o.timeout_s && provider == o.provider;
  }
  bool operator!=(const Order& o) const { return !(*this == o); }
};

/// Where an order is. Stable numbers.
enum class OrderStatus : std::uint8_t {
  /// Reserving the points, or asking the provider for the payment.
  pending = 0,
  /// Points reserved, payment created: waiting for its result (or the deadline, or a cancel).
  awaiting_payment = 1,
  /// Paid: the points are the merchant's.
  completed = 2,
  /// The points could not be reserved, the payment could not be created, or it failed.
  failed = 3,
  /// No payment result before the deadline: the points went back.
  expired = 4,
  /// Cancelled before the payment succeeded: the points went back.
  cancelled = 5,
};
std::string_view to_string(OrderStatus status);

/// An order's steps (every one durable in the event log). Stable numbers.
enum class OrderStep : std::uint8_t {
  started = 0,
  /// The points are reserved (the pending transfer is made).
  reserved = 1,
  /// The provider created the payment.
  payment_created = 2,
  /// The outcome is decided (post or void the points).
  decided = 3,
  /// The points are posted or voided: final.
  completed = 4,
  /// A payment result that came after the order was decided otherwise (after completion too).
  late_result = 5,
};
std::string_view to_string(OrderStep step);

/// Why an order failed. Stable numbers.
enum class OrderFailure : std::uint32_t {
  none = 0,
  /// The reservation was refused: OrderInfo::reservation_result says why (exceeds_credits...).
  reservation_refused = 1,
  /// The provider refused or could not create the payment (OrderInfo::payment_error).
  payment_not_created = 2,
  /// The provider reported the payment failed.
  payment_failed = 3,
};
std::string_view to_string(OrderFailure failure);

/// Answer of create_order and cancel_order. Stable numbers.
enum class OrderResult : std::uint32_t {
  /// create: the order started (see its status); cancel: it is cancelled.
  ok = 0,
  /// create: the same order exists (its state as it is); cancel: it was cancelled before.
  exists = 1,
  /// create: an order with this id and another body exists.
  exists_with_different_fields = 2,
  id_must_not_be_zero = 3,
  /// The id is above process_id_max (2^62 - 1).
  id_reserved = 4,
  points_must_not_be_zero = 5,
  accounts_must_be_different = 6,
  member_account_not_found = 7,
  merchant_account_not_found = 8,
  /// The two accounts are on different ledgers.
  ledger_mismatch = 9,
  /// cash.amount is not 0 and the currency is not three of A-Z (or an amount 0 with a bad one).
  currency_invalid = 10,
  /// timeout_s is over order_timeout_s_max.
  timeout_too_long = 11,
  /// cash.amount is not 0 and no provider has that name (or none is configured).
  provider_not_found = 12,
  /// cancel: no order with this id.
  not_found = 13,
  /// cancel: the payment succeeded (the order completed); nothing changed.
  already_completed = 14,
  /// cancel: the order failed or expired already; nothing changed.
  already_finished = 15,
};
inline constexpr std::uint32_t order_result_count = 16;
std::string_view to_string(OrderResult result);

/// An order as a lookup shows it.
struct OrderInfo {
  /// As submitted.
  Order request;
  LedgerId ledger = 0;
  /// The provider and timeout in effect (the defaults resolved); provider empty for cash 0.
  std::string provider;
  std::uint32_t timeout_s = 0;
  /// When it expires (Unix ns, engine clock) unless paid or cancelled before.
  std::uint64_t deadline = 0;
  OrderStatus status = OrderStatus::pending;
  /// Its last step other than late_result.
  OrderStep step = OrderStep::started;
  /// failed: why.
  OrderFailure failure = OrderFailure::none;
  /// reservation_refused: the transfer result (exceeds_credits, account_closed, ...).
  TransferResult reservation_result = TransferResult::ok;
  /// The payment (empty for cash 0): its id, the provider's reference, or why it was not made.
  std::string payment_id;
  std::string payment_reference;
  std::string payment_error;
  /// From `decided` on, when a payment result decided the order: which.
  std::optional<PaymentStatus> payment_status;
  /// Each step and when it was committed (engine clock, ns), in order.
  struct StepTime {
    OrderStep step = OrderStep::started;
    std::uint64_t timestamp = 0;
    /// late_result: the result that came late.
    std::optional<PaymentStatus> late_status;
  };
  std::vector<StepTime> steps;
  /// A late success (the order expired, was cancelled or failed before): the provider took
  /// the cash but the points went back. An operator must refund the cash.
  bool refund_due = false;
  std::uint64_t created_at = 0;
  std::uint64_t updated_at = 0;
  /// Position of its last step.
  std::uint64_t position = 0;
};

/// The answer to create_order or cancel_order: the result and, when the order exists, the
/// order as it is when answered.
struct OrderOutcome {
  OrderResult result = OrderResult::ok;
  std::optional<OrderInfo> order;
};

/// What a payment result did. Stable numbers.
enum class PaymentResultOutcome : std::uint32_t {
  /// It decided its order (points posted, or voided for a failure).
  applied = 0,
  /// The order was decided on this same result before: nothing more.
  replayed = 1,
  /// The order was decided otherwise before (expired, cancelled, or the other result): it is
  /// recorded on the order (late_result), nothing moves. A late success needs a refund.
  late = 2,
  provider_not_found = 3,
  /// No order has a payment with this id at this provider (logged; nothing recorded).
  payment_not_found = 4,
};
std::string_view to_string(PaymentResultOutcome outcome);

struct PaymentResultAnswer {
  PaymentResultOutcome outcome = PaymentResultOutcome::applied;
  /// The order (when found) as it is when answered.
  std::optional<OrderInfo> order;
};

}  // namespace pointex

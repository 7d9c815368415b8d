#pragma once
/// Points + cash orders as pure functions (docs/workflows.md, "Orders"): the checks of an
/// order, its reservation and the post or void of it, the encoding and fold of its steps, and
/// every decision the engine takes on it (a payment result, a cancel, the deadline). No I/O,
/// no clock reads: the engine passes the time.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/codec.hpp"
#include "domain/process.hpp"
#include "pointex/orders.hpp"

namespace pointex::domain {

/// ProcessStepped::step of each order step.
inline constexpr std::uint8_t order_step(OrderStep step) {
  return static_cast<std::uint8_t>(step);
}

/// Checks of an order that need nothing but its fields and the engine's timeout maximum, in
/// the order of OrderResult's numbers (accounts and providers are checked by the caller after).
OrderResult validate_order(const Order& order, std::uint32_t timeout_s_max);
/// The accounts (null: not found): found, and on one ledger.
OrderResult check_order_accounts(const AccountSpec* member, const AccountSpec* merchant);
/// Three of A-Z.
bool valid_currency(std::string_view currency);

/// `started`: everything later steps and recovery need, fixed when it began.
struct OrderStarted {
  Order request;
  LedgerId ledger = 0;
  /// The provider and timeout in effect (defaults resolved); provider empty for cash 0.
  std::string provider;
  std::uint32_t timeout_s = 0;
  /// Unix ns (engine clock) after which the order expires: the order's durable timer.
  std::uint64_t deadline = 0;
};

/// `payment_created`: the provider's reference.
struct OrderPaymentCreated {
  std::string reference;
};

/// `decided`: the outcome, and what decided it.
struct OrderDecided {
  /// completed, failed, expired or cancelled.
  OrderStatus status = OrderStatus::completed;
  OrderFailure failure = OrderFailure::none;
  TransferResult reservation_result = TransferResult::ok;
  /// The payment result that decided it, if one did.
  std::optional<PaymentStatus> payment_status;
  /// payment_not_created: the provider's error.
  std::string payment_error;
};

/// `completed` has no data but its version (the outcome is the decided one); `late_result`
/// the status that came late.
struct OrderLateResult {
  PaymentStatus status = PaymentStatus::succeeded;
};

std::string encode_step(const OrderStarted& started);
std::string encode_step(const OrderPaymentCreated& created);
std::string encode_step(const OrderDecided& decided);
std::string encode_step(const OrderLateResult& late);
/// `reserved` and `completed`: the version byte alone.
std::string encode_empty_order_step();
[[nodiscard]] DecodeError decode_step(std::string_view data, OrderStarted* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, OrderPaymentCreated* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, OrderDecided* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, OrderLateResult* out);

/// An order as the fold of its steps.
struct OrderState {
  OrderStarted started;
  /// The last step other than late_result.
  OrderStep step = OrderStep::started;
  bool reserved = false;
  bool payment_created = false;
  OrderPaymentCreated payment;
  bool decided = false;
  OrderDecided decision;
  bool completed = false;
  /// Late results recorded, by PaymentStatus (bit 0 succeeded, bit 1 failed).
  std::uint8_t late = 0;
  std::string payment_id;
  std::uint64_t created_at = 0;
  std::uint64_t updated_at = 0;
  std::uint64_t last_position = 0;
};
/// Folds a record. Valid histories: started, then optionally reserved, then optionally
/// payment_created (after reserved), then decided, then completed; late_result only after
/// decided, at most once per status.
[[nodiscard]] DecodeError fold_order(const ProcessRecord& record, OrderState* state);
/// Whether the order has completed (later steps may only be late results).
bool order_finished(const ProcessRecord& record);
OrderInfo order_info(const ProcessRecord& record, const OrderState& state);
OrderStatus order_status(const OrderState& state);

/// The payment id of an order: `po-<order id>-<started timestamp>` (unique even across data
/// dirs that reuse order ids, the same across restarts). `parse_payment_id` gives the order id.
std::string order_payment_id(OrderId id, std::uint64_t started_at);
[[nodiscard]] bool parse_payment_id(std::string_view payment_id, OrderId* id);

/// The reservation: member -> merchant, points, pending, no timeout (the order's own deadline
/// ends it), code order_transfer_code, id = the order id.
Transfer order_reservation(const OrderStarted& started);
/// Its post (paid) or void: id = workflow_transfer_id_min | order id, on the member's account.
Transfer order_resolution(const OrderStarted& started, bool post);
/// Whether the post or void is done: ok, exists, or already in the wanted state.
bool order_resolution_done(bool post, TransferResult result);

/// After the reservation answered: nullopt when the points are reserved (ok, or exists: made
/// before a crash); else the order fails with that result.
std::optional<OrderDecided> decide_after_reservation(TransferResult result);

/// What a payment result does to an order.
struct PaymentDecision {
  PaymentResultOutcome outcome = PaymentResultOutcome::applied;
  /// applied: the decision to make durable. late: the step to record (unless recorded).
  OrderDecided decided;
  bool record_late = false;
};
/// REQUIRES: the order's payment matches. Before the order is decided (and its points are
/// reserved): the result decides it (succeeded: completed, failed: failed). After: the same
/// result it was decided on is a replay; another one is late (recorded once per status).
PaymentDecision decide_payment(const OrderState& state, PaymentStatus status);
/// Whether a payment result may decide the order now (reserved, not decided).
bool awaits_payment(const OrderState& state);

/// A cancel: ok (decide cancelled) while not decided; else the answer for the decided order
/// (exists when it was cancelled, already_completed, already_finished).
OrderResult decide_cancel(const OrderState& state);
OrderDecided cancelled();
OrderDecided expired();
/// The deadline passed (`now_ns`) and nothing decided the order: it expires.
bool order_due(const OrderState& state, std::uint64_t now_ns);

}  // namespace pointex::domain

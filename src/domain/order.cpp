#include "domain/order.hpp"

#include "domain/assert.hpp"
#include "domain/varint.hpp"

namespace pointex::domain {
namespace {

/// Every step's data starts with its own layout version.
constexpr std::uint8_t order_data_version = 1;
constexpr std::size_t currency_bytes = 3;

bool read_version(Reader& in) {
  const std::uint8_t version = in.u8();
  if (in.error() != DecodeError::none) return false;
  if (version != order_data_version) {
    in.fail(DecodeError::unknown_version);
    return false;
  }
  return true;
}

std::uint8_t late_bit(PaymentStatus status) {
  return status == PaymentStatus::succeeded ? 1 : 2;
}

PaymentStatus read_payment_status(Reader& in) {
  return static_cast<PaymentStatus>(in.bounded<std::uint32_t>(1));
}

/// Whether step `next` may follow the last step `last` (late results aside).
bool may_follow(OrderStep last, OrderStep next) {
  switch (next) {
    case OrderStep::reserved:
      return last == OrderStep::started;
    case OrderStep::payment_created:
      return last == OrderStep::reserved;
    case OrderStep::decided:
      return last == OrderStep::started || last == OrderStep::reserved ||
             last == OrderStep::payment_created;
    case OrderStep::completed:
      return last == OrderStep::decided;
    default:
      return false;
  }
}

DecodeError fold_step(const ProcessStepRecord& s, bool first, OrderState* st) {
  if (s.step > order_step(OrderStep::late_result)) return DecodeError::invalid_field;
  const auto step = static_cast<OrderStep>(s.step);
  if (first != (step == OrderStep::started)) return DecodeError::invalid_field;
  if (step == OrderStep::late_result) {
    OrderLateResult late;
    const DecodeError err = decode_step(s.data, &late);
    if (err != DecodeError::none) return err;
    const std::uint8_t bit = late_bit(late.status);
    if (!st->decided || (st->late & bit) != 0) return DecodeError::invalid_field;
    st->late |= bit;
    return DecodeError::none;
  }
  if (!first && !may_follow(st->step, step)) return DecodeError::invalid_field;
  DecodeError err = DecodeError::none;
  switch (step) {
    case OrderStep::started:
      err = decode_step(s.data, &st->started);
      st->created_at = s.timestamp;
      st->payment_id = order_payment_id(st->started.request.id, s.timestamp);
      break;
    case OrderStep::reserved:
    case OrderStep::completed: {
      Reader in(s.data);
      read_version(in);
      err = in.finish();
      st->reserved = st->reserved || step == OrderStep::reserved;
      st->completed = step == OrderStep::completed;
      break;
    }
    case OrderStep::payment_created:
      err = decode_step(s.data, &st->payment);
      st->payment_created = true;
      break;
    case OrderStep::decided:
      err = decode_step(s.data, &st->decision);
      st->decided = true;
      // Paid needs the points reserved; a refused reservation means there are none.
      if (st->decision.status == OrderStatus::completed && !st->reserved) {
        return DecodeError::invalid_field;
      }
      if (st->decision.failure == OrderFailure::reservation_refused && st->reserved) {
        return DecodeError::invalid_field;
      }
      break;
    case OrderStep::late_result:
      break;
  }
  st->step = step;
  return err;
}

}  // namespace

bool valid_currency(std::string_view currency) {
  if (currency.size() != currency_bytes) return false;
  for (const char c : currency) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

OrderResult validate_order(const Order& o, std::uint32_t timeout_s_max) {
  if (o.id == 0) return OrderResult::id_must_not_be_zero;
  if (o.id > process_id_max) return OrderResult::id_reserved;
  if (o.points == 0) return OrderResult::points_must_not_be_zero;
  if (o.member_account == 0) return OrderResult::member_account_not_found;
  if (o.merchant_account == 0) return OrderResult::merchant_account_not_found;
  if (o.member_account == o.merchant_account) return OrderResult::accounts_must_be_different;
  if ((o.cash.amount != 0 || !o.cash.currency.empty()) && !valid_currency(o.cash.currency)) {
    return OrderResult::currency_invalid;
  }
  if (o.timeout_s > timeout_s_max) return OrderResult::timeout_too_long;
  if (!o.provider.empty() && !valid_payment_provider_name(o.provider)) {
    return OrderResult::provider_not_found;
  }
  return OrderResult::ok;
}

OrderResult check_order_accounts(const AccountSpec* member, const AccountSpec* merchant) {
  if (member == nullptr) return OrderResult::member_account_not_found;
  if (merchant == nullptr) return OrderResult::merchant_account_not_found;
  if (member->ledger != merchant->ledger) return OrderResult::ledger_mismatch;
  return OrderResult::ok;
}

// ---------------------------------------------------------------------------------------------
// Steps.

std::string encode_step(const OrderStarted& s) {
  std::string out;
  put_u8(out, order_data_version);
  const Order& r = s.request;
  for (std::uint64_t x : {r.id, r.member_account, r.merchant_account, r.points, r.cash.amount}) {
    put_varint(out, x);
  }
  put_bytes(out, r.cash.currency);
  put_varint(out, r.timeout_s);
  put_bytes(out, r.provider);
  put_varint(out, s.ledger);
  put_bytes(out, s.provider);
  put_varint(out, s.timeout_s);
  put_varint(out, s.deadline);
  return out;
}

std::string encode_step(const OrderPaymentCreated& c) {
  std::string out;
  put_u8(out, order_data_version);
  put_bytes(out, c.reference);
  return out;
}

std::string encode_step(const OrderDecided& d) {
  std::string out;
  put_u8(out, order_data_version);
  put_u8(out, static_cast<std::uint8_t>(d.status));
  put_varint(out, static_cast<std::uint32_t>(d.failure));
  put_varint(out, static_cast<std::uint32_t>(d.reservation_result));
  put_u8(out, d.payment_status ? static_cast<std::uint8_t>(*d.payment_status) + 1 : 0);
  put_bytes(out, d.payment_error);
  return out;
}

std::string encode_step(const OrderLateResult& l) {
  std::string out;
  put_u8(out, order_data_version);
  put_varint(out, static_cast<std::uint32_t>(l.status));
  return out;
}

std::string encode_empty_order_step() {
  std::string out;
  put_u8(out, order_data_version);
  return out;
}

DecodeError decode_step(std::string_view data, OrderStarted* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  OrderStarted s;
  Order& r = s.request;
  r.id = in.varint();
  r.member_account = in.varint();
  r.merchant_account = in.varint();
  r.points = in.varint();
  r.cash.amount = in.varint();
  r.cash.currency = in.bytes(currency_bytes);
  r.timeout_s = in.bounded<std::uint32_t>(UINT32_MAX);
  r.provider = in.bytes(payment_provider_name_bytes_max);
  s.ledger = in.varint();
  s.provider = in.bytes(payment_provider_name_bytes_max);
  s.timeout_s = in.bounded<std::uint32_t>(UINT32_MAX);
  s.deadline = in.varint();
  if (r.id == 0 || r.id >= workflow_transfer_id_min || r.points == 0) {
    in.fail(DecodeError::invalid_field);
  }
  *out = std::move(s);
  return in.finish();
}

DecodeError decode_step(std::string_view data, OrderPaymentCreated* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  out->reference = in.bytes(payment_reference_bytes_max);
  return in.finish();
}

DecodeError decode_step(std::string_view data, OrderDecided* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  OrderDecided d;
  const std::uint8_t status = in.u8();
  if (status < static_cast<std::uint8_t>(OrderStatus::completed) ||
      status > static_cast<std::uint8_t>(OrderStatus::cancelled)) {
    in.fail(DecodeError::invalid_field);
  }
  d.status = static_cast<OrderStatus>(status);
  d.failure = static_cast<OrderFailure>(
      in.bounded<std::uint32_t>(static_cast<std::uint32_t>(OrderFailure::payment_failed)));
  d.reservation_result =
      static_cast<TransferResult>(in.bounded<std::uint32_t>(transfer_result_count - 1));
  const std::uint8_t payment = in.u8();
  if (payment > 2) in.fail(DecodeError::invalid_field);
  if (payment != 0) d.payment_status = static_cast<PaymentStatus>(payment - 1);
  d.payment_error = in.bytes(payment_error_bytes_max);
  if ((d.status == OrderStatus::failed) != (d.failure != OrderFailure::none)) {
    in.fail(DecodeError::invalid_field);
  }
  *out = std::move(d);
  return in.finish();
}

DecodeError decode_step(std::string_view data, OrderLateResult* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  out->status = read_payment_status(in);
  return in.finish();
}

// ---------------------------------------------------------------------------------------------
// The fold.

DecodeError fold_order(const ProcessRecord& record, OrderState* state) {
  return fold_steps(record, ProcessKind::order, state, fold_step);
}

bool order_finished(const ProcessRecord& record) {
  for (const ProcessStepRecord& s : record.steps) {
    if (s.step == order_step(OrderStep::completed)) return true;
  }
  return false;
}

OrderStatus order_status(const OrderState& st) {
  if (st.decided) return st.decision.status;
  return st.payment_created ? OrderStatus::awaiting_payment : OrderStatus::pending;
}

OrderInfo order_info(const ProcessRecord& record, const OrderState& st) {
  OrderInfo i;
  i.request = st.started.request;
  i.ledger = st.started.ledger;
  i.provider = st.started.provider;
  i.timeout_s = st.started.timeout_s;
  i.deadline = st.started.deadline;
  i.status = order_status(st);
  i.step = st.step;
  i.failure = st.decision.failure;
  i.reservation_result = st.decision.reservation_result;
  if (st.started.request.cash.amount != 0) i.payment_id = st.payment_id;
  i.payment_reference = st.payment.reference;
  i.payment_error = st.decision.payment_error;
  if (st.decided) i.payment_status = st.decision.payment_status;
  for (const ProcessStepRecord& s : record.steps) {
    OrderInfo::StepTime t;
    t.step = static_cast<OrderStep>(s.step);
    t.timestamp = s.timestamp;
    OrderLateResult late;
    if (t.step == OrderStep::late_result && decode_step(s.data, &late) == DecodeError::none) {
      t.late_status = late.status;
    }
    i.steps.push_back(t);
  }
  i.refund_due = (st.late & late_bit(PaymentStatus::succeeded)) != 0 &&
                 st.decision.status != OrderStatus::completed;
  i.created_at = st.created_at;
  i.updated_at = st.updated_at;
  i.position = st.last_position;
  return i;
}

std::string order_payment_id(OrderId id, std::uint64_t started_at) {
  return "po-" + std::to_string(id) + "-" + std::to_string(started_at);
}

bool parse_payment_id(std::string_view payment_id, OrderId* id) {
  constexpr std::string_view prefix = "po-";
  if (payment_id.size() > payment_id_bytes_max || payment_id.substr(0, prefix.size()) != prefix) {
    return false;
  }
  payment_id.remove_prefix(prefix.size());
  const auto dash = payment_id.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash > 19) return false;
  std::uint64_t v = 0;
  for (const char c : payment_id.substr(0, dash)) {
    if (c < '0' || c > '9') return false;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *id = v;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Transfers and decisions.

Transfer order_reservation(const OrderStarted& s) {
  Transfer t;
  t.id = s.request.id;
  t.debit_account = s.request.member_account;
  t.credit_account = s.request.merchant_account;
  t.amount = s.request.points;
  t.ledger = s.ledger;
  t.code = order_transfer_code;
  t.flags = transfer_flags::pending;
  return t;
}

Transfer order_resolution(const OrderStarted& s, bool post) {
  POINTEX_ASSERT(s.request.id < workflow_transfer_id_min);
  Transfer t;
  t.id = workflow_transfer_id_min | s.request.id;
  t.debit_account = s.request.member_account;
  t.credit_account = s.request.merchant_account;
  t.ledger = s.ledger;
  t.code = order_transfer_code;
  t.pending_id = s.request.id;
  t.flags = post ? transfer_flags::post_pending : transfer_flags::void_pending;
  return t;
}

bool order_resolution_done(bool post, TransferResult result) {
  return result == TransferResult::ok || result == TransferResult::exists ||
         result == (post ? TransferResult::pending_transfer_already_posted
                         : TransferResult::pending_transfer_already_voided);
}

std::optional<OrderDecided> decide_after_reservation(TransferResult result) {
  if (result == TransferResult::ok || result == TransferResult::exists) return std::nullopt;
  OrderDecided d;
  d.status = OrderStatus::failed;
  d.failure = OrderFailure::reservation_refused;
  d.reservation_result = result;
  return d;
}

bool awaits_payment(const OrderState& st) {
  return st.reserved && !st.decided;
}

PaymentDecision decide_payment(const OrderState& st, PaymentStatus status) {
  PaymentDecision d;
  if (!st.decided) {
    POINTEX_ASSERT(st.reserved);
    d.outcome = PaymentResultOutcome::applied;
    const bool paid = status == PaymentStatus::succeeded;
    d.decided.status = paid ? OrderStatus::completed : OrderStatus::failed;
    d.decided.failure = paid ? OrderFailure::none : OrderFailure::payment_failed;
    d.decided.payment_status = status;
    return d;
  }
  if (st.decision.payment_status == status) {
    d.outcome = PaymentResultOutcome::replayed;
    return d;
  }
  d.outcome = PaymentResultOutcome::late;
  d.record_late = (st.late & late_bit(status)) == 0;
  return d;
}

OrderResult decide_cancel(const OrderState& st) {
  if (!st.decided) return OrderResult::ok;
  switch (st.decision.status) {
    case OrderStatus::cancelled:
      return OrderResult::exists;
    case OrderStatus::completed:
      return OrderResult::already_completed;
    default:
      return OrderResult::already_finished;
  }
}

OrderDecided cancelled() {
  return {OrderStatus::cancelled, OrderFailure::none, TransferResult::ok, std::nullopt, {}};
}

OrderDecided expired() {
  return {OrderStatus::expired, OrderFailure::none, TransferResult::ok, std::nullopt, {}};
}

bool order_due(const OrderState& st, std::uint64_t now_ns) {
  return st.reserved && !st.decided && now_ns >= st.started.deadline;
}

}  // namespace pointex::domain

// Points + cash orders' pure rules (src/domain/order.*): the checks of an order, its transfers,
// step encodings (with golden bytes), the fold and the histories it refuses, and every
// decision: after the reservation, on a payment result (applied, replayed, late), on a cancel,
// on the deadline; payment ids; the simulated provider's rule.

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "domain/decide.hpp"
#include "domain/order.hpp"
#include "domain/process.hpp"
#include "hex.hpp"
#include "pointex/orders.hpp"

using namespace pointex;
using namespace pointex::domain;
using pointex::test::hex;

namespace {

Order order_of(OrderId id, std::uint64_t points = 300, std::uint64_t cash = 1999) {
  Order o;
  o.id = id;
  o.member_account = 100;
  o.merchant_account = 200;
  o.points = points;
  o.cash = {cash, cash != 0 ? "CNY" : ""};
  return o;
}

OrderStarted started_of(OrderId id, std::uint64_t cash = 1999) {
  OrderStarted s;
  s.request = order_of(id, 300, cash);
  s.ledger = 1;
  s.provider = cash != 0 ? "acme" : "";
  s.timeout_s = 900;
  s.deadline = 5'000;
  return s;
}

/// Builds an order's record step by step, as the log would hold it.
class History {
 public:
  explicit History(OrderId id) : record_{ProcessKind::order, id, {}} {}
  History& add(OrderStep step, std::string data) {
    const std::uint64_t position = record_.steps.size() + 1;
    append_step(record_,
                {ProcessKind::order, record_.id, order_step(step), std::move(data), position * 100},
                position);
    return *this;
  }
  History& started(const OrderStarted& s) { return add(OrderStep::started, encode_step(s)); }
  History& reserved() { return add(OrderStep::reserved, encode_empty_order_step()); }
  History& created(std::string reference = "ref-1") {
    return add(OrderStep::payment_created, encode_step(OrderPaymentCreated{std::move(reference)}));
  }
  History& decided(const OrderDecided& d) { return add(OrderStep::decided, encode_step(d)); }
  History& completed() { return add(OrderStep::completed, encode_empty_order_step()); }
  History& late(PaymentStatus status) {
    return add(OrderStep::late_result, encode_step(OrderLateResult{status}));
  }
  const ProcessRecord& record() const { return record_; }
  OrderState state() const {
    OrderState st;
    REQUIRE(fold_order(record_, &st) == DecodeError::none);
    return st;
  }

 private:
  ProcessRecord record_;
};

OrderDecided paid() {
  return decide_payment(History(1).started(started_of(1)).reserved().state(),
                        PaymentStatus::succeeded)
      .decided;
}

}  // namespace

TEST_CASE("an order's own fields are checked in order", "[orders]") {
  CHECK(validate_order(order_of(1), 100) == OrderResult::ok);
  Order o = order_of(0);
  CHECK(validate_order(o, 100) == OrderResult::id_must_not_be_zero);
  o = order_of(workflow_transfer_id_min);
  CHECK(validate_order(o, 100) == OrderResult::id_reserved);
  CHECK(validate_order(order_of(process_id_max + 1), 100) == OrderResult::id_reserved);
  CHECK(validate_order(order_of(process_id_max), 100) == OrderResult::ok);
  CHECK(validate_order(order_of(1, 0), 100) == OrderResult::points_must_not_be_zero);
  o = order_of(1);
  o.merchant_account = o.member_account;
  CHECK(validate_order(o, 100) == OrderResult::accounts_must_be_different);
  o.member_account = 0;
  CHECK(validate_order(o, 100) == OrderResult::member_account_not_found);
  o = order_of(1);
  o.cash.currency = "cny";
  CHECK(validate_order(o, 100) == OrderResult::currency_invalid);
  o.cash.currency = "";
  CHECK(validate_order(o, 100) == OrderResult::currency_invalid);
  o.cash = {0, ""};  // points alone: no currency needed
  CHECK(validate_order(o, 100) == OrderResult::ok);
  o.cash = {0, "EURO"};  // but a currency given must be one
  CHECK(validate_order(o, 100) == OrderResult::currency_invalid);
  o = order_of(1);
  o.timeout_s = 101;
  CHECK(validate_order(o, 100) == OrderResult::timeout_too_long);
  o.timeout_s = 100;
  CHECK(validate_order(o, 100) == OrderResult::ok);
  o.provider = "Bad Name";
  CHECK(validate_order(o, 100) == OrderResult::provider_not_found);
  AccountSpec member{100, 1, AccountKind::member, 0, 0, ""};
  AccountSpec merchant{200, 2, AccountKind::member, 0, 0, ""};
  CHECK(check_order_accounts(nullptr, &merchant) == OrderResult::member_account_not_found);
  CHECK(check_order_accounts(&member, nullptr) == OrderResult::merchant_account_not_found);
  CHECK(check_order_accounts(&member, &merchant) == OrderResult::ledger_mismatch);
  merchant.ledger = 1;
  CHECK(check_order_accounts(&member, &merchant) == OrderResult::ok);
}

TEST_CASE("an order's reservation and its post or void", "[orders]") {
  const OrderStarted s = started_of(42);
  const Transfer t = order_reservation(s);
  CHECK(t.id == 42);
  CHECK(t.debit_account == 100);
  CHECK(t.credit_account == 200);
  CHECK(t.amount == 300);
  CHECK(t.ledger == 1);
  CHECK(t.code == order_transfer_code);
  CHECK(t.flags == transfer_flags::pending);
  CHECK(t.timeout_s == 0);  // the order's own deadline ends it
  CHECK(validate_transfer(t) == TransferResult::ok);
  // A client may neither make such a transfer nor resolve it.
  CHECK(check_client_transfer(t) == TransferResult::code_reserved);
  const Transfer post = order_resolution(s, true);
  CHECK(post.id == (workflow_transfer_id_min | 42));
  CHECK(post.pending_id == 42);
  CHECK(post.flags == transfer_flags::post_pending);
  CHECK(post.amount == 0);  // the whole reservation
  CHECK(validate_transfer(post) == TransferResult::ok);
  CHECK(order_resolution(s, false).flags == transfer_flags::void_pending);
  CHECK(order_resolution_done(true, TransferResult::ok));
  CHECK(order_resolution_done(true, TransferResult::exists));
  CHECK(order_resolution_done(true, TransferResult::pending_transfer_already_posted));
  CHECK_FALSE(order_resolution_done(true, TransferResult::pending_transfer_already_voided));
  CHECK(order_resolution_done(false, TransferResult::pending_transfer_already_voided));
  CHECK_FALSE(order_resolution_done(false, TransferResult::pending_transfer_not_found));
}

TEST_CASE("order steps: golden bytes, and every malformed encoding refused", "[orders]") {
  const OrderStarted s = started_of(7);
  // version 1, id 7, member 100, merchant 200, points 300, cash 1999 "CNY", timeout 0,
  // provider "", ledger 1, provider "acme", timeout 900, deadline 5000.
  CHECK(hex(encode_step(s)) == "010764c801ac02cf0f03434e590000010461636d6584078827");
  OrderStarted s2;
  REQUIRE(decode_step(encode_step(s), &s2) == DecodeError::none);
  CHECK(s2.request == s.request);
  CHECK(s2.provider == "acme");
  CHECK(s2.deadline == 5000);
  std::string bytes = encode_step(s);
  bytes[0] = 2;
  CHECK(decode_step(bytes, &s2) == DecodeError::unknown_version);
  CHECK(decode_step(encode_step(s).substr(0, 5), &s2) == DecodeError::truncated);
  CHECK(decode_step(encode_step(s) + "x", &s2) == DecodeError::trailing_bytes);
  OrderDecided d;
  d.status = OrderStatus::failed;
  d.failure = OrderFailure::reservation_refused;
  d.reservation_result = TransferResult::exceeds_credits;
  CHECK(hex(encode_step(d)) == "010301090000");
  OrderDecided d2;
  REQUIRE(decode_step(encode_step(d), &d2) == DecodeError::none);
  CHECK(d2.reservation_result == TransferResult::exceeds_credits);
  CHECK_FALSE(d2.payment_status);
  d = paid();
  REQUIRE(decode_step(encode_step(d), &d2) == DecodeError::none);
  CHECK(d2.status == OrderStatus::completed);
  CHECK(d2.payment_status == PaymentStatus::succeeded);
  // A failed order says why; a status that is not an outcome is refused.
  d.status = OrderStatus::failed;
  d.failure = OrderFailure::none;
  CHECK(decode_step(encode_step(d), &d2) == DecodeError::invalid_field);
  d.status = OrderStatus::awaiting_payment;
  CHECK(decode_step(encode_step(d), &d2) == DecodeError::invalid_field);
  OrderLateResult late;
  CHECK(decode_step(std::string("\x01\x02", 2), &late) == DecodeError::invalid_field);
  OrderPaymentCreated created;
  CHECK(decode_step(encode_step(OrderPaymentCreated{std::string(513, 'r')}), &created) ==
        DecodeError::invalid_field);
}

TEST_CASE("an order is the fold of its steps", "[orders]") {
  History h(7);
  h.started(started_of(7));
  OrderState st = h.state();
  CHECK(st.step == OrderStep::started);
  CHECK(order_status(st) == OrderStatus::pending);
  CHECK(st.payment_id == "po-7-100");
  CHECK_FALSE(order_finished(h.record()));
  h.reserved().created("https://pay.example/7");
  st = h.state();
  CHECK(order_status(st) == OrderStatus::awaiting_payment);
  CHECK(awaits_payment(st));
  h.decided(paid()).completed();
  st = h.state();
  CHECK(order_finished(h.record()));
  CHECK(order_status(st) == OrderStatus::completed);
  const OrderInfo info = order_info(h.record(), st);
  CHECK(info.status == OrderStatus::completed);
  CHECK(info.step == OrderStep::completed);
  CHECK(info.payment_id == "po-7-100");
  CHECK(info.payment_reference == "https://pay.example/7");
  REQUIRE(info.steps.size() == 5);
  CHECK(info.steps[2].step == OrderStep::payment_created);
  CHECK(info.steps[2].timestamp == 300);
  CHECK(info.created_at == 100);
  CHECK(info.updated_at == 500);
  CHECK(info.position == 5);
  CHECK_FALSE(info.refund_due);
  // The record survives its read-model encoding.
  ProcessRecord back;
  REQUIRE(decode_process_record(encode_process_record(h.record()), &back) == DecodeError::none);
  CHECK(encode_process_record(back) == encode_process_record(h.record()));
  CHECK(process_finished(back));
  CHECK(step_counter_deltas(back, {ProcessKind::order, 7, 5, {}, 0}).empty());
}

TEST_CASE("an order's fold refuses histories the engine never writes", "[orders]") {
  const OrderStarted s = started_of(7);
  OrderState st;
  const auto refused = [&](const History& h) {
    return fold_order(h.record(), &st) == DecodeError::invalid_field;
  };
  CHECK(refused(History(7).reserved()));                              // no start
  CHECK(refused(History(8).started(s)));                              // another id
  CHECK(refused(History(7).started(s).created()));                    // payment, no points
  CHECK(refused(History(7).started(s).reserved().reserved()));        // twice
  CHECK(refused(History(7).started(s).reserved().completed()));       // not decided
  CHECK(refused(History(7).started(s).decided(paid())));              // paid, no points
  CHECK(refused(History(7).started(s).late(PaymentStatus::failed)));  // late before decided
  CHECK(refused(History(7).started(s).reserved().decided(expired()).completed().decided(
      expired())));  // decided twice
  CHECK(refused(History(7)
                    .started(s)
                    .reserved()
                    .decided(expired())
                    .late(PaymentStatus::failed)
                    .late(PaymentStatus::failed)));  // the same late twice
  // A late result may come before or after completion, once per status.
  History ok(7);
  ok.started(s).reserved().created().decided(expired()).late(PaymentStatus::succeeded);
  ok.completed().late(PaymentStatus::failed);
  REQUIRE(fold_order(ok.record(), &st) == DecodeError::none);
  CHECK(st.step == OrderStep::completed);
  CHECK(order_finished(ok.record()));
  CHECK(order_info(ok.record(), st).refund_due);
  CHECK(order_info(ok.record(), st).steps.back().late_status == PaymentStatus::failed);
  // A refused reservation leaves no points: its decision cannot follow `reserved`.
  const std::optional<OrderDecided> refusal =
      decide_after_reservation(TransferResult::exceeds_credits);
  REQUIRE(refusal);
  CHECK(refused(History(7).started(s).reserved().decided(*refusal)));
  History failed(7);
  failed.started(s).decided(*refusal).completed();
  REQUIRE(fold_order(failed.record(), &st) == DecodeError::none);
  CHECK(order_status(st) == OrderStatus::failed);
  CHECK(order_info(failed.record(), st).reservation_result == TransferResult::exceeds_credits);
}

TEST_CASE("the reservation's answer: reserved, or the order fails with it", "[orders]") {
  CHECK_FALSE(decide_after_reservation(TransferResult::ok));
  CHECK_FALSE(decide_after_reservation(TransferResult::exists));  // made before a crash
  for (const TransferResult r :
       {TransferResult::exceeds_credits, TransferResult::account_closed,
        TransferResult::exists_with_different_fields, TransferResult::overflow}) {
    const std::optional<OrderDecided> d = decide_after_reservation(r);
    REQUIRE(d);
    CHECK(d->status == OrderStatus::failed);
    CHECK(d->failure == OrderFailure::reservation_refused);
    CHECK(d->reservation_result == r);
  }
}

TEST_CASE("payment results: applied once, replays, late results recorded once", "[orders]") {
  const OrderStarted s = started_of(9);
  History h(9);
  h.started(s).reserved().created();
  // Given an order awaiting payment, when it fails, then the order fails.
  PaymentDecision d = decide_payment(h.state(), PaymentStatus::failed);
  CHECK(d.outcome == PaymentResultOutcome::applied);
  CHECK(d.decided.status == OrderStatus::failed);
  CHECK(d.decided.failure == OrderFailure::payment_failed);
  // When it succeeds, it completes.
  d = decide_payment(h.state(), PaymentStatus::succeeded);
  CHECK(d.decided.status == OrderStatus::completed);
  h.decided(d.decided);
  // The same result again is a replay; the other one is late, to be recorded once.
  CHECK(decide_payment(h.state(), PaymentStatus::succeeded).outcome ==
        PaymentResultOutcome::replayed);
  d = decide_payment(h.state(), PaymentStatus::failed);
  CHECK(d.outcome == PaymentResultOutcome::late);
  CHECK(d.record_late);
  h.completed().late(PaymentStatus::failed);
  d = decide_payment(h.state(), PaymentStatus::failed);
  CHECK(d.outcome == PaymentResultOutcome::late);
  CHECK_FALSE(d.record_late);
  // A success after the deadline is late: the points stay voided, the cash needs a refund.
  History e(10);
  e.started(started_of(10)).reserved().created().decided(expired()).completed();
  d = decide_payment(e.state(), PaymentStatus::succeeded);
  CHECK(d.outcome == PaymentResultOutcome::late);
  CHECK(d.record_late);
  CHECK_FALSE(order_info(e.record(), e.state()).refund_due);
  e.late(PaymentStatus::succeeded);
  CHECK(order_info(e.record(), e.state()).refund_due);
  CHECK(order_info(e.record(), e.state()).status == OrderStatus::expired);
}

TEST_CASE("cancels and the deadline decide only an undecided order", "[orders]") {
  const OrderStarted s = started_of(11);
  History h(11);
  h.started(s);
  CHECK_FALSE(order_due(h.state(), s.deadline));  // the points are not reserved yet
  h.reserved().created();
  CHECK(decide_cancel(h.state()) == OrderResult::ok);
  CHECK_FALSE(order_due(h.state(), s.deadline - 1));
  CHECK(order_due(h.state(), s.deadline));
  History cancelled_order = h;
  cancelled_order.decided(cancelled());
  CHECK(decide_cancel(cancelled_order.state()) == OrderResult::exists);
  CHECK_FALSE(order_due(cancelled_order.state(), s.deadline));
  History paid_order = h;
  paid_order.decided(paid());
  CHECK(decide_cancel(paid_order.state()) == OrderResult::already_completed);
  History expired_order = h;
  expired_order.decided(expired());
  CHECK(decide_cancel(expired_order.state()) == OrderResult::already_finished);
}

TEST_CASE("payment ids name their order", "[orders]") {
  CHECK(order_payment_id(42, 1'800'000'000'000'000'000ULL) == "po-42-1800000000000000000");
  OrderId id = 0;
  REQUIRE(parse_payment_id("po-42-1800000000000000000", &id));
  CHECK(id == 42);
  REQUIRE(parse_payment_id(order_payment_id(workflow_transfer_id_min - 1, 1), &id));
  CHECK(id == workflow_transfer_id_min - 1);
  for (const char* bad : {"", "po-", "po--1", "po-42", "px-42-1", "po-4x2-1",
                          "po-99999999999999999999-1", "po-18446744073709551616-1"}) {
    INFO(bad);
    CHECK_FALSE(parse_payment_id(bad, &id));
  }
  CHECK_FALSE(parse_payment_id("po-1-" + std::string(100, '1'), &id));
}

TEST_CASE("the simulated provider's failures follow the seed and the rate", "[orders]") {
  int failed = 0;
  for (int i = 0; i < 10'000; ++i) {
    const std::string id = order_payment_id(static_cast<OrderId>(i + 1), 77);
    const bool fails = simulated_payment_fails(3, 0.25, id);
    CHECK(fails == simulated_payment_fails(3, 0.25, id));  // deterministic
    failed += fails ? 1 : 0;
    CHECK_FALSE(simulated_payment_fails(3, 0, id));
    CHECK(simulated_payment_fails(3, 1, id));
  }
  CHECK(failed > 2'300);
  CHECK(failed < 2'700);
  int differ = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = order_payment_id(static_cast<OrderId>(i + 1), 77);
    differ += simulated_payment_fails(3, 0.5, id) != simulated_payment_fails(4, 0.5, id) ? 1 : 0;
  }
  CHECK(differ > 300);  // another seed, other payments fail
}

// Shopping rebates' pure rules (src/domain/rebate.*): rules' checks and encoding, what a
// purchase earns (rate, rounding, minimum, caps, campaigns), step encodings with golden bytes,
// the fold and the histories it refuses, refunds inside and after the window, the daily cap's
// counter, and the purchase's transfers.

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "domain/process.hpp"
#include "domain/rebate.hpp"
#include "hex.hpp"

using namespace pointex;
using namespace pointex::domain;
using pointex::test::hex;

namespace {

EarningRules rules_of() {
  EarningRules r;
  r.ledger = 1;
  r.issuer_account = 10;
  r.currency = "EUR";
  r.categories = {{"books", 100}, {"food", 250}};
  r.min_purchase = 500;
  r.return_window_s = 3600;
  return r;
}

PurchaseStarted started_of(PurchaseId id, std::uint64_t points = 100,
                           std::uint64_t amount = 10'000) {
  PurchaseStarted s;
  s.request = {id, 11, amount, "EUR", "books"};
  s.ledger = 1;
  s.issuer_account = 10;
  s.rate_bps = 100;
  s.points_earned = points;
  s.points = points;
  s.window_ends_at = 5'000;
  s.day = 20'000;
  return s;
}

/// Builds a purchase's record step by step, as the log would hold it (position = index + 1).
class History {
 public:
  explicit History(PurchaseId id) : record_{ProcessKind::rebate, id, {}} {}
  History& add(PurchaseStep step, std::string data) {
    const std::uint64_t position = record_.steps.size() + 1;
    append_step(record_,
                {ProcessKind::rebate, record_.id, static_cast<std::uint8_t>(step), std::move(data),
                 position * 100},
                position);
    return *this;
  }
  History& started(const PurchaseStarted& s) { return add(PurchaseStep::started, encode_step(s)); }
  History& credited() { return add(PurchaseStep::credited, encode_empty_purchase_step()); }
  History& refunded(const PurchaseRefunded& r) {
    return add(PurchaseStep::refunded, encode_step(r));
  }
  History& decided(const PurchaseDecided& d) { return add(PurchaseStep::decided, encode_step(d)); }
  History& completed() { return add(PurchaseStep::completed, encode_empty_purchase_step()); }
  History& clawed(const PurchaseClawedBack& c) {
    return add(PurchaseStep::clawed_back, encode_step(c));
  }
  const ProcessRecord& record() const { return record_; }
  PurchaseState state() const {
    PurchaseState st;
    REQUIRE(fold_purchase(record_, &st) == DecodeError::none);
    return st;
  }
  DecodeError fold() const {
    PurchaseState st;
    return fold_purchase(record_, &st);
  }

 private:
  ProcessRecord record_;
};

PurchaseDecided posted(std::uint64_t points) {
  return {PurchaseStatus::available, points, TransferResult::ok};
}

}  // namespace

TEST_CASE("rebate rules: checks in order, and their encoding round-trips", "[rebates]") {
  CHECK(validate_rules(rules_of()) == RulesResult::ok);
  EarningRules r = rules_of();
  r.currency = "EURO";
  CHECK(validate_rules(r) == RulesResult::currency_invalid);
  r = rules_of();
  r.categories.push_back({"x y", 1});
  CHECK(validate_rules(r) == RulesResult::categories_invalid);
  r = rules_of();
  r.categories.resize(rebate_categories_max + 1, {"z", 1});
  CHECK(validate_rules(r) == RulesResult::categories_invalid);
  r = rules_of();
  r.return_window_s = rebate_return_window_s_max;
  CHECK(validate_rules(r) == RulesResult::ok);
  r.campaigns = {{5, 6, 1'000'001, {}}};
  CHECK(validate_rules(r) == RulesResult::campaigns_invalid);
  r.campaigns = {{5, 6, 1'000'000, {"food"}}};
  CHECK(validate_rules(r) == RulesResult::ok);
  AccountSpec issuer{10, 1, AccountKind::issuer, 0, 0, "mall"};
  CHECK(check_rules_account(r, &issuer) == RulesResult::ok);
  issuer.kind = AccountKind::system;
  CHECK(check_rules_account(r, &issuer) == RulesResult::issuer_account_invalid);
  CHECK(check_rules_account(r, nullptr) == RulesResult::issuer_account_not_found);

  r.timestamp = 77;
  EarningRules back;
  REQUIRE(decode_rules(encode_rules(r), &back) == DecodeError::none);
  CHECK(back.same_definition(r));
  CHECK(back.timestamp == 77);
  std::string bytes = encode_rules(r);
  CHECK(decode_rules(bytes + "x", &back) == DecodeError::trailing_bytes);
  CHECK(decode_rules(bytes.substr(0, 10), &back) == DecodeError::truncated);
  bytes[0] = 2;
  CHECK(decode_rules(bytes, &back) == DecodeError::unknown_version);
  // Stored rules that would not pass validation are refused (pair assertion).
  EarningRules bad = rules_of();
  bad.categories.clear();
  CHECK(decode_rules(encode_rules(bad), &back) == DecodeError::invalid_field);
}

TEST_CASE("what a purchase earns: rate, rounding down, minimum, order cap, campaigns",
          "[rebates]") {
  EarningRules r = rules_of();
  Earning e = earn(r, {1, 11, 12'345, "EUR", "books"}, 0);
  CHECK(e.result == PurchaseResult::ok);
  CHECK(e.points_earned == 123);  // 123.45 rounded down
  CHECK(e.points == 123);
  CHECK(earn(r, {1, 11, 499, "EUR", "books"}, 0).points == 0);  // below the minimum
  CHECK(earn(r, {1, 11, 500, "EUR", "food"}, 0).points == 12);  // 12.5
  CHECK(earn(r, {1, 11, 500, "USD", "food"}, 0).result == PurchaseResult::currency_mismatch);
  CHECK(earn(r, {1, 11, 500, "EUR", "toys"}, 0).result == PurchaseResult::category_not_found);
  r.cap_per_order = 50;
  CHECK(earn(r, {1, 11, 12'345, "EUR", "books"}, 0).points == 50);
  CHECK(earn(r, {1, 11, 12'345, "EUR", "books"}, 0).points_earned == 123);
  // Campaigns: [starts, ends), the largest multiplier, only their categories.
  r.cap_per_order = 0;
  r.campaigns = {
      {100, 200, 20'000, {"books"}}, {150, 300, 30'000, {"food"}}, {150, 160, 15'000, {}}};
  CHECK(earn(r, {1, 11, 10'000, "EUR", "books"}, 99).points == 100);
  CHECK(earn(r, {1, 11, 10'000, "EUR", "books"}, 100).points == 200);
  CHECK(earn(r, {1, 11, 10'000, "EUR", "books"}, 155).points == 200);  // x2 beats x1.5
  CHECK(earn(r, {1, 11, 10'000, "EUR", "food"}, 155).points == 750);   // x3
  CHECK(earn(r, {1, 11, 10'000, "EUR", "books"}, 200).points == 100);
  // The largest amounts saturate below amount_sum_max instead of wrapping.
  r.campaigns = {{0, UINT64_MAX, 1'000'000, {}}};
  r.categories = {{"books", 10'000}};
  const Earning big = earn(r, {1, 11, UINT64_MAX, "EUR", "books"}, 5);
  CHECK(big.points_earned == UINT64_MAX);
  CHECK(big.points == amount_sum_max);
  // The daily cap: what is left of it.
  CHECK(apply_daily_cap(100, 0, 1'000'000) == 100);
  CHECK(apply_daily_cap(100, 500, 450) == 50);
  CHECK(apply_daily_cap(100, 500, 500) == 0);
  CHECK(apply_daily_cap(100, 500, 900) == 0);
}

TEST_CASE("purchase steps: golden bytes, and malformed encodings refused", "[rebates]") {
  const PurchaseStarted s = started_of(7);
  // version 1, id 7, member 11, amount 10000, "EUR", "books", ledger 1, issuer 10, rate 100,
  // multiplier 10000, earned 100, points 100, window end 5000, day 20000.
  CHECK(hex(encode_step(s)) == "01070b904e0345555205626f6f6b73010a64904e64648827a09c01");
  PurchaseStarted back;
  REQUIRE(decode_step(encode_step(s), &back) == DecodeError::none);
  CHECK(back.request == s.request);
  CHECK(back.window_ends_at == 5000);
  PurchaseStarted more = s;
  more.points = 101;  // more than it earned
  CHECK(decode_step(encode_step(more), &back) == DecodeError::invalid_field);
  more = s;
  more.request.category = "";
  CHECK(decode_step(encode_step(more), &back) == DecodeError::invalid_field);
  CHECK(hex(encode_step(PurchaseRefunded{3, 2500, 25, 0})) == "0103c4131900");
  PurchaseRefunded r;
  CHECK(decode_step(encode_step(PurchaseRefunded{3, 2500, 25, 5}), &r) ==
        DecodeError::invalid_field);  // reduced and clawed back at once
  CHECK(decode_step(encode_step(PurchaseRefunded{0, 2500, 0, 0}), &r) ==
        DecodeError::invalid_field);
  CHECK(hex(encode_step(posted(75))) == "01014b00");
  PurchaseDecided d;
  CHECK(decode_step(encode_step(PurchaseDecided{PurchaseStatus::pending, 0, TransferResult::ok}),
                    &d) == DecodeError::invalid_field);
  CHECK(decode_step(encode_step(PurchaseDecided{PurchaseStatus::failed, 0, TransferResult::ok}),
                    &d) == DecodeError::invalid_field);  // a failure says why
  CHECK(decode_step(encode_step(PurchaseDecided{PurchaseStatus::refunded, 5, TransferResult::ok}),
                    &d) == DecodeError::invalid_field);  // only `available` posts
  CHECK(hex(encode_step(PurchaseClawedBack{3, 40, 60})) == "0103283c");
}

TEST_CASE("a purchase is the fold of its steps: refunds in the window, then clawbacks",
          "[rebates]") {
  History h(7);
  h.started(started_of(7)).credited();
  PurchaseState st = h.state();
  CHECK(st.points_due == 100);
  CHECK_FALSE(purchase_finished(h.record()));
  CHECK_FALSE(purchase_due(st, 4'999));
  CHECK(purchase_due(st, 5'000));
  // 30% refunded in the window: 70 due.
  RefundDecision rd = decide_refund(st, {7, 1, 3'000});
  REQUIRE(rd.result == PurchaseResult::ok);
  CHECK(rd.step.points_reduced == 30);
  CHECK_FALSE(rd.void_now);
  h.refunded(rd.step);
  st = h.state();
  CHECK(st.points_due == 70);
  CHECK(decide_refund(st, {7, 1, 3'000}).result == PurchaseResult::exists);
  CHECK(decide_refund(st, {7, 1, 2'000}).result == PurchaseResult::exists_with_different_fields);
  CHECK(decide_refund(st, {7, 2, 7'001}).result == PurchaseResult::refund_exceeds_purchase);
  // 1/3 of the rest: floor(100 * 4667 / 10000) = 46 due, 24 reduced.
  rd = decide_refund(st, {7, 2, 2'333});
  CHECK(rd.step.points_reduced == 24);
  const PurchaseDecided end = decide_window_end(st);
  CHECK(end.status == PurchaseStatus::available);
  CHECK(end.points_posted == 70);
  h.decided(end).completed();
  st = h.state();
  CHECK(purchase_finished(h.record()));
  // After the window: a refund claws back what it no longer earns, reopening the purchase.
  rd = decide_refund(st, {7, 2, 7'000});
  REQUIRE(rd.result == PurchaseResult::ok);
  CHECK(rd.step.points_reduced == 0);
  CHECK(rd.step.clawback_points == 70);
  h.refunded(rd.step);
  st = h.state();
  CHECK_FALSE(purchase_finished(h.record()));
  CHECK(st.clawbacks_open == 1);
  REQUIRE(st.refunds.size() == 2);
  // Its transfer id is the refund step's position (6) in the clawback space.
  CHECK(st.refunds[1].clawback_transfer_id == (workflow_transfer_id_min | clawback_id_bit | 6));
  const Transfer claw = purchase_clawback(st.started, 70, 6);
  CHECK(claw.id == st.refunds[1].clawback_transfer_id);
  CHECK(claw.debit_account == 11);
  CHECK(claw.credit_account == 10);
  CHECK(claw.flags == transfer_flags::balancing_debit);
  CHECK(claw.code == rebate_transfer_code);
  h.clawed({2, 30, 40});
  st = h.state();
  CHECK(purchase_finished(h.record()));
  const PurchaseInfo info = purchase_info(st);
  CHECK(info.clawed_back == 30);
  CHECK(info.shortfall == 40);
  CHECK(info.settled);
  CHECK(info.refunded_amount == 10'000);
  CHECK(decide_refund(st, {7, 3, 1}).result == PurchaseResult::refund_exceeds_purchase);
  // The record survives its read-model encoding.
  ProcessRecord back;
  REQUIRE(decode_process_record(encode_process_record(h.record()), &back) == DecodeError::none);
  CHECK(process_finished(back));
}

TEST_CASE("a purchase's fold refuses histories the engine never writes", "[rebates]") {
  const PurchaseStarted s = started_of(7);
  // Posting without a credit; crediting twice; a clawback before completion; clawing back
  // other than asked; two decisions; a refund reducing after the decision.
  CHECK(History(7).started(s).decided(posted(100)).fold() == DecodeError::invalid_field);
  CHECK(History(7).started(s).credited().credited().fold() == DecodeError::invalid_field);
  CHECK(History(7).started(s).credited().decided(posted(100)).clawed({1, 1, 0}).fold() ==
        DecodeError::invalid_field);
  CHECK(History(7)
            .started(s)
            .credited()
            .decided(posted(100))
            .completed()
            .refunded({1, 10'000, 0, 100})
            .clawed({1, 50, 40})
            .fold() == DecodeError::invalid_field);
  CHECK(History(7).started(s).credited().decided(posted(100)).decided(posted(100)).fold() ==
        DecodeError::invalid_field);
  CHECK(History(7).started(s).credited().decided(posted(100)).refunded({1, 10, 1, 0}).fold() ==
        DecodeError::invalid_field);
  CHECK(History(7).started(s).credited().decided(posted(99)).fold() ==
        DecodeError::invalid_field);  // posts what is due, no more no less
  CHECK(History(7).credited().fold() == DecodeError::invalid_field);  // no start
  CHECK(History(8).started(s).fold() == DecodeError::invalid_field);  // another id
  // Nothing earned: no credit, decided at once.
  const PurchaseStarted zero = started_of(7, 0);
  CHECK(History(7).started(zero).credited().fold() == DecodeError::invalid_field);
  CHECK(History(7)
            .started(zero)
            .decided({PurchaseStatus::nothing_earned, 0, TransferResult::ok})
            .completed()
            .fold() == DecodeError::none);
}

TEST_CASE("the daily cap counter: counted at start, given back by reductions and failures",
          "[rebates]") {
  const PurchaseStarted s = started_of(7);
  History h(7);
  const CounterKey key = rebate_member_counter(20'000, 11);
  std::vector<CounterDelta> d =
      purchase_counter_deltas(h.record(), {ProcessKind::rebate, 7, 0, encode_step(s), 0});
  REQUIRE(d.size() == 1);
  CHECK(d[0].key == key);
  CHECK(d[0].amount == 100);
  CHECK_FALSE(d[0].release);
  h.started(s).credited();
  d = purchase_counter_deltas(
      h.record(), {ProcessKind::rebate, 7, 2, encode_step(PurchaseRefunded{1, 3'000, 30, 0}), 0});
  REQUIRE(d.size() == 1);
  CHECK(d[0].amount == 30);
  CHECK(d[0].release);
  // A refused credit gives back what is still counted.
  History f(8);
  f.started(started_of(8));
  d = purchase_counter_deltas(
      f.record(),
      {ProcessKind::rebate, 8, 3,
       encode_step(PurchaseDecided{PurchaseStatus::failed, 0, TransferResult::account_closed}), 0});
  REQUIRE(d.size() == 1);
  CHECK(d[0].amount == 100);
  CHECK(d[0].release);
  // Clawbacks and posts do not change it.
  CHECK(
      purchase_counter_deltas(h.record(), {ProcessKind::rebate, 7, 3, encode_step(posted(100)), 0})
          .empty());
}

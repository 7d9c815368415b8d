// The alliance exchange's pure rules (src/domain/exchange.*, process.*): amounts and rounding,
// caps and day boundaries, the legs, decisions after the legs and after a crash, step
// encodings (with golden bytes), the fold of a process and its counters.

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "domain/decide.hpp"
#include "domain/exchange.hpp"
#include "domain/process.hpp"
#include "hex.hpp"
#include "pointex/types.hpp"

using namespace pointex;
using namespace pointex::domain;
using pointex::test::hex;

namespace {

Rate rate(std::uint64_t numerator, std::uint64_t denominator, std::uint32_t fee_bps = 0) {
  Rate r;
  r.from_ledger = 1;
  r.to_ledger = 2;
  r.numerator = numerator;
  r.denominator = denominator;
  r.fee_bps = fee_bps;
  r.from_exchange_account = 10;
  r.to_exchange_account = 20;
  return r;
}

ExchangeStarted started_of(ExchangeId id, std::uint64_t amount, std::uint32_t day = 19000) {
  ExchangeStarted s;
  s.request = {id, 100, 200, amount};
  s.from_ledger = 1;
  s.to_ledger = 2;
  s.from_exchange_account = 10;
  s.to_exchange_account = 20;
  s.gross = amount * 2;
  s.fee = 1;
  s.credited = s.gross - 1;
  s.day = day;
  return s;
}

ProcessStepped step(ExchangeId id, std::uint8_t n, std::string data, std::uint64_t ts = 5) {
  return {ProcessKind::exchange, id, n, std::move(data), ts};
}

}  // namespace

TEST_CASE("quote: gross rounds down, the fee rounds up, credited is the rest", "[exchange]") {
  ExchangeQuote q = quote_exchange(rate(3, 2), 5);  // 7.5 -> 7
  CHECK(q.result == ExchangeResult::ok);
  CHECK(q.gross == 7);
  CHECK(q.fee == 0);
  CHECK(q.credited == 7);
  q = quote_exchange(rate(1, 1, 150), 1000);  // fee 1.5% of 1000 = 15 exactly
  CHECK(q.gross == 1000);
  CHECK(q.fee == 15);
  CHECK(q.credited == 985);
  q = quote_exchange(rate(1, 1, 150), 101);  // 1.515 -> 2
  CHECK(q.fee == 2);
  CHECK(q.credited == 99);
  q = quote_exchange(rate(1, 1, 1), 1);  // any fee on 1 point takes it all
  CHECK(q.fee == 1);
  CHECK(q.result == ExchangeResult::amount_too_small);
  q = quote_exchange(rate(1, 3), 2);  // 0.66 -> 0
  CHECK(q.gross == 0);
  CHECK(q.result == ExchangeResult::amount_too_small);
  q = quote_exchange(rate(1, 1, fee_bps_max), 500);  // a 100% fee
  CHECK(q.fee == 500);
  CHECK(q.result == ExchangeResult::amount_too_small);
}

TEST_CASE("quote: 128-bit arithmetic, overflow only when gross passes 2^64 - 1", "[exchange]") {
  // amount * numerator passes 2^64 but the quotient fits.
  ExchangeQuote q = quote_exchange(rate(UINT64_MAX, UINT64_MAX), UINT64_MAX);
  CHECK(q.result == ExchangeResult::ok);
  CHECK(q.gross == UINT64_MAX);
  q = quote_exchange(rate(UINT64_MAX, UINT64_MAX, fee_bps_max - 1), UINT64_MAX);
  CHECK(q.result == ExchangeResult::ok);
  CHECK(q.fee == UINT64_MAX - UINT64_MAX / fee_bps_max);  // ceil(x * 9999 / 10000)
  CHECK(q.credited == UINT64_MAX - q.fee);
  CHECK(quote_exchange(rate(2, 1), UINT64_MAX).result == ExchangeResult::overflow);
  CHECK(quote_exchange(rate(3, 2), UINT64_MAX / 3 * 2).result == ExchangeResult::ok);
  CHECK(quote_exchange(rate(3, 2), UINT64_MAX / 3 * 2 + 1).result == ExchangeResult::overflow);
}

TEST_CASE("rates: field checks, then the exchange accounts' ledgers", "[exchange]") {
  CHECK(validate_rate(rate(1, 1)) == RateResult::ok);
  Rate r = rate(1, 1);
  r.to_ledger = 1;
  CHECK(validate_rate(r) == RateResult::ledgers_must_be_different);
  CHECK(validate_rate(rate(0, 1)) == RateResult::numerator_must_not_be_zero);
  CHECK(validate_rate(rate(1, 0)) == RateResult::denominator_must_not_be_zero);
  CHECK(validate_rate(rate(1, 1, fee_bps_max)) == RateResult::ok);
  CHECK(validate_rate(rate(1, 1, fee_bps_max + 1)) == RateResult::fee_bps_too_high);
  const AccountSpec a{10, 1, AccountKind::issuer, 0, 0, "a"};
  const AccountSpec b{20, 2, AccountKind::issuer, 0, 0, "b"};
  r = rate(1, 1);
  CHECK(check_rate_accounts(r, &a, &b) == RateResult::ok);
  CHECK(check_rate_accounts(r, nullptr, &b) == RateResult::from_exchange_account_not_found);
  CHECK(check_rate_accounts(r, &a, nullptr) == RateResult::to_exchange_account_not_found);
  CHECK(check_rate_accounts(r, &b, &b) == RateResult::from_exchange_account_ledger_mismatch);
  CHECK(check_rate_accounts(r, &a, &a) == RateResult::to_exchange_account_ledger_mismatch);
}

TEST_CASE("exchanges: field checks", "[exchange]") {
  CHECK(validate_exchange({1, 100, 200, 5}) == ExchangeResult::ok);
  CHECK(validate_exchange({0, 100, 200, 5}) == ExchangeResult::id_must_not_be_zero);
  CHECK(validate_exchange({workflow_transfer_id_min, 100, 200, 5}) == ExchangeResult::id_reserved);
  CHECK(validate_exchange({process_id_max + 1, 100, 200, 5}) == ExchangeResult::id_reserved);
  CHECK(validate_exchange({process_id_max, 100, 200, 5}) == ExchangeResult::ok);
  CHECK(validate_exchange({1, 100, 200, 0}) == ExchangeResult::amount_must_not_be_zero);
  CHECK(validate_exchange({1, 0, 200, 5}) == ExchangeResult::from_account_not_found);
  CHECK(validate_exchange({1, 100, 0, 5}) == ExchangeResult::to_account_not_found);
  CHECK(validate_exchange({1, 100, 100, 5}) == ExchangeResult::accounts_must_be_different);
}

TEST_CASE("caps: per member and per pair, per UTC day, inclusive", "[exchange]") {
  Rate r = rate(1, 1);
  r.member_daily_cap = 100;
  r.pair_daily_cap = 150;
  CounterTable counted;
  const std::uint32_t day = 19000;
  CHECK(check_caps(r, counted, 100, day, 100) == ExchangeResult::ok);
  CHECK(check_caps(r, counted, 100, day, 101) == ExchangeResult::member_daily_cap_exceeded);
  apply_counter_deltas(
      counted, {{member_counter(day, 100), 60, false}, {pair_counter(day, 1, 2), 60, false}});
  CHECK(check_caps(r, counted, 100, day, 40) == ExchangeResult::ok);
  CHECK(check_caps(r, counted, 100, day, 41) == ExchangeResult::member_daily_cap_exceeded);
  CHECK(check_caps(r, counted, 101, day, 90) == ExchangeResult::ok);
  CHECK(check_caps(r, counted, 101, day, 91) == ExchangeResult::pair_daily_cap_exceeded);
  // The next day starts from zero; other pairs are not counted.
  CHECK(check_caps(r, counted, 100, day + 1, 100) == ExchangeResult::ok);
  Rate other = r;
  other.to_ledger = 3;
  CHECK(check_caps(other, counted, 101, day, 100) == ExchangeResult::ok);
  // No cap: anything, even past 2^64 together.
  apply_counter_deltas(counted, {{member_counter(day, 7), UINT64_MAX, false}});
  Rate none = rate(1, 1);
  CHECK(check_caps(none, counted, 7, day, UINT64_MAX) == ExchangeResult::ok);
  r.pair_daily_cap = 0;
  CHECK(check_caps(r, counted, 7, day, 1) == ExchangeResult::member_daily_cap_exceeded);
  // Released amounts count no more.
  apply_counter_deltas(counted, {{member_counter(day, 100), 60, true}});
  CHECK(counter_value(counted, member_counter(day, 100)) == 0);
}

TEST_CASE("utc_day: the day changes at midnight UTC", "[exchange]") {
  CHECK(utc_day(0) == 0);
  CHECK(utc_day(ns_per_day - 1) == 0);
  CHECK(utc_day(ns_per_day) == 1);
  CHECK(utc_day(19000 * ns_per_day + 5) == 19000);
}

TEST_CASE("legs: two pending transfers with the exchange's id and code, no timeout", "[exchange]") {
  const ExchangeStarted s = started_of(42, 30);
  const auto legs = exchange_legs(s);
  CHECK(legs[0].id == 42);
  CHECK(legs[0].debit_account == 100);
  CHECK(legs[0].credit_account == 10);
  CHECK(legs[0].amount == 30);
  CHECK(legs[0].ledger == 1);
  CHECK(legs[1].id == 42);
  CHECK(legs[1].debit_account == 20);
  CHECK(legs[1].credit_account == 200);
  CHECK(legs[1].amount == s.credited);
  CHECK(legs[1].ledger == 2);
  for (const Transfer& t : legs) {
    CHECK(t.code == exchange_transfer_code);
    CHECK(t.flags == transfer_flags::pending);
    CHECK(t.timeout_s == 0);
    CHECK(validate_transfer(t) == TransferResult::ok);
    CHECK(check_client_transfer(t) == TransferResult::code_reserved);
  }
  for (std::size_t i = 0; i < 2; ++i) {
    const Transfer post = leg_resolution(s, i, true);
    CHECK(post.id == (workflow_transfer_id_min | 42));
    CHECK(post.pending_id == 42);
    CHECK(post.debit_account == legs[i].debit_account);
    CHECK(post.flags == transfer_flags::post_pending);
    CHECK(validate_transfer(post) == TransferResult::ok);
    CHECK(check_client_transfer(post) == TransferResult::id_reserved);
    CHECK(leg_resolution(s, i, false).flags == transfer_flags::void_pending);
  }
}

TEST_CASE("a client may not post or void a leg: code_reserved", "[exchange]") {
  AccountState member;
  member.account.spec = {100, 1, AccountKind::member, 0, 0, "m"};
  member.account.credits_posted = 50;
  const Transfer leg = exchange_legs(started_of(42, 30))[0];
  DebitDecision d = decide_debit(member, leg, false, 1, /*workflow=*/true);
  REQUIRE(d.kind == DebitDecision::Kind::accept);
  apply_debit(member, d.event);
  confirm_debit(member, d.event, 1, 1);
  Transfer client_void;
  client_void.id = 7;
  client_void.debit_account = 100;
  client_void.pending_id = 42;
  client_void.flags = transfer_flags::void_pending;
  d = decide_debit(member, client_void, false, 2);
  CHECK(d.kind == DebitDecision::Kind::reject);
  CHECK(d.result == TransferResult::code_reserved);
  client_void.flags = transfer_flags::post_pending;
  CHECK(decide_debit(member, client_void, false, 2).result == TransferResult::code_reserved);
  // The workflow's own void goes through.
  const Transfer own = leg_resolution(started_of(42, 30), 0, false);
  CHECK(decide_debit(member, own, false, 2, true).kind == DebitDecision::Kind::accept);
}

TEST_CASE("after the legs: commit when both are ok, else void the one that succeeded",
          "[exchange]") {
  ExchangeDecided d = decide_after_legs(TransferResult::ok, TransferResult::ok);
  CHECK(d.commit);
  CHECK(d.result == ExchangeResult::ok);
  CHECK(d.legs == (leg1_bit | leg2_bit));
  d = decide_after_legs(TransferResult::exceeds_credits, TransferResult::ok);
  CHECK_FALSE(d.commit);
  CHECK(d.result == ExchangeResult::leg_failed);
  CHECK(d.leg == 1);
  CHECK(d.leg_result == TransferResult::exceeds_credits);
  CHECK(d.legs == leg2_bit);
  d = decide_after_legs(TransferResult::ok, TransferResult::account_closed);
  CHECK(d.leg == 2);
  CHECK(d.leg_result == TransferResult::account_closed);
  CHECK(d.legs == leg1_bit);
  d = decide_after_legs(TransferResult::exceeds_credits,
                        TransferResult::exists_with_different_fields);
  CHECK(d.leg == 1);
  CHECK(d.legs == 0);
}

TEST_CASE("after a crash: commit only when both own legs are pending", "[exchange]") {
  const ExchangeStarted s = started_of(42, 30);
  const auto legs = exchange_legs(s);
  const auto info = [](const Transfer& t) {
    TransferInfo i;
    i.request = t;
    i.state = TransferState::pending;
    return std::optional<TransferInfo>(i);
  };
  ExchangeDecided d = decide_after_crash(s, info(legs[0]), info(legs[1]));
  CHECK(d.commit);
  CHECK(d.legs == (leg1_bit | leg2_bit));
  d = decide_after_crash(s, info(legs[0]), std::nullopt);
  CHECK_FALSE(d.commit);
  CHECK(d.result == ExchangeResult::interrupted);
  CHECK(d.legs == leg1_bit);
  d = decide_after_crash(s, std::nullopt, std::nullopt);
  CHECK(d.result == ExchangeResult::interrupted);
  CHECK(d.legs == 0);
  Transfer client = legs[1];
  client.code = 1;
  d = decide_after_crash(s, info(legs[0]), info(client));
  CHECK_FALSE(d.commit);
  CHECK(d.result == ExchangeResult::leg_failed);
  CHECK(d.leg == 2);
  CHECK(d.leg_result == TransferResult::exists_with_different_fields);
  CHECK(d.legs == leg1_bit);  // the client's transfer is never touched
}

TEST_CASE("resolutions count as done when ok, exists, or already in the wanted state",
          "[exchange]") {
  CHECK(resolution_done(true, TransferResult::ok));
  CHECK(resolution_done(true, TransferResult::exists));
  CHECK(resolution_done(true, TransferResult::pending_transfer_already_posted));
  CHECK_FALSE(resolution_done(true, TransferResult::pending_transfer_already_voided));
  CHECK(resolution_done(false, TransferResult::pending_transfer_already_voided));
  CHECK_FALSE(resolution_done(false, TransferResult::pending_transfer_already_posted));
  CHECK_FALSE(resolution_done(false, TransferResult::pending_transfer_not_found));
}

TEST_CASE("steps: round trips, golden bytes, strict decoding", "[exchange][golden]") {
  const ExchangeStarted s = started_of(42, 30);
  // Golden: these bytes are in logs; never change them (add a new version instead).
  CHECK(hex(encode_step(s)) == "012a64c8011e01020a143c013bb89401");
  ExchangeDecided d;
  d.result = ExchangeResult::leg_failed;
  d.leg = 2;
  d.leg_result = TransferResult::account_closed;
  d.legs = leg1_bit;
  CHECK(hex(encode_step(d)) == "01000e020b01");
  CHECK(hex(encode_step(ExchangeCompleted{ExchangeResult::interrupted})) == "010f");
  ExchangeStarted s2;
  REQUIRE(decode_step(encode_step(s), &s2) == DecodeError::none);
  CHECK(s2.request == s.request);
  CHECK(s2.credited == s.credited);
  CHECK(s2.day == s.day);
  ExchangeDecided d2;
  REQUIRE(decode_step(encode_step(d), &d2) == DecodeError::none);
  CHECK(d2.leg_result == TransferResult::account_closed);
  CHECK(d2.legs == leg1_bit);
  // A newer layout, truncation, trailing bytes, out-of-range values.
  std::string bytes = encode_step(d);
  bytes[0] = 2;
  CHECK(decode_step(bytes, &d2) == DecodeError::unknown_version);
  CHECK(decode_step(encode_step(d).substr(0, 3), &d2) == DecodeError::truncated);
  CHECK(decode_step(encode_step(d) + "x", &d2) == DecodeError::trailing_bytes);
  ExchangeCompleted c;
  CHECK(decode_step(std::string("\x01\x10", 2), &c) == DecodeError::invalid_field);
  ExchangeStarted bad = s;
  bad.credited = s.credited + 1;  // credited must be gross - fee
  CHECK(decode_step(encode_step(bad), &s2) == DecodeError::invalid_field);
}

TEST_CASE("a process is the fold of its steps, and its counters follow them", "[exchange]") {
  const ExchangeStarted s = started_of(42, 30);
  ProcessRecord record{ProcessKind::exchange, 42, {}};
  CounterTable counters;
  const auto add = [&](std::uint8_t n, std::string data, std::uint64_t position) {
    const ProcessStepped e = step(42, n, std::move(data), position * 10);
    apply_counter_deltas(counters, step_counter_deltas(record, e));
    append_step(record, e, position);
  };
  add(step_started, encode_step(s), 7);
  CHECK_FALSE(process_finished(record));
  CHECK(counter_value(counters, member_counter(s.day, 100)) == 30);
  CHECK(counter_value(counters, pair_counter(s.day, 1, 2)) == 30);
  ExchangeState st;
  REQUIRE(fold_exchange(record, &st) == DecodeError::none);
  CHECK(st.step == ExchangeStep::started);
  CHECK(exchange_outcome(st, true).debited == 30);
  add(step_decided,
      encode_step(decide_after_legs(TransferResult::exceeds_credits, TransferResult::ok)), 9);
  add(step_completed, encode_step(ExchangeCompleted{ExchangeResult::leg_failed}), 12);
  CHECK(process_finished(record));
  REQUIRE(fold_exchange(record, &st) == DecodeError::none);
  CHECK(st.step == ExchangeStep::completed);
  CHECK(st.last_position == 12);
  CHECK(st.started_at == 70);
  // An aborted exchange gives its caps back.
  CHECK(counter_value(counters, member_counter(s.day, 100)) == 0);
  const ExchangeOutcome o = exchange_outcome(st, false);
  CHECK(o.result == ExchangeResult::leg_failed);
  CHECK(o.leg_result == TransferResult::exceeds_credits);
  // The record survives its encoding.
  ProcessRecord back;
  REQUIRE(decode_process_record(encode_process_record(record), &back) == DecodeError::none);
  CHECK(encode_process_record(back) == encode_process_record(record));
  // Steps out of order do not fold.
  ProcessRecord wrong{ProcessKind::exchange, 42, {record.steps[0], record.steps[2]}};
  CHECK(fold_exchange(wrong, &st) != DecodeError::none);
}

TEST_CASE("a committed exchange keeps its caps, and a retry answers exists", "[exchange]") {
  const ExchangeStarted s = started_of(43, 30);
  ProcessRecord record{ProcessKind::exchange, 43, {}};
  CounterTable counters;
  for (const auto& [n, data] :
       {std::pair<std::uint8_t, std::string>{step_started, encode_step(s)},
        {step_decided, encode_step(decide_after_legs(TransferResult::ok, TransferResult::ok))},
        {step_completed, encode_step(ExchangeCompleted{ExchangeResult::ok})}}) {
    const ProcessStepped e = step(43, n, data);
    apply_counter_deltas(counters, step_counter_deltas(record, e));
    append_step(record, e, record.steps.size() + 1);
  }
  CHECK(counter_value(counters, member_counter(s.day, 100)) == 30);
  ExchangeState st;
  REQUIRE(fold_exchange(record, &st) == DecodeError::none);
  CHECK(exchange_outcome(st, true).result == ExchangeResult::ok);
  CHECK(exchange_outcome(st, false).result == ExchangeResult::exists);
  CHECK(exchange_outcome(st, false).credited == s.credited);
}

TEST_CASE("the counter window keeps today and yesterday, and drops deltas of older days",
          "[exchange]") {
  constexpr std::uint64_t day_ns = 86'400'000'000'000ULL;
  CounterWindow w;
  CHECK(w.advance(10 * day_ns + 5));  // day 10: days 9 and 10 kept
  CHECK(w.first_day == 9);
  CHECK_FALSE(w.advance(10 * day_ns + 99));  // same day: nothing moves
  CHECK_FALSE(w.advance(9 * day_ns));        // never backwards
  CHECK(w.first_day == 9);
  const CounterKey old_key{8, counter_scope_exchange_member, 1, 0};
  const CounterKey yesterday{9, counter_scope_exchange_member, 1, 0};
  const CounterKey today{10, counter_scope_exchange_pair, 1, 2};
  const auto kept = w.kept({{old_key, 5, true}, {yesterday, 6, true}, {today, 7, false}});
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].key == yesterday);
  CHECK(kept[1].key == today);
  CounterTable table{{old_key, 1}, {yesterday, 2}, {today, 3}};
  w.prune(table);
  CHECK(table == CounterTable{{yesterday, 2}, {today, 3}});
  CHECK(w.advance(12 * day_ns));
  w.prune(table);
  CHECK(table.empty());
}

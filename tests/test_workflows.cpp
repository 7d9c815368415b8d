// The alliance exchange through the engine (docs/workflows.md): rates, the happy path with
// per-ledger conservation, a failing leg voiding the other, retries, caps across a restart,
// reserved codes and ids, many exchanges at once, and a SIGKILL after every step.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <future>
#include <map>
#include <pointex/engine.hpp>
#include <string>
#include <thread>
#include <vector>

#include "domain/exchange.hpp"
#include "engine_test_access.hpp"
#include "store/read_model.hpp"
#include "support.hpp"

using namespace pointex;
using pointex::test::Awaited;
using pointex::test::ManualClock;
using pointex::test::TempDir;

namespace {

constexpr LedgerId mall = 1;
constexpr LedgerId air = 2;
constexpr AccountId mall_issuer = 1000;
constexpr AccountId mall_exchange = 1010;
constexpr AccountId air_issuer = 3000;
constexpr AccountId air_exchange = 3010;
/// A funded exchange account of AIR that may not go below zero (leg 2 can fail).
constexpr AccountId air_exchange_limited = 3020;
constexpr AccountId alice_mall = 2001;
constexpr AccountId bob_mall = 2002;
constexpr AccountId alice_air = 4001;
constexpr AccountId bob_air = 4002;
constexpr std::uint64_t funded = 1000;

Rate mall_to_air(std::uint64_t numerator = 3, std::uint64_t denominator = 2,
                 std::uint32_t fee_bps = 100) {
  Rate r;
  r.from_ledger = mall;
  r.to_ledger = air;
  r.numerator = numerator;
  r.denominator = denominator;
  r.fee_bps = fee_bps;
  r.from_exchange_account = mall_exchange;
  r.to_exchange_account = air_exchange;
  return r;
}

void set_rate(Engine& e, const Rate& r) {
  RateResult result{};
  REQUIRE(e.set_rate(r, &result).is_ok());
  REQUIRE(result == RateResult::ok);
}

/// Two ledgers, their issuers and exchange accounts, two members on each; the MALL members hold
/// `funded` points each.
void setup(Engine& e) {
  LedgerResult lr{};
  REQUIRE(e.create_ledger({mall, "MALL", "Mall points", 0, 0}, &lr).is_ok());
  REQUIRE(e.create_ledger({air, "AIR", "Air miles", 0, 0}, &lr).is_ok());
  const std::uint32_t member = account_flags::debits_must_not_exceed_credits;
  std::vector<AccountSpec> specs = {
      {mall_issuer, mall, AccountKind::issuer, 0, 0, "mall"},
      {mall_exchange, mall, AccountKind::issuer, 0, 0, "mall exchange"},
      {air_issuer, air, AccountKind::issuer, 0, 0, "air"},
      {air_exchange, air, AccountKind::issuer, 0, 0, "air exchange"},
      {air_exchange_limited, air, AccountKind::issuer, member, 0, "air exchange (funded)"},
      {alice_mall, mall, AccountKind::member, member, 0, "alice"},
      {bob_mall, mall, AccountKind::member, member, 0, "bob"},
      {alice_air, air, AccountKind::member, member, 0, "alice"},
      {bob_air, air, AccountKind::member, member, 0, "bob"}};
  std::vector<AccountResult> ar;
  REQUIRE(e.create_accounts(specs, &ar).is_ok());
  for (AccountResult r : ar) REQUIRE(r == AccountResult::ok);
  std::vector<TransferOutcome> o;
  REQUIRE(e.submit_transfers({{1, mall_issuer, alice_mall, funded, mall, 1, 0, 0, 0, 0},
                              {2, mall_issuer, bob_mall, funded, mall, 1, 0, 0, 0, 0}},
                             &o)
              .is_ok());
  REQUIRE(o[0].result == TransferResult::ok);
  REQUIRE(o[1].result == TransferResult::ok);
  set_rate(e, mall_to_air());
}

ExchangeOutcome exchange(Engine& e, const Exchange& ex) {
  ExchangeOutcome o;
  const Status s = e.exchange(ex, &o);
  INFO(s.to_string());
  REQUIRE(s.is_ok());
  return o;
}

Account account(Engine& e, AccountId id) {
  std::vector<std::optional<Account>> a;
  REQUIRE(e.lookup_accounts({id}, &a).is_ok());
  REQUIRE(a[0]);
  return *a[0];
}

void require_verified(const std::string& dir, std::uint64_t exchanges) {
  const VerifyReport report = test::verified(dir);
  CHECK(report.exchanges == exchanges);
  CHECK(report.open_exchanges == 0);
  CHECK(report.open_pending_transfers == 0);
}

}  // namespace

TEST_CASE("rates: checked, replaced, kept across a restart", "[workflows]") {
  TempDir dir;
  {
    auto e = test::open_engine(dir.path());
    setup(*e);
    RateResult r{};
    Rate bad = mall_to_air();
    bad.to_ledger = 9;
    REQUIRE(e->set_rate(bad, &r).is_ok());
    CHECK(r == RateResult::to_ledger_not_found);
    bad = mall_to_air(0);
    REQUIRE(e->set_rate(bad, &r).is_ok());
    CHECK(r == RateResult::numerator_must_not_be_zero);
    bad = mall_to_air(1, 1, 10'001);
    REQUIRE(e->set_rate(bad, &r).is_ok());
    CHECK(r == RateResult::fee_bps_too_high);
    bad = mall_to_air();
    bad.from_exchange_account = air_exchange;
    REQUIRE(e->set_rate(bad, &r).is_ok());
    CHECK(r == RateResult::from_exchange_account_ledger_mismatch);
    bad = mall_to_air();
    bad.to_exchange_account = 99;
    REQUIRE(e->set_rate(bad, &r).is_ok());
    CHECK(r == RateResult::to_exchange_account_not_found);
    set_rate(*e, mall_to_air(2, 1, 0));
    set_rate(*e, mall_to_air(2, 1, 0));  // the same again: ok, nothing new
    REQUIRE(e->rate(mall, air));
    CHECK(e->rate(mall, air)->numerator == 2);
    CHECK_FALSE(e->rate(air, mall));
  }
  auto e = test::open_engine(dir.path());
  REQUIRE(e->rate(mall, air));
  CHECK(e->rate(mall, air)->same_definition(mall_to_air(2, 1, 0)));
  CHECK(e->rates().size() == 1);
}

TEST_CASE("exchange: both legs posted, amounts rounded, conservation per ledger", "[workflows]") {
  TempDir dir;
  {
    auto e = test::open_engine(dir.path());
    setup(*e);
    // 201 MALL at 3/2 = 301.5 -> 301 AIR gross; fee 1% = 3.01 -> 4; credited 297.
    ExchangeOutcome o = exchange(*e, {7, alice_mall, alice_air, 201});
    CHECK(o.result == ExchangeResult::ok);
    CHECK(o.debited == 201);
    CHECK(o.fee == 4);
    CHECK(o.credited == 297);
    CHECK(account(*e, alice_mall).balance() == funded - 201);
    CHECK(account(*e, alice_air).balance() == 297);
    CHECK(account(*e, mall_exchange).balance() == 201);
    CHECK(account(*e, air_exchange).balance() == -297);
    // The legs are the exchange's id on their debit accounts, posted.
    std::optional<TransferInfo> leg;
    REQUIRE(e->lookup_transfer(alice_mall, 7, &leg).is_ok());
    REQUIRE(leg);
    CHECK(leg->state == TransferState::posted);
    CHECK(leg->code == exchange_transfer_code);
    REQUIRE(e->lookup_transfer(air_exchange, 7, &leg).is_ok());
    REQUIRE(leg);
    CHECK(leg->state == TransferState::posted);
    CHECK(leg->amount == 297);
    // Retries answer the outcome; another body with the id is refused; nothing moves twice.
    o = exchange(*e, {7, alice_mall, alice_air, 201});
    CHECK(o.result == ExchangeResult::exists);
    CHECK(o.credited == 297);
    CHECK(exchange(*e, {7, alice_mall, alice_air, 200}).result ==
          ExchangeResult::exists_with_different_fields);
    CHECK(account(*e, alice_mall).balance() == funded - 201);
    std::optional<ExchangeInfo> info;
    REQUIRE(e->lookup_exchange(7, &info).is_ok());
    REQUIRE(info);
    CHECK(info->step == ExchangeStep::completed);
    CHECK(info->commit);
    CHECK(info->gross == 301);
    REQUIRE(e->lookup_exchange(8, &info).is_ok());
    CHECK_FALSE(info);
  }
  require_verified(dir.path(), 1);
  // After a restart the outcome is still recorded (from the read models).
  auto e = test::open_engine(dir.path());
  CHECK(exchange(*e, {7, alice_mall, alice_air, 201}).result == ExchangeResult::exists);
  std::optional<ExchangeInfo> info;
  REQUIRE(e->lookup_exchange(7, &info).is_ok());
  REQUIRE(info);
  CHECK(info->credited == 297);
}

TEST_CASE("exchange: a failing leg voids the other, and the failure is recorded", "[workflows]") {
  TempDir dir;
  {
    auto e = test::open_engine(dir.path());
    setup(*e);
    // Leg 1 fails: alice has too few MALL points; leg 2 (AIR paid to her) is voided.
    ExchangeOutcome o = exchange(*e, {10, alice_mall, alice_air, funded + 1});
    CHECK(o.result == ExchangeResult::leg_failed);
    CHECK(o.leg == 1);
    CHECK(o.leg_result == TransferResult::exceeds_credits);
    CHECK(account(*e, alice_mall).balance() == funded);
    CHECK(account(*e, alice_mall).debits_pending == 0);
    CHECK(account(*e, alice_air).balance() == 0);
    CHECK(account(*e, alice_air).credits_pending == 0);
    std::optional<TransferInfo> leg;
    REQUIRE(e->lookup_transfer(air_exchange, 10, &leg).is_ok());
    REQUIRE(leg);
    CHECK(leg->state == TransferState::voided);
    // The retry answers the recorded failure; the id stays taken.
    o = exchange(*e, {10, alice_mall, alice_air, funded + 1});
    CHECK(o.result == ExchangeResult::leg_failed);
    CHECK(o.leg_result == TransferResult::exceeds_credits);

    // Leg 2 fails: B's exchange account may not go below zero and holds nothing.
    Rate limited = mall_to_air(1, 1, 0);
    limited.to_exchange_account = air_exchange_limited;
    set_rate(*e, limited);
    o = exchange(*e, {11, alice_mall, alice_air, 50});
    CHECK(o.result == ExchangeResult::leg_failed);
    CHECK(o.leg == 2);
    CHECK(o.leg_result == TransferResult::exceeds_credits);
    CHECK(account(*e, alice_mall).balance() == funded);
    CHECK(account(*e, alice_mall).debits_pending == 0);
    REQUIRE(e->lookup_transfer(alice_mall, 11, &leg).is_ok());
    REQUIRE(leg);
    CHECK(leg->state == TransferState::voided);

    // A client's own transfer holding the id on from_account makes leg 1 fail.
    set_rate(*e, mall_to_air());
    std::vector<TransferOutcome> t;
    REQUIRE(e->submit_transfers({{12, alice_mall, bob_mall, 5, mall, 1, 0, 0, 0, 0}}, &t).is_ok());
    REQUIRE(t[0].result == TransferResult::ok);
    o = exchange(*e, {12, alice_mall, alice_air, 100});
    CHECK(o.result == ExchangeResult::leg_failed);
    CHECK(o.leg == 1);
    CHECK(o.leg_result == TransferResult::exists_with_different_fields);
    CHECK(account(*e, alice_air).balance() == 0);
  }
  require_verified(dir.path(), 3);
}

TEST_CASE("exchange: refusals before it starts are not stored", "[workflows]") {
  TempDir dir;
  auto e = test::open_engine(dir.path());
  setup(*e);
  CHECK(exchange(*e, {0, alice_mall, alice_air, 1}).result == ExchangeResult::id_must_not_be_zero);
  CHECK(exchange(*e, {workflow_transfer_id_min, alice_mall, alice_air, 1}).result ==
        ExchangeResult::id_reserved);
  CHECK(exchange(*e, {1, alice_mall, alice_air, 0}).result ==
        ExchangeResult::amount_must_not_be_zero);
  CHECK(exchange(*e, {1, 77, alice_air, 1}).result == ExchangeResult::from_account_not_found);
  CHECK(exchange(*e, {1, alice_mall, 77, 1}).result == ExchangeResult::to_account_not_found);
  CHECK(exchange(*e, {1, alice_air, alice_mall, 1}).result == ExchangeResult::rate_not_found);
  CHECK(exchange(*e, {1, alice_mall, bob_mall, 1}).result == ExchangeResult::rate_not_found);
  set_rate(*e, mall_to_air(1, 3, 0));
  CHECK(exchange(*e, {1, alice_mall, alice_air, 2}).result == ExchangeResult::amount_too_small);
  // Decided afresh: the same id now succeeds.
  CHECK(exchange(*e, {1, alice_mall, alice_air, 3}).result == ExchangeResult::ok);
  CHECK(account(*e, alice_air).balance() == 1);
}

TEST_CASE("clients may not use the exchange code or workflow ids, nor resolve a leg",
          "[workflows]") {
  TempDir dir;
  auto e = test::open_engine(dir.path());
  setup(*e);
  std::vector<TransferOutcome> o;
  Transfer t{50, alice_mall, bob_mall, 5, mall, exchange_transfer_code, 0, 0, 0, 0};
  REQUIRE(e->submit_transfers({t}, &o).is_ok());
  CHECK(o[0].result == TransferResult::code_reserved);
  t.code = 1;
  t.id = workflow_transfer_id_min | 50;
  REQUIRE(e->submit_transfers({t}, &o).is_ok());
  CHECK(o[0].result == TransferResult::id_reserved);
  REQUIRE(exchange(*e, {60, alice_mall, alice_air, 10}).result == ExchangeResult::ok);
  // Posted already, and reserved anyway: a client void of a leg is refused.
  Transfer v{61, alice_mall, 0, 0, 0, 0, transfer_flags::void_pending, 60, 0, 0};
  REQUIRE(e->submit_transfers({v}, &o).is_ok());
  CHECK(o[0].result == TransferResult::code_reserved);
}

TEST_CASE("caps: per member and per pair per day, released on failure, kept across a restart",
          "[workflows]") {
  TempDir dir;
  ManualClock clock;
  {
    auto e = test::open_engine(dir.path(), clock.fn());
    setup(*e);
    Rate r = mall_to_air(1, 1, 0);
    r.member_daily_cap = 300;
    r.pair_daily_cap = 500;
    set_rate(*e, r);
    CHECK(exchange(*e, {1, alice_mall, alice_air, 200}).result == ExchangeResult::ok);
    CHECK(exchange(*e, {2, alice_mall, alice_air, 101}).result ==
          ExchangeResult::member_daily_cap_exceeded);
    // A failed exchange gives its amount back: the air account may not pay this time.
    Rate limited = r;
    limited.to_exchange_account = air_exchange_limited;
    set_rate(*e, limited);
    CHECK(exchange(*e, {3, alice_mall, alice_air, 100}).result == ExchangeResult::leg_failed);
    set_rate(*e, r);
    CHECK(exchange(*e, {4, alice_mall, alice_air, 100}).result == ExchangeResult::ok);
    CHECK(exchange(*e, {5, bob_mall, bob_air, 201}).result ==
          ExchangeResult::pair_daily_cap_exceeded);
  }
  {
    auto e = test::open_engine(dir.path(), clock.fn());
    CHECK(exchange(*e, {6, alice_mall, alice_air, 1}).result ==
          ExchangeResult::member_daily_cap_exceeded);
    CHECK(exchange(*e, {7, bob_mall, bob_air, 201}).result ==
          ExchangeResult::pair_daily_cap_exceeded);
    CHECK(exchange(*e, {8, bob_mall, bob_air, 200}).result == ExchangeResult::ok);
    // The next UTC day starts again.
    clock.advance_s(86'400);
    CHECK(exchange(*e, {9, alice_mall, alice_air, 300}).result == ExchangeResult::ok);
  }
  // The read models alone (rebuilt from the log) give the same counters.
  REQUIRE(Engine::rebuild_read_models(dir.path()).is_ok());
  auto e = test::open_engine(dir.path(), clock.fn());
  CHECK(exchange(*e, {10, alice_mall, alice_air, 1}).result ==
        ExchangeResult::member_daily_cap_exceeded);
  e.reset();
  require_verified(dir.path(), 5);
}

TEST_CASE("cap counters of days before yesterday leave the read models", "[workflows]") {
  TempDir dir;
  ManualClock clock;
  const auto counted_days = [&] {
    std::unique_ptr<store::ReadModel> rm;
    REQUIRE(store::ReadModel::open_read_only(dir.path(), &rm).is_ok());
    std::map<std::uint32_t, int> rows;
    REQUIRE(rm->counters(0, [&](const domain::CounterKey& k, std::uint64_t) {
                ++rows[k.day];
              }).is_ok());
    return rows;
  };
  const std::uint32_t day0 = domain::utc_day(clock.now());
  {
    auto e = test::open_engine(dir.path(), clock.fn());
    setup(*e);
    Rate r = mall_to_air(1, 1, 0);
    r.member_daily_cap = 300;
    set_rate(*e, r);
    CHECK(exchange(*e, {1, alice_mall, alice_air, 100}).result == ExchangeResult::ok);
    clock.advance_s(86'400);
    CHECK(exchange(*e, {2, alice_mall, alice_air, 100}).result == ExchangeResult::ok);
  }
  // Today and yesterday are kept: one member row and one pair row per day.
  CHECK(counted_days() == std::map<std::uint32_t, int>{{day0, 2}, {day0 + 1, 2}});
  {
    auto e = test::open_engine(dir.path(), clock.fn());
    clock.advance_s(2 * 86'400);
    CHECK(exchange(*e, {3, alice_mall, alice_air, 300}).result == ExchangeResult::ok);
    CHECK(exchange(*e, {4, alice_mall, alice_air, 1}).result ==
          ExchangeResult::member_daily_cap_exceeded);
  }
  CHECK(counted_days() == std::map<std::uint32_t, int>{{day0 + 3, 2}});
  require_verified(dir.path(), 3);  // the refused one never started
  // A rebuild from the log keeps the same rows.
  REQUIRE(Engine::rebuild_read_models(dir.path()).is_ok());
  CHECK(counted_days() == std::map<std::uint32_t, int>{{day0 + 3, 2}});
}

TEST_CASE("many exchanges at once: every one both legs or neither, conservation holds",
          "[workflows]") {
  TempDir dir;
  {
    auto e = test::open_engine(dir.path());
    setup(*e);
    set_rate(*e, mall_to_air(1, 1, 0));
    constexpr int n = 200;
    std::vector<std::unique_ptr<Awaited<ExchangeOutcome>>> answers;
    for (int i = 0; i < n; ++i) {
      answers.push_back(std::make_unique<Awaited<ExchangeOutcome>>());
      const AccountId from = i % 2 == 0 ? alice_mall : bob_mall;
      const AccountId to = i % 2 == 0 ? alice_air : bob_air;
      // 200 x 9-15 points from 2 x 1000: some legs run out of points.
      e->exchange(
          {static_cast<ExchangeId>(100 + i), from, to, 9 + static_cast<std::uint64_t>(i % 7)},
          answers.back()->callback());
      // Retries while it is under way wait for its outcome.
      if (i % 10 == 0) {
        answers.push_back(std::make_unique<Awaited<ExchangeOutcome>>());
        e->exchange(
            {static_cast<ExchangeId>(100 + i), from, to, 9 + static_cast<std::uint64_t>(i % 7)},
            answers.back()->callback());
      }
    }
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    for (auto& a : answers) {
      const ExchangeOutcome o = a->value();
      if (o.result == ExchangeResult::ok) ++ok;
      if (o.result == ExchangeResult::leg_failed) {
        ++failed;
        CHECK(o.leg_result == TransferResult::exceeds_credits);
      }
    }
    CHECK(ok > 0);
    CHECK(failed > 0);
    CHECK(e->stats().open_processes == 0);
    const std::int64_t spent = 2 * static_cast<std::int64_t>(funded) -
                               account(*e, alice_mall).balance() - account(*e, bob_mall).balance();
    CHECK(spent == account(*e, alice_air).balance() + account(*e, bob_air).balance());
  }
  require_verified(dir.path(), 200);
}

namespace {

/// Runs one exchange in a child process that SIGKILLs itself after `step`; true when killed.
bool run_child(const std::string& dir, const Exchange& ex, const std::string& step) {
  return test::killed_child(POINTEX_EXCHANGE_CRASH_CHILD,
                            {dir, std::to_string(ex.id), std::to_string(ex.from_account),
                             std::to_string(ex.to_account), std::to_string(ex.amount)},
                            step);
}

}  // namespace

TEST_CASE("crash after every step of an exchange: it completes or compensates", "[workflows]") {
  struct Case {
    const char* step;
    bool funded;  // else leg 1 fails
    ExchangeResult want;
  };
  // After `started` nothing of the legs is durable: the restart aborts (interrupted). From
  // `legs` on, what the legs answered decides.
  const std::vector<Case> cases = {
      {"started", true, ExchangeResult::interrupted},
      {"legs", true, ExchangeResult::exists},
      {"decided", true, ExchangeResult::exists},
      {"resolved", true, ExchangeResult::exists},
      {"completed", true, ExchangeResult::exists},
      {"started", false, ExchangeResult::interrupted},
      {"legs", false, ExchangeResult::interrupted},
      {"decided", false, ExchangeResult::leg_failed},
      {"resolved", false, ExchangeResult::leg_failed},
      {"completed", false, ExchangeResult::leg_failed},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.step << (c.funded ? " funded" : " leg 1 fails")) {
      TempDir dir;
      {
        auto e = test::open_engine(dir.path());
        setup(*e);
      }
      const Exchange ex{77, alice_mall, alice_air, c.funded ? 100 : funded + 1};
      REQUIRE(run_child(dir.path(), ex, c.step));
      {
        auto e = test::open_engine(dir.path());
        // The retry waits for the resumed exchange and answers its outcome.
        const ExchangeOutcome o = exchange(*e, ex);
        CHECK(o.result == c.want);
        const bool moved = o.result == ExchangeResult::exists;
        CHECK(account(*e, alice_mall).balance() ==
              static_cast<std::int64_t>(funded) - (moved ? 100 : 0));
        CHECK(account(*e, alice_air).balance() == (moved ? 148 : 0));
        CHECK(account(*e, alice_mall).debits_pending == 0);
        CHECK(account(*e, alice_air).credits_pending == 0);
        CHECK(e->stats().open_processes == 0);
      }
      require_verified(dir.path(), 1);
    }
  }
}

TEST_CASE("set_rate answers once the rate is readable, however late set_rate publishes it",
          "[exchange][workflows]") {
  // The journal may make a rate durable (and answer) before set_rate, preempted after its
  // append, publishes it: the answer's callback then read no rate (a PUT answered 500 "rate
  // vanished" on a loaded machine). The answer now waits for set_rate to publish it too.
  TempDir dir;
  auto e = test::open_engine(dir.path());
  setup(*e);  // MALL -> AIR at 3/2
  EngineTestAccess::delay_publication(*e, std::chrono::milliseconds(200));
  auto seen_by_callback = [&](const Rate& r) {
    std::promise<std::optional<Rate>> seen;
    e->set_rate(r, [&](const Status& s, RateResult result) {
      CHECK(s.is_ok());
      CHECK(result == RateResult::ok);
      seen.set_value(e->rate(r.from_ledger, r.to_ledger));
    });
    return seen.get_future().get();
  };
  Rate back;  // a pair never set before
  back.from_ledger = air;
  back.to_ledger = mall;
  back.numerator = 2;
  back.denominator = 3;
  back.from_exchange_account = air_exchange;
  back.to_exchange_account = mall_exchange;
  const std::optional<Rate> first = seen_by_callback(back);
  REQUIRE(first);
  CHECK(first->numerator == 2);
  CHECK(first->timestamp > 0);
  // A changed definition: the callback sees the new one, and it stays after the late publish.
  const std::optional<Rate> changed = seen_by_callback(mall_to_air(5, 4));
  REQUIRE(changed);
  CHECK(changed->numerator == 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::optional<Rate> later = e->rate(mall, air);
  REQUIRE(later);
  CHECK(later->numerator == 5);
  CHECK(later->timestamp == changed->timestamp);
  EngineTestAccess::delay_publication(*e, std::chrono::microseconds(0));
}

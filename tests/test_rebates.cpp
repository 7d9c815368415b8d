// Shopping rebates through the engine (docs/workflows.md, "Rebates"): rules and their checks,
// a purchase credited pending and posted when its window ends (also across a restart),
// refunds inside the window (partial, then all), clawbacks after it (with a shortfall when the
// member spent the points), caps and campaigns, retries, refusals, and a SIGKILL after every
// step of a purchase.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <future>
#include <pointex/engine.hpp>
#include <string>
#include <thread>
#include <vector>

#include "engine_test_access.hpp"
#include "support.hpp"

using namespace pointex;
using pointex::test::ManualClock;
using pointex::test::TempDir;

namespace {

constexpr LedgerId mall = 1;
constexpr LedgerId air = 2;
constexpr AccountId issuer = 1000;
constexpr AccountId air_issuer = 1100;
constexpr AccountId shop = 1500;
constexpr AccountId alice = 2001;
constexpr AccountId bob = 2002;
constexpr std::uint64_t funded = 1000;
constexpr std::uint64_t day_s = 86'400;

EarningRules mall_rules(std::uint32_t window_s = 7 * day_s) {
  EarningRules r;
  r.ledger = mall;
  r.issuer_account = issuer;
  r.currency = "EUR";
  r.categories = {{"books", 100}, {"food", 250}};
  r.min_purchase = 500;
  r.return_window_s = window_s;
  return r;
}

struct Fixture {
  TempDir dir;
  ManualClock clock;
  std::unique_ptr<Engine> engine;

  explicit Fixture(bool manual_clock = true) : manual(manual_clock) {
    open();
    setup();
  }
  bool manual;
  void open() {
    engine = test::open_engine_with(dir.path(), [&](EngineOptions& o) {
      o.threads = 2;
      if (manual) o.clock_ns = clock.fn();
    });
  }
  void reopen() {
    engine.reset();
    open();
  }
  void setup() {
    LedgerResult lr{};
    REQUIRE(engine->create_ledger({mall, "MALL", "Mall points", 0, 0}, &lr).is_ok());
    REQUIRE(engine->create_ledger({air, "AIR", "Air miles", 0, 0}, &lr).is_ok());
    const std::uint32_t member = account_flags::debits_must_not_exceed_credits;
    std::vector<AccountResult> ar;
    REQUIRE(engine
                ->create_accounts({{issuer, mall, AccountKind::issuer, 0, 0, "mall"},
                                   {air_issuer, air, AccountKind::issuer, 0, 0, "air"},
                                   {shop, mall, AccountKind::member, 0, 0, "shop"},
                                   {alice, mall, AccountKind::member, member, 0, "alice"},
                                   {bob, mall, AccountKind::member, member, 0, "bob"}},
                                  &ar)
                .is_ok());
    for (AccountResult r : ar) REQUIRE(r == AccountResult::ok);
    std::vector<TransferOutcome> o;
    REQUIRE(
        engine->submit_transfers({{1, issuer, alice, funded, mall, 1, 0, 0, 0, 0}}, &o).is_ok());
    REQUIRE(o[0].result == TransferResult::ok);
  }
  RulesResult set(const EarningRules& rules) {
    RulesResult r{};
    REQUIRE(engine->set_rules(rules, &r).is_ok());
    return r;
  }
  PurchaseOutcome buy(const Purchase& p) {
    PurchaseOutcome o;
    const Status s = engine->purchase(p, &o);
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    return o;
  }
  PurchaseOutcome refund(PurchaseId id, RefundId refund_id, std::uint64_t amount) {
    PurchaseOutcome o;
    REQUIRE(engine->refund_purchase({id, refund_id, amount}, &o).is_ok());
    return o;
  }
  PurchaseInfo lookup(PurchaseId id) {
    std::optional<PurchaseInfo> info;
    REQUIRE(engine->lookup_purchase(id, &info).is_ok());
    REQUIRE(info);
    return *info;
  }
  /// Waits (the window's timer runs on the flows thread) until the purchase is settled with
  /// `status`.
  PurchaseInfo wait_for(PurchaseId id, PurchaseStatus status) {
    for (int i = 0; i < 1000; ++i) {
      const PurchaseInfo info = lookup(id);
      if (info.status == status && info.settled) return info;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("purchase " << id << " never reached " << to_string(status));
    return {};
  }
  Account account(AccountId id) {
    std::vector<std::optional<Account>> a;
    REQUIRE(engine->lookup_accounts({id}, &a).is_ok());
    REQUIRE(a[0]);
    return *a[0];
  }
  void verify() {
    engine.reset();
    const VerifyReport report = test::verified(dir.path());
    CHECK(report.open_pending_transfers == 0);
    CHECK(report.open_purchases == 0);
    purchases_verified = report.purchases;
  }
  std::uint64_t purchases_verified = 0;
};

Purchase books(PurchaseId id, std::uint64_t cents, AccountId member = alice) {
  return {id, member, cents, "EUR", "books"};
}

}  // namespace

TEST_CASE("rebate rules: every field checked, nothing stored on a refusal, the same again is ok",
          "[rebates]") {
  Fixture f;
  EarningRules r = mall_rules();
  CHECK(f.engine->rules(mall) == std::nullopt);
  const auto with = [&](auto change) {
    EarningRules x = mall_rules();
    change(x);
    return f.set(x);
  };
  CHECK(with([](EarningRules& x) { x.ledger = 9; }) == RulesResult::ledger_not_found);
  CHECK(with([](EarningRules& x) { x.issuer_account = 4242; }) ==
        RulesResult::issuer_account_not_found);
  CHECK(with([](EarningRules& x) { x.issuer_account = air_issuer; }) ==
        RulesResult::issuer_account_invalid);
  CHECK(with([](EarningRules& x) { x.issuer_account = shop; }) ==
        RulesResult::issuer_account_invalid);  // not an issuer
  CHECK(with([](EarningRules& x) { x.expiry_account = 4242; }) ==
        RulesResult::expiry_account_not_found);
  CHECK(with([](EarningRules& x) { x.expiry_account = air_issuer; }) ==
        RulesResult::expiry_account_invalid);
  CHECK(with([](EarningRules& x) { x.currency = "eur"; }) == RulesResult::currency_invalid);
  CHECK(with([](EarningRules& x) { x.categories.clear(); }) == RulesResult::categories_invalid);
  CHECK(with([](EarningRules& x) {
          x.categories.push_back({"books", 5});
        }) == RulesResult::categories_invalid);  // twice
  CHECK(with([](EarningRules& x) { x.categories[0].category = "Books"; }) ==
        RulesResult::categories_invalid);
  CHECK(with([](EarningRules& x) { x.categories[0].rate_bps = 0; }) ==
        RulesResult::category_rate_invalid);
  CHECK(with([](EarningRules& x) { x.categories[0].rate_bps = 10'001; }) ==
        RulesResult::category_rate_invalid);
  CHECK(with([](EarningRules& x) { x.return_window_s = rebate_return_window_s_max + 1; }) ==
        RulesResult::return_window_too_long);
  CHECK(with([](EarningRules& x) {
          x.campaigns = {{10, 10, 20'000, {}}};
        }) == RulesResult::campaigns_invalid);  // empty window
  CHECK(with([](EarningRules& x) {
          x.campaigns = {{1, 10, 9'999, {}}};
        }) == RulesResult::campaigns_invalid);  // below x1
  CHECK(with([](EarningRules& x) {
          x.campaigns = {{1, 10, 20'000, {"toys"}}};
        }) == RulesResult::campaigns_invalid);  // a category the rules do not have
  CHECK(f.engine->rules(mall) == std::nullopt);
  CHECK(f.engine->all_rules().empty());

  r.expiry_account = issuer;  // an issuer account of the ledger (the same one may do)
  REQUIRE(f.set(r) == RulesResult::ok);
  const std::optional<EarningRules> stored = f.engine->rules(mall);
  REQUIRE(stored);
  CHECK(stored->same_definition(r));
  CHECK(stored->timestamp != 0);
  CHECK(f.set(r) == RulesResult::ok);  // the same again: nothing written
  CHECK(f.engine->rules(mall)->timestamp == stored->timestamp);
  f.reopen();  // from the log's tail or the read models
  REQUIRE(f.engine->rules(mall));
  CHECK(f.engine->rules(mall)->same_definition(r));
  CHECK(f.engine->rules(mall)->timestamp == stored->timestamp);
  f.verify();
}

TEST_CASE("rebate: points pending in the window, posted at its end, also across a restart",
          "[rebates]") {
  Fixture f;
  REQUIRE(f.set(mall_rules()) == RulesResult::ok);
  // 123.45 EUR of books at 100 bps: 123 points (rounded down).
  const PurchaseOutcome o = f.buy(books(10, 12'345));
  REQUIRE(o.result == PurchaseResult::ok);
  REQUIRE(o.purchase);
  CHECK(o.purchase->status == PurchaseStatus::pending);
  CHECK(o.purchase->points == 123);
  CHECK(o.purchase->points_due == 123);
  CHECK(o.purchase->rate_bps == 100);
  CHECK(o.purchase->window_ends_at == f.clock.now() + 7 * day_s * 1'000'000'000ULL);
  CHECK(f.account(alice).credits_pending == 123);
  CHECK(f.account(alice).balance() == static_cast<std::int64_t>(funded));
  CHECK(f.account(issuer).debits_pending == 123);

  // A retry answers the purchase as it is; another body with the id is refused.
  const PurchaseOutcome again = f.buy(books(10, 12'345));
  CHECK(again.result == PurchaseResult::exists);
  CHECK(again.purchase->points == 123);
  CHECK(f.buy(books(10, 12'346)).result == PurchaseResult::exists_with_different_fields);

  // The window's end passes while the engine is down: the timer is armed again at open.
  f.engine.reset();
  f.clock.advance_s(7 * day_s);
  f.open();
  const PurchaseInfo done = f.wait_for(10, PurchaseStatus::available);
  CHECK(done.points_posted == 123);
  CHECK(f.account(alice).credits_pending == 0);
  CHECK(f.account(alice).balance() == static_cast<std::int64_t>(funded) + 123);
  CHECK(f.account(issuer).debits_pending == 0);
  f.verify();
}

TEST_CASE("rebate: refunds inside the window reduce the points, a full refund voids them",
          "[rebates]") {
  Fixture f;
  REQUIRE(f.set(mall_rules()) == RulesResult::ok);
  REQUIRE(f.buy(books(20, 10'000)).purchase->points == 100);
  // 30% refunded: 70 points due.
  PurchaseOutcome r = f.refund(20, 1, 3'000);
  CHECK(r.result == PurchaseResult::ok);
  CHECK(r.purchase->points_due == 70);
  CHECK(r.purchase->refunds.size() == 1);
  CHECK(r.purchase->refunds[0].points_reduced == 30);
  CHECK(f.refund(20, 1, 3'000).result == PurchaseResult::exists);
  CHECK(f.refund(20, 1, 2'000).result == PurchaseResult::exists_with_different_fields);
  CHECK(f.refund(20, 2, 7'001).result == PurchaseResult::refund_exceeds_purchase);
  CHECK(f.refund(20, 0, 1).result == PurchaseResult::id_must_not_be_zero);
  CHECK(f.refund(20, 3, 0).result == PurchaseResult::amount_must_not_be_zero);
  CHECK(f.refund(99, 1, 1).result == PurchaseResult::purchase_not_found);
  // At the window's end 70 are posted.
  f.clock.advance_s(7 * day_s);
  const PurchaseInfo posted = f.wait_for(20, PurchaseStatus::available);
  CHECK(posted.points_posted == 70);
  CHECK(f.account(alice).balance() == static_cast<std::int64_t>(funded) + 70);

  // Another purchase refunded in full inside its window: voided at once.
  REQUIRE(f.buy(books(21, 10'000)).purchase->points == 100);
  CHECK(f.refund(21, 1, 4'000).purchase->points_due == 60);
  r = f.refund(21, 2, 6'000);
  CHECK(r.result == PurchaseResult::ok);
  CHECK(r.purchase->status == PurchaseStatus::refunded);
  CHECK(r.purchase->settled);
  CHECK(f.account(alice).credits_pending == 0);
  CHECK(f.account(alice).balance() == static_cast<std::int64_t>(funded) + 70);
  f.verify();
}

TEST_CASE("rebate: a refund after the window claws back, and records what the balance lacked",
          "[rebates]") {
  Fixture f;
  REQUIRE(f.set(mall_rules(0)) == RulesResult::ok);  // window 0: available at once
  const PurchaseOutcome o = f.buy(books(30, 50'000, bob));
  REQUIRE(o.result == PurchaseResult::ok);
  const PurchaseInfo posted = f.wait_for(30, PurchaseStatus::available);
  CHECK(posted.points_posted == 500);
  CHECK(f.account(bob).balance() == 500);
  // Bob spends 400 of them.
  std::vector<TransferOutcome> t;
  REQUIRE(f.engine->submit_transfers({{5, bob, shop, 400, mall, 1, 0, 0, 0, 0}}, &t).is_ok());
  REQUIRE(t[0].result == TransferResult::ok);
  // Half refunded: 250 to take back, only 100 there.
  PurchaseOutcome r = f.refund(30, 1, 25'000);
  REQUIRE(r.result == PurchaseResult::ok);
  REQUIRE(r.purchase->refunds.size() == 1);
  const RefundInfo& first = r.purchase->refunds[0];
  CHECK(first.clawback);
  CHECK(first.clawback_points == 250);
  CHECK(first.clawed_back == 100);
  CHECK(first.shortfall == 150);
  CHECK(first.done);
  CHECK(r.purchase->settled);
  CHECK(f.account(bob).balance() == 0);
  // The rest refunded: 250 more, nothing left to take.
  r = f.refund(30, 2, 25'000);
  REQUIRE(r.result == PurchaseResult::ok);
  CHECK(r.purchase->refunds[1].clawback_points == 250);
  CHECK(r.purchase->refunds[1].clawed_back == 0);
  CHECK(r.purchase->shortfall == 400);
  CHECK(r.purchase->clawed_back == 100);
  // A retry of a clawback changes nothing.
  CHECK(f.refund(30, 1, 25'000).result == PurchaseResult::exists);
  CHECK(f.account(bob).balance() == 0);
  CHECK(f.account(issuer).balance() == -static_cast<std::int64_t>(funded) - 500 + 100);
  f.reopen();
  CHECK(f.lookup(30).shortfall == 400);
  f.verify();
  CHECK(f.purchases_verified == 1);
}

TEST_CASE("rebate: minimum, caps per order and per member per day, campaigns", "[rebates]") {
  Fixture f;
  EarningRules r = mall_rules();
  r.cap_per_order = 300;
  r.cap_per_member_day = 500;
  const std::uint64_t now = f.clock.now();
  // Double points on food for the next hour; triple on everything for a minute, later.
  r.campaigns = {{now, now + 3'600'000'000'000ULL, 20'000, {"food"}},
                 {now + 7'200'000'000'000ULL, now + 7'260'000'000'000ULL, 30'000, {}}};
  REQUIRE(f.set(r) == RulesResult::ok);
  // Below the minimum: recorded, nothing earned, nothing moves.
  PurchaseOutcome o = f.buy(books(40, 499));
  CHECK(o.result == PurchaseResult::ok);
  CHECK(o.purchase->status == PurchaseStatus::nothing_earned);
  CHECK(o.purchase->points == 0);
  CHECK(o.purchase->settled);
  // 8 EUR of food at 250 bps, doubled: 40 points.
  o = f.buy({41, alice, 800, "EUR", "food"});
  CHECK(o.purchase->multiplier_bps == 20'000);
  CHECK(o.purchase->points == 40);
  // 500 EUR of books: 500 earned, 300 by the order cap.
  o = f.buy(books(42, 50'000));
  CHECK(o.purchase->points_earned == 500);
  CHECK(o.purchase->points == 300);
  // The day's cap: 500 - 340 = 160 left.
  o = f.buy(books(43, 50'000));
  CHECK(o.purchase->points == 160);
  o = f.buy(books(44, 50'000));
  CHECK(o.purchase->points == 0);
  CHECK(o.purchase->status == PurchaseStatus::nothing_earned);
  // A refund inside the window gives the day's room back.
  CHECK(f.refund(43, 1, 50'000).purchase->status == PurchaseStatus::refunded);
  CHECK(f.buy(books(45, 10'000)).purchase->points == 100);
  // Bob has his own cap.
  CHECK(f.buy(books(46, 10'000, bob)).purchase->points == 100);
  // The next day the cap starts again; the later campaign triples books.
  f.clock.advance_s(7'200);
  o = f.buy(books(47, 1'000));
  CHECK(o.purchase->multiplier_bps == 30'000);
  CHECK(o.purchase->points == 30);  // 10 EUR at 100 bps x3 (the day's cap: 500 - 440 = 60 left)
  f.clock.advance_s(day_s);
  CHECK(f.buy(books(48, 20'000)).purchase->points == 200);
  // Every window ends: 40 + 300 + 100 + 30 + 200 for Alice, 100 for Bob.
  f.clock.advance_s(8 * day_s);
  for (PurchaseId id : {41, 42, 45, 46, 47, 48}) f.wait_for(id, PurchaseStatus::available);
  CHECK(f.account(alice).balance() == static_cast<std::int64_t>(funded) + 670);
  CHECK(f.account(bob).balance() == 100);
  f.verify();
}

TEST_CASE("rebate: refusals before a purchase starts store nothing", "[rebates]") {
  Fixture f;
  CHECK(f.buy(books(50, 1'000)).result == PurchaseResult::rules_not_found);
  REQUIRE(f.set(mall_rules()) == RulesResult::ok);
  CHECK(f.buy(books(0, 1'000)).result == PurchaseResult::id_must_not_be_zero);
  CHECK(f.buy(books(process_id_max + 1, 1'000)).result == PurchaseResult::id_reserved);
  CHECK(f.buy(books(50, 0)).result == PurchaseResult::amount_must_not_be_zero);
  CHECK(f.buy(books(50, 1'000, 4242)).result == PurchaseResult::member_account_not_found);
  CHECK(f.buy(books(50, 1'000, issuer)).result == PurchaseResult::member_account_invalid);
  CHECK(f.buy({50, alice, 1'000, "USD", "books"}).result == PurchaseResult::currency_mismatch);
  CHECK(f.buy({50, alice, 1'000, "EUR", "toys"}).result == PurchaseResult::category_not_found);
  CHECK(f.buy({50, alice, 1'000, "EUR", "Bad Name"}).result == PurchaseResult::category_not_found);
  std::optional<PurchaseInfo> none;
  REQUIRE(f.engine->lookup_purchase(50, &none).is_ok());
  CHECK(!none);
  // The same id then starts normally.
  CHECK(f.buy(books(50, 1'000)).result == PurchaseResult::ok);
  // Clients may not touch a rebate's transfers.
  std::vector<TransferOutcome> t;
  REQUIRE(
      f.engine
          ->submit_transfers({{60, issuer, alice, 5, mall, rebate_transfer_code, 0, 0, 0, 0},
                              {61, issuer, alice, 0, 0, 0, transfer_flags::void_pending, 50, 0, 0}},
                             &t)
          .is_ok());
  CHECK(t[0].result == TransferResult::code_reserved);
  CHECK(t[1].result == TransferResult::code_reserved);
  f.clock.advance_s(7 * day_s);
  f.wait_for(50, PurchaseStatus::available);
  f.verify();
}

TEST_CASE("balancing_debit moves what the limit allows, exceeds_credits only for nothing",
          "[rebates]") {
  Fixture f;
  std::vector<TransferOutcome> t;
  REQUIRE(f.engine
              ->submit_transfers(
                  {{70, alice, shop, 5'000, mall, 7, transfer_flags::balancing_debit, 0, 0, 0},
                   {71, alice, shop, 5, mall, 7, transfer_flags::balancing_debit, 0, 0, 0},
                   {70, alice, shop, 5'000, mall, 7, transfer_flags::balancing_debit, 0, 0, 0},
                   {72, alice, shop, 5, mall, 7,
                    transfer_flags::balancing_debit | transfer_flags::pending, 0, 0, 0}},
                  &t)
              .is_ok());
  CHECK(t[0].result == TransferResult::ok);
  CHECK(t[1].result == TransferResult::exceeds_credits);
  CHECK(t[2].result == TransferResult::exists);
  CHECK(t[3].result == TransferResult::flags_are_mutually_exclusive);
  std::optional<TransferInfo> info;
  REQUIRE(f.engine->lookup_transfer(alice, 70, &info).is_ok());
  REQUIRE(info);
  CHECK(info->amount == funded);
  CHECK(f.account(alice).balance() == 0);
  CHECK(f.account(shop).balance() == static_cast<std::int64_t>(funded));
  // Without the limit the whole amount moves.
  REQUIRE(f.engine
              ->submit_transfers(
                  {{73, shop, bob, 5'000, mall, 7, transfer_flags::balancing_debit, 0, 0, 0}}, &t)
              .is_ok());
  CHECK(t[0].result == TransferResult::ok);
  CHECK(f.account(bob).balance() == 5'000);
  f.verify();
}

namespace {

/// Runs purchase 77 in a child process that SIGKILLs itself after `step`; true when killed.
bool run_rebate_child(const std::string& dir, const std::string& step, const std::string& action) {
  return test::killed_child(POINTEX_REBATE_CRASH_CHILD, {dir, action}, "purchase:" + step);
}

}  // namespace

TEST_CASE("crash after every step of a purchase: it completes, with conservation", "[rebates]") {
  struct Case {
    const char* step;
    const char* action;
  };
  const std::vector<Case> cases = {
      {"started", "window"},
      {"credited", "window"},
      {"decided", "window"},
      {"resolved", "window"},
      {"completed", "window"},
      {"refunded", "refund"},
      {"decided", "refund"},
      {"resolved", "refund"},
      {"refunded", "clawback"},
      {"completed", "clawback"},
      {"clawback_transfer", "clawback"},
      {"clawed_back", "clawback"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.step << " " << c.action) {
      Fixture f(/*manual_clock=*/false);
      REQUIRE(f.set(mall_rules(std::string(c.action) == "window" ? 1
                               : c.action[0] == 'r'              ? 600
                                                                 : 0)) == RulesResult::ok);
      f.engine.reset();
      REQUIRE(run_rebate_child(f.dir.path(), c.step, c.action));
      f.open();
      // What the child had still to do, again: retries answer what was done.
      REQUIRE(f.buy(books(77, 10'000)).result == PurchaseResult::exists);
      std::int64_t want = static_cast<std::int64_t>(funded) + 100;
      PurchaseStatus status = PurchaseStatus::available;
      if (std::string(c.action) == "refund") {
        const PurchaseOutcome a = f.refund(77, 1, 4'000);
        CHECK((a.result == PurchaseResult::ok || a.result == PurchaseResult::exists));
        CHECK(f.refund(77, 2, 6'000).result != PurchaseResult::exists_with_different_fields);
        want = funded;
        status = PurchaseStatus::refunded;
      } else if (std::string(c.action) == "clawback") {
        f.wait_for(77, PurchaseStatus::available);
        const PurchaseOutcome a = f.refund(77, 1, 10'000);
        CHECK((a.result == PurchaseResult::ok || a.result == PurchaseResult::exists));
        want = funded;
      }
      const PurchaseInfo info = f.wait_for(77, status);
      CHECK(f.account(alice).balance() == want);
      CHECK(f.account(alice).credits_pending == 0);
      CHECK(f.account(issuer).debits_pending == 0);
      if (std::string(c.action) == "clawback") {
        REQUIRE(info.refunds.size() == 1);
        CHECK(info.refunds[0].clawed_back == 100);
        CHECK(info.shortfall == 0);
      }
      CHECK(f.engine->stats().open_processes == 0);
      f.verify();
    }
  }
}

TEST_CASE("set_rules answers once the rules are readable, however late set_rules publishes them",
          "[rebate]") {
  // As for rates: the journal may answer before set_rules, preempted after its append,
  // publishes them (a PUT would answer 500 "rules set but not found").
  Fixture f;
  EngineTestAccess::delay_publication(*f.engine, std::chrono::milliseconds(200));
  auto seen_by_callback = [&](const EarningRules& r) {
    std::promise<std::optional<EarningRules>> seen;
    f.engine->set_rules(r, [&](const Status& s, RulesResult result) {
      CHECK(s.is_ok());
      CHECK(result == RulesResult::ok);
      seen.set_value(f.engine->rules(r.ledger));
    });
    return seen.get_future().get();
  };
  const std::optional<EarningRules> first = seen_by_callback(mall_rules());
  REQUIRE(first);
  CHECK(first->min_purchase == 500);
  EarningRules changed = mall_rules();
  changed.min_purchase = 700;
  const std::optional<EarningRules> second = seen_by_callback(changed);
  REQUIRE(second);
  CHECK(second->min_purchase == 700);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the late publications
  const std::optional<EarningRules> later = f.engine->rules(mall);
  REQUIRE(later);
  CHECK(later->min_purchase == 700);
  CHECK(later->timestamp == second->timestamp);
  EngineTestAccess::delay_publication(*f.engine, std::chrono::microseconds(0));
}

// Expiry lots through the engine (docs/expiry.md): the read models keep each member's lots by
// the fold of the log (credits add a lot per UTC day, debits consume the oldest first, pending
// changes nothing until posted), they survive a restart and a rebuild, verify checks them
// against the log, and a ledger without an expiry policy has none.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <pointex/engine.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace pointex;
using pointex::test::ManualClock;
using pointex::test::TempDir;

namespace {

constexpr LedgerId mall = 1;  // expiry_days 30
constexpr LedgerId air = 2;   // never expires
constexpr AccountId issuer = 1000;
constexpr AccountId expiry = 1001;
constexpr AccountId air_issuer = 1100;
constexpr AccountId alice = 2001;
constexpr AccountId bob = 2002;    // no debit limit
constexpr AccountId carol = 2003;  // on air
constexpr std::uint64_t day_ns = 86'400ULL * 1'000'000'000ULL;
constexpr std::uint32_t expiry_days = 30;

struct Fixture {
  TempDir dir;
  ManualClock clock;
  std::unique_ptr<Engine> engine;
  std::uint32_t interval_s = 0;
  TransferId next_id = 1;
  std::uint64_t last_position = 0;

  /// `sweep_interval_s`: EngineOptions::expiry_sweep_interval_s (0: the test sweeps).
  explicit Fixture(std::uint32_t sweep_interval_s = 0) : interval_s(sweep_interval_s) {
    open();
    LedgerResult lr{};
    REQUIRE(engine->create_ledger({mall, "MALL", "Mall points", expiry_days, 0}, &lr).is_ok());
    REQUIRE(lr == LedgerResult::ok);
    REQUIRE(engine->create_ledger({air, "AIR", "Air miles", 0, 0}, &lr).is_ok());
    const std::uint32_t limit = account_flags::debits_must_not_exceed_credits;
    std::vector<AccountResult> ar;
    REQUIRE(engine
                ->create_accounts({{issuer, mall, AccountKind::issuer, 0, 0, "mall"},
                                   {expiry, mall, AccountKind::issuer, 0, 0, "mall expiry"},
                                   {air_issuer, air, AccountKind::issuer, 0, 0, "air"},
                                   {alice, mall, AccountKind::member, limit, 0, "alice"},
                                   {bob, mall, AccountKind::member, 0, 0, "bob"},
                                   {carol, air, AccountKind::member, limit, 0, "carol"}},
                                  &ar)
                .is_ok());
    for (AccountResult r : ar) REQUIRE(r == AccountResult::ok);
  }
  void open() {
    engine = test::open_engine_with(dir.path(), [&](EngineOptions& o) {
      o.threads = 2;
      o.clock_ns = clock.fn();
      o.expiry_sweep_interval_s = interval_s;
    });
  }
  void reopen() {
    engine.reset();
    open();
  }
  TransferOutcome submit(const Transfer& t) {
    std::vector<TransferOutcome> o;
    REQUIRE(engine->submit_transfers({t}, &o).is_ok());
    REQUIRE(o.size() == 1);
    if (o[0].position > last_position) last_position = o[0].position;
    return o[0];
  }
  /// A single transfer; its result.
  TransferResult move(AccountId from, AccountId to, std::uint64_t amount, LedgerId ledger = mall) {
    return submit({next_id++, from, to, amount, ledger, 1, 0, 0, 0, 0}).result;
  }
  /// The account as the read models have it, with everything submitted so far.
  Account read(AccountId id) {
    std::optional<Account> a;
    REQUIRE(engine->read_account(id, last_position, &a).is_ok());
    REQUIRE(a);
    return *a;
  }
  /// When a lot earned now expires.
  std::uint64_t due_of_now() const {
    return clock.now() / day_ns * day_ns + (expiry_days + 1) * day_ns;
  }
  void set_rules(AccountId expiry_account = expiry) {
    EarningRules r;
    r.ledger = mall;
    r.issuer_account = issuer;
    r.expiry_account = expiry_account;
    r.currency = "EUR";
    r.categories = {{"books", 100}};
    RulesResult rr{};
    REQUIRE(engine->set_rules(r, &rr).is_ok());
    REQUIRE(rr == RulesResult::ok);
  }
  ExpirySweepReport sweep() {
    ExpirySweepReport report;
    const Status s = engine->sweep_expired_points(&report);
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    // The expiries' positions are not answered: read after the journal's tail instead.
    last_position = 0;
    return report;
  }
  std::int64_t balance(AccountId id) {
    std::vector<std::optional<Account>> a;
    REQUIRE(engine->lookup_accounts({id}, &a).is_ok());
    REQUIRE(a[0]);
    return a[0]->balance();
  }
  /// The account from the read models once they include every committed event.
  Account read_latest(AccountId id) {
    // A transfer of 1 from the issuer to itself is refused; use a harmless read barrier:
    // move 1 point issuer -> expiry and back (issuers have no lots).
    REQUIRE(move(issuer, expiry, 1) == TransferResult::ok);
    REQUIRE(move(expiry, issuer, 1) == TransferResult::ok);
    return read(id);
  }
  void verify() {
    engine.reset();
    test::verified(dir.path());
  }
};

}  // namespace

TEST_CASE("expiry lots: credits of a day form one lot, debits consume the oldest lots first",
          "[expiry]") {
  Fixture f;
  const std::uint64_t first = f.due_of_now();
  REQUIRE(f.move(issuer, alice, 100) == TransferResult::ok);
  REQUIRE(f.move(issuer, alice, 20) == TransferResult::ok);  // same day: merged
  f.clock.advance_s(86'400);
  const std::uint64_t second = f.due_of_now();
  REQUIRE(f.move(issuer, alice, 200) == TransferResult::ok);
  f.clock.advance_s(86'400);
  const std::uint64_t third = f.due_of_now();
  REQUIRE(f.move(issuer, alice, 300) == TransferResult::ok);
  CHECK(f.read(alice).expiring ==
        std::vector<ExpiringLot>{{120, first}, {200, second}, {300, third}});
  // A debit within the oldest lot, then one spanning the rest of it and part of the next.
  REQUIRE(f.move(alice, issuer, 20) == TransferResult::ok);
  CHECK(f.read(alice).expiring ==
        std::vector<ExpiringLot>{{100, first}, {200, second}, {300, third}});
  REQUIRE(f.move(alice, issuer, 250) == TransferResult::ok);
  CHECK(f.read(alice).expiring == std::vector<ExpiringLot>{{50, second}, {300, third}});
  // Issuers have no lots.
  CHECK(f.read(issuer).expiring.empty());
  // The lots survive a restart, and verify finds them equal to the fold of the log.
  f.reopen();
  CHECK(f.read(alice).expiring == std::vector<ExpiringLot>{{50, second}, {300, third}});
  f.verify();
}

TEST_CASE("expiry lots: pending changes nothing, a post adds or consumes its posted amount",
          "[expiry]") {
  Fixture f;
  const std::uint64_t due = f.due_of_now();
  REQUIRE(f.move(issuer, alice, 500) == TransferResult::ok);
  // A pending credit to alice: nothing until posted, then the posted amount (partly).
  REQUIRE(f.submit({100, issuer, alice, 80, mall, 1, transfer_flags::pending, 0, 0, 0}).result ==
          TransferResult::ok);
  CHECK(f.read(alice).expiring == std::vector<ExpiringLot>{{500, due}});
  f.clock.advance_s(86'400);
  const std::uint64_t later = f.due_of_now();
  REQUIRE(f.submit({101, issuer, 0, 60, 0, 0, transfer_flags::post_pending, 100, 0, 0}).result ==
          TransferResult::ok);
  CHECK(f.read(alice).expiring == std::vector<ExpiringLot>{{500, due}, {60, later}});
  // A pending debit reserves without consuming; its void changes nothing; a post consumes.
  REQUIRE(f.submit({200, alice, issuer, 300, mall, 2, transfer_flags::pending, 0, 0, 0}).result ==
          TransferResult::ok);
  REQUIRE(f.submit({201, alice, 0, 0, 0, 0, transfer_flags::void_pending, 200, 0, 0}).result ==
          TransferResult::ok);
  CHECK(f.read(alice).expiring == std::vector<ExpiringLot>{{500, due}, {60, later}});
  REQUIRE(f.submit({202, alice, issuer, 520, mall, 2, transfer_flags::pending, 0, 0, 0}).result ==
          TransferResult::ok);
  REQUIRE(f.submit({203, alice, 0, 0, 0, 0, transfer_flags::post_pending, 202, 0, 0}).result ==
          TransferResult::ok);
  CHECK(f.read(alice).expiring == std::vector<ExpiringLot>{{40, later}});
  f.verify();
}

TEST_CASE("expiry lots: an account without the debit limit going negative, then credited",
          "[expiry]") {
  Fixture f;
  REQUIRE(f.move(issuer, bob, 100) == TransferResult::ok);
  REQUIRE(f.move(bob, issuer, 150) == TransferResult::ok);  // -50: the lots covered 100
  CHECK(f.read(bob).expiring.empty());
  f.clock.advance_s(86'400);
  const std::uint64_t due = f.due_of_now();
  REQUIRE(f.move(issuer, bob, 70) == TransferResult::ok);
  CHECK(f.read(bob).expiring == std::vector<ExpiringLot>{{70, due}});
  f.verify();
}

TEST_CASE("expiry lots: a ledger with expiry_days 0 has none", "[expiry]") {
  Fixture f;
  REQUIRE(f.move(air_issuer, carol, 100, air) == TransferResult::ok);
  CHECK(f.read(carol).expiring.empty());
  CHECK(f.read(carol).balance() == 100);
  f.verify();
}

TEST_CASE("expiry sweep: nothing before the due day, then what is due goes to the expiry account",
          "[expiry]") {
  Fixture f;
  f.set_rules();
  REQUIRE(f.move(issuer, alice, 100) == TransferResult::ok);
  f.clock.advance_s(86'400);
  REQUIRE(f.move(issuer, alice, 200) == TransferResult::ok);
  REQUIRE(f.move(alice, issuer, 30) == TransferResult::ok);  // from the oldest lot: 70 left
  const std::uint64_t second_due = f.read(alice).expiring.at(1).at;
  // Day 30 after the first credit: nothing is due yet.
  f.clock.advance_s(29 * 86'400);
  ExpirySweepReport r = f.sweep();
  CHECK(r.accounts_due == 0);
  CHECK(f.balance(alice) == 270);
  // The first lot's day has ended: its 70 expire, the second lot stays.
  f.clock.advance_s(86'400);
  r = f.sweep();
  CHECK(r.accounts_due == 1);
  CHECK(r.expired == 1);
  CHECK(f.balance(alice) == 200);
  CHECK(f.balance(expiry) == 70);
  CHECK(f.read_latest(alice).expiring == std::vector<ExpiringLot>{{200, second_due}});
  // The expiry transfer: member -> expiry account, code expiry_transfer_code, a reserved id.
  std::optional<TransferInfo> t;
  REQUIRE(f.engine->lookup_transfer(alice, expiry_transfer_id(f.clock.now() / day_ns), &t).is_ok());
  REQUIRE(t);
  CHECK(t->credit_account == expiry);
  CHECK(t->amount == 70);
  CHECK(t->code == expiry_transfer_code);
  // Sweeping again the same day, and after a restart, expires nothing more.
  r = f.sweep();
  CHECK(r.expired == 0);
  f.reopen();
  r = f.sweep();
  CHECK(r.expired == 0);
  CHECK(f.balance(alice) == 200);
  CHECK(f.balance(expiry) == 70);
  // The next day the second lot expires.
  f.clock.advance_s(86'400);
  r = f.sweep();
  CHECK(r.expired == 1);
  CHECK(f.balance(alice) == 0);
  CHECK(f.balance(expiry) == 270);
  CHECK(f.read_latest(alice).expiring.empty());
  f.verify();
}

TEST_CASE("expiry sweep: points reserved by a pending debit are not expired until released",
          "[expiry]") {
  Fixture f;
  f.set_rules();
  REQUIRE(f.move(issuer, alice, 100) == TransferResult::ok);
  REQUIRE(f.submit({500, alice, issuer, 60, mall, 2, transfer_flags::pending, 0, 0, 0}).result ==
          TransferResult::ok);
  f.clock.advance_s(31 * 86'400);
  ExpirySweepReport r = f.sweep();
  CHECK(r.expired == 1);
  CHECK(f.balance(alice) == 60);  // only the 40 available expired
  CHECK(f.balance(expiry) == 40);
  // The reservation is voided: its 60 are due and expire at the next day's sweep.
  REQUIRE(f.submit({501, alice, 0, 0, 0, 0, transfer_flags::void_pending, 500, 0, 0}).result ==
          TransferResult::ok);
  r = f.sweep();  // the same day: its id is taken
  CHECK(r.expired == 0);
  f.clock.advance_s(86'400);
  r = f.sweep();
  CHECK(r.expired == 1);
  CHECK(f.balance(alice) == 0);
  CHECK(f.balance(expiry) == 100);
  f.verify();
}

TEST_CASE("expiry sweep: an account without the debit limit expires only what it has", "[expiry]") {
  Fixture f;
  f.set_rules();
  REQUIRE(f.move(issuer, bob, 100) == TransferResult::ok);
  REQUIRE(f.move(bob, issuer, 150) == TransferResult::ok);  // -50, lots consumed
  REQUIRE(f.move(issuer, bob, 70) == TransferResult::ok);   // 20, a lot of 70
  f.clock.advance_s(31 * 86'400);
  ExpirySweepReport r = f.sweep();
  CHECK(r.expired == 1);
  CHECK(f.balance(bob) == 0);
  CHECK(f.balance(expiry) == 20);
  f.verify();
}

TEST_CASE("expiry sweep: a ledger whose rules name no expiry account is skipped", "[expiry]") {
  Fixture f;
  REQUIRE(f.move(issuer, alice, 100) == TransferResult::ok);
  f.clock.advance_s(31 * 86'400);
  ExpirySweepReport r = f.sweep();
  CHECK(r.ledgers_skipped == 1);
  CHECK(r.accounts_due == 0);
  f.set_rules(0);
  r = f.sweep();
  CHECK(r.ledgers_skipped == 1);
  CHECK(f.balance(alice) == 100);
  f.verify();
}

namespace {

/// Runs an expiry sweep in a child process at `now_ns` that SIGKILLs itself after `delay_us`.
bool run_expiry_child(const std::string& dir, std::uint64_t now_ns, std::uint64_t delay_us) {
  return test::killed_child(POINTEX_EXPIRY_CRASH_CHILD,
                            {dir, std::to_string(now_ns), std::to_string(delay_us)});
}

}  // namespace

TEST_CASE("expiry sweep: SIGKILL during a sweep of many accounts, reopen, sweep: once each",
          "[expiry]") {
  constexpr AccountId first = 10'000;
  constexpr std::uint32_t members = 1'500;
  constexpr std::uint64_t old_points = 30;  // due
  constexpr std::uint64_t new_points = 12;  // earned the next day: not due yet
  for (const std::uint64_t delay_us : {0ULL, 20'000ULL, 80'000ULL, 300'000ULL}) {
    DYNAMIC_SECTION("killed after " << delay_us << " us") {
      Fixture f;
      f.set_rules();
      std::vector<AccountSpec> specs;
      for (std::uint32_t i = 0; i < members; ++i) {
        specs.push_back({first + i, mall, AccountKind::member,
                         account_flags::debits_must_not_exceed_credits, 0, "m"});
      }
      std::vector<AccountResult> ar;
      REQUIRE(f.engine->create_accounts(specs, &ar).is_ok());
      const auto credit_all = [&](std::uint64_t amount) {
        std::vector<Transfer> batch;
        for (std::uint32_t i = 0; i < members; ++i) {
          batch.push_back({f.next_id++, issuer, first + i, amount, mall, 1, 0, 0, 0, 0});
        }
        std::vector<TransferOutcome> o;
        REQUIRE(f.engine->submit_transfers(batch, &o).is_ok());
        for (const TransferOutcome& x : o) REQUIRE(x.result == TransferResult::ok);
      };
      credit_all(old_points);
      f.clock.advance_s(86'400);
      credit_all(new_points);
      f.clock.advance_s(30 * 86'400);  // the first day's lots are due, the second's not
      f.engine.reset();
      const bool killed = run_expiry_child(f.dir.path(), f.clock.now(), delay_us);
      CHECK(killed);
      f.open();
      // What the child expired before it died (all, some or none, by the delay).
      const std::int64_t before = f.balance(expiry);
      WARN("killed after " << delay_us << " us: " << before << " of " << members * old_points
                           << " points expired by then");
      const ExpirySweepReport r = f.sweep();
      CHECK(r.deferred == 0);
      std::vector<AccountId> ids;
      for (std::uint32_t i = 0; i < members; ++i) ids.push_back(first + i);
      std::vector<std::optional<Account>> accounts;
      REQUIRE(f.engine->lookup_accounts(ids, &accounts).is_ok());
      std::uint32_t exact = 0;
      for (const auto& a : accounts) {
        if (a && a->balance() == static_cast<std::int64_t>(new_points)) ++exact;
      }
      CHECK(exact == members);
      CHECK(f.balance(expiry) == static_cast<std::int64_t>(members * old_points));
      // A second sweep, and one more after a restart, change nothing.
      CHECK(f.sweep().expired == 0);
      f.reopen();
      CHECK(f.sweep().expired == 0);
      CHECK(f.balance(expiry) == static_cast<std::int64_t>(members * old_points));
      f.verify();
    }
  }
}

TEST_CASE("expiry sweep: debits racing the sweep never make it expire points that are not due",
          "[expiry]") {
  Fixture f;
  f.set_rules();
  REQUIRE(f.move(issuer, alice, 1000) == TransferResult::ok);
  f.clock.advance_s(31 * 86'400);                              // that lot is due
  REQUIRE(f.move(issuer, alice, 1000) == TransferResult::ok);  // this one is not
  const std::uint64_t second_due = f.due_of_now();
  // Alice spends 1 point at a time while sweeps run: the sweep's read models lag her debits,
  // so an expiry decided from them alone would take points her spending already took from the
  // due lot, i.e. from the lot that is not due.
  constexpr std::uint64_t spends_max = 900;
  std::mutex mutex;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spent;  // position, amount
  std::size_t failures = 0;
  std::atomic<bool> stop{false};
  std::thread spender([&] {
    for (TransferId id = 100'000; id < 100'000 + spends_max && !stop.load(); ++id) {
      std::vector<TransferOutcome> o;
      const Status s =
          f.engine->submit_transfers({{id, alice, issuer, 1, mall, 1, 0, 0, 0, 0}}, &o);
      std::lock_guard<std::mutex> lock(mutex);
      if (!s.is_ok() || o.size() != 1 || o[0].result != TransferResult::ok) {
        ++failures;
        continue;
      }
      spent.emplace_back(o[0].position, 1);
    }
  });
  for (int i = 0; i < 10'000; ++i) {  // sweep while she spends
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (spent.size() + failures >= 50) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ExpirySweepReport total;
  for (int i = 0; i < 100'000 && total.expired == 0; ++i) {
    const ExpirySweepReport r = f.sweep();
    total.expired += r.expired;
    total.deferred += r.deferred;
  }
  stop.store(true);
  spender.join();
  if (total.expired == 0) total.expired += f.sweep().expired;  // the spender is done: not busy
  REQUIRE(failures == 0);
  REQUIRE(total.expired == 1);
  std::optional<TransferInfo> t;
  REQUIRE(f.engine->lookup_transfer(alice, expiry_transfer_id(f.clock.now() / day_ns), &t).is_ok());
  REQUIRE(t);
  std::uint64_t spent_before = 0, spent_all = 0;
  for (const auto& [position, amount] : spent) {
    spent_all += amount;
    if (position < t->position) spent_before += amount;
  }
  INFO("spent " << spent_all << ", " << spent_before << " before the expiry; deferred "
                << total.deferred);
  // Exactly what the due lot still held when the expiry committed.
  CHECK(t->amount == 1000 - spent_before);
  CHECK(f.balance(alice) == static_cast<std::int64_t>(1000 - (spent_all - spent_before)));
  CHECK(f.read_latest(alice).expiring ==
        std::vector<ExpiringLot>{{1000 - (spent_all - spent_before), second_due}});
  f.verify();
}

TEST_CASE("expiry sweep: the engine's expiry thread sweeps every expiry_sweep_interval_s",
          "[expiry]") {
  Fixture f(/*sweep_interval_s=*/1);
  f.set_rules();
  REQUIRE(f.move(issuer, alice, 100) == TransferResult::ok);
  f.clock.advance_s(31 * 86'400);
  std::int64_t expired = 0;
  for (int i = 0; i < 100 && expired == 0; ++i) {  // at most 10 s: a bound for a hung test
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    expired = f.balance(expiry);
  }
  CHECK(expired == 100);
  CHECK(f.balance(alice) == 0);
  f.verify();
}

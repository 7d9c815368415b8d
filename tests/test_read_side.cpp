// Read side: projections, queries with min_position, paging and filters, ledger statistics,
// rebuild equal to the incremental build, verify.

#include <rocksdb/db.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <pointex/engine.hpp>
#include <random>
#include <thread>

#include "store/event_log.hpp"
#include "store/key_sort.hpp"
#include "store/read_model.hpp"
#include "string_makers.hpp"
#include "support.hpp"

using namespace pointex;
using pointex::test::ManualClock;
using pointex::test::open_engine;
using pointex::test::TempDir;

namespace {

constexpr LedgerId mall = 1;
constexpr AccountId issuer = 10;
constexpr AccountId redemption = 11;
constexpr AccountId alice = 21;
constexpr AccountId bob = 22;

void setup(Engine& e) {
  LedgerResult r{};
  REQUIRE(e.create_ledger({mall, "MALL", "Mall", 0, 0}, &r).is_ok());
  std::vector<AccountResult> results;
  REQUIRE(e.create_accounts({{issuer, mall, AccountKind::issuer, 0, 0, "issuer"},
                             {redemption, mall, AccountKind::issuer, 0, 0, "redemption"},
                             {alice, mall, AccountKind::member,
                              account_flags::debits_must_not_exceed_credits, 0, "alice"},
                             {bob, mall, AccountKind::member,
                              account_flags::debits_must_not_exceed_credits, 0, "bob"}},
                            &results)
              .is_ok());
  REQUIRE(results == std::vector<AccountResult>(4, AccountResult::ok));
}

Transfer single(TransferId id, AccountId debit, AccountId credit, std::uint64_t amount,
                std::uint16_t code = 1) {
  return pointex::test::single_transfer(id, debit, credit, amount, mall, code);
}

TransferOutcome submit_ok(Engine& e, const Transfer& t) {
  std::vector<TransferOutcome> out;
  REQUIRE(e.submit_transfers({t}, &out).is_ok());
  INFO("transfer " << t.id);
  REQUIRE(out[0].result == TransferResult::ok);
  return out[0];
}

using Dump = std::map<std::string, std::string>;

Dump dump(const std::string& dir) {
  std::unique_ptr<store::ReadModel> model;
  REQUIRE(store::ReadModel::open(dir, &model).is_ok());
  store::ReadModel& rm = *model;
  Dump d;
  REQUIRE(rm.dump([&](const std::string& cf, const std::string& k, const std::string& v) {
              d[cf + "/" + k] = v;
            }).is_ok());
  std::uint64_t checkpoint = 0;
  REQUIRE(rm.checkpoint(&checkpoint).is_ok());
  d["checkpoint"] = std::to_string(checkpoint);
  return d;
}

/// A mix of every kind of event: transfers, pending, post, void, expiry, a close.
void mixed_workload(Engine& e, ManualClock& clock) {
  setup(e);
  for (TransferId id = 1; id <= 40; ++id)
    submit_ok(e, single(id, issuer, id % 2 ? alice : bob, id));
  submit_ok(e, single(41, alice, bob, 5, 3));
  submit_ok(e, single(42, bob, redemption, 20, 2));
  Transfer p = single(43, alice, redemption, 30, 2);
  p.flags = transfer_flags::pending;
  submit_ok(e, p);
  Transfer post;
  post.id = 44;
  post.debit_account = alice;
  post.pending_id = 43;
  post.amount = 10;
  post.flags = transfer_flags::post_pending;
  submit_ok(e, post);
  Transfer p2 = p;
  p2.id = 45;
  submit_ok(e, p2);
  Transfer v = post;
  v.id = 46;
  v.pending_id = 45;
  v.amount = 0;
  v.flags = transfer_flags::void_pending;
  submit_ok(e, v);
  Transfer p3 = p;
  p3.id = 47;
  p3.timeout_s = 5;
  submit_ok(e, p3);
  clock.advance_s(6);
  std::optional<TransferInfo> t;
  for (int i = 0; i < 200; ++i) {
    REQUIRE(e.lookup_transfer(alice, 47, &t).is_ok());
    if (t && t->state == TransferState::expired) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(t->state == TransferState::expired);
  submit_ok(e, single(48, issuer, alice, 1));
}

}  // namespace

TEST_CASE("the writer's key sort orders by (hi, lo) and keeps arrival order among equals",
          "[read]") {
  struct Item {
    std::uint64_t hi;
    std::uint64_t lo;
    std::uint32_t arrival;
  };
  std::mt19937_64 rng(7);
  // Keys as the read models see them (a few bytes differ) and keys that differ everywhere.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges = {
      {1, 1}, {100'000, 50}, {1ULL << 40, 3}, {UINT64_MAX, UINT64_MAX}, {0, 0}};
  std::vector<Item> scratch;
  for (const auto& [hi_span, lo_span] : ranges) {
    for (const std::size_t n : {0, 1, 2, 3, 1000, 70'000}) {
      std::vector<Item> items;
      const std::uint64_t base = rng();
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t hi = hi_span == UINT64_MAX ? rng() : base + rng() % (hi_span + 1);
        const std::uint64_t lo = lo_span == UINT64_MAX ? rng() : rng() % (lo_span + 1);
        items.push_back({hi, lo, static_cast<std::uint32_t>(i)});
      }
      std::vector<Item> expected = items;
      std::stable_sort(expected.begin(), expected.end(), [](const Item& x, const Item& y) {
        return x.hi != y.hi ? x.hi < y.hi : x.lo < y.lo;
      });
      pointex::store::sort_by_key(items, scratch);
      INFO("hi span " << hi_span << ", lo span " << lo_span << ", n " << n);
      REQUIRE(items.size() == expected.size());
      for (std::size_t i = 0; i < n; ++i) {
        REQUIRE(items[i].hi == expected[i].hi);
        REQUIRE(items[i].lo == expected[i].lo);
        REQUIRE(items[i].arrival == expected[i].arrival);
      }
    }
  }
}

TEST_CASE("read models answer with read-your-writes through min_position", "[read]") {
  TempDir dir;
  auto e = open_engine(dir.path());
  setup(*e);
  const TransferOutcome o = submit_ok(*e, single(1, issuer, alice, 70));
  std::optional<Account> a;
  REQUIRE(e->read_account(alice, o.position, &a).is_ok());
  REQUIRE(a.has_value());
  CHECK(a->credits_posted == 70);
  CHECK(a->spec.owner == "alice");
  std::optional<TransferInfo> t;
  REQUIRE(e->read_transfer(issuer, 1, o.position, &t).is_ok());
  REQUIRE(t.has_value());
  CHECK(t->position == o.position);
  CHECK(t->timestamp == o.timestamp);
  CHECK(t->state == TransferState::posted);
  REQUIRE(e->read_account(999, 0, &a).is_ok());
  CHECK_FALSE(a.has_value());
  CHECK(e->stats().projected_position >= o.position);
}

TEST_CASE("a read for a position not yet reached times out and reads nothing", "[read]") {
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  o.read_wait_ms_max = 100;
  std::unique_ptr<Engine> e;
  REQUIRE(Engine::open(o, &e).is_ok());
  setup(*e);
  std::optional<Account> a;
  const auto started = std::chrono::steady_clock::now();
  const Status s = e->read_account(alice, e->stats().committed_position + 1000, &a);
  CHECK(s.code() == Status::Code::timed_out);
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(90));
  CHECK_FALSE(a.has_value());
}

TEST_CASE("history pages newest first with cursor, code and time filters", "[read]") {
  TempDir dir;
  ManualClock clock;
  auto e = open_engine(dir.path(), clock.fn());
  setup(*e);
  std::vector<TransferOutcome> outcomes;
  for (TransferId id = 1; id <= 25; ++id) {
    outcomes.push_back(submit_ok(*e, single(id, issuer, alice, id, id % 5 == 0 ? 7 : 1)));
    clock.advance_s(1);
  }
  HistoryQuery q;
  q.account = alice;
  q.limit = 10;
  q.min_position = outcomes.back().position;
  std::vector<TransferId> seen;
  std::uint64_t credited = 0;
  for (int page_no = 0; page_no < 5; ++page_no) {
    HistoryPage page;
    REQUIRE(e->account_history(q, &page).is_ok());
    for (const AccountEvent& ev : page.events) {
      seen.push_back(ev.transfer.request.id);
      CHECK(ev.kind == TransferKind::single);
      // Balances after the event: the running sum of 1..id.
      const std::uint64_t id = ev.transfer.request.id;
      CHECK(ev.credits_posted == id * (id + 1) / 2);
      credited += ev.amount;
    }
    if (page.next_before_position == 0) break;
    q.before_position = page.next_before_position;
  }
  REQUIRE(seen.size() == 25);
  for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == 25 - i);
  CHECK(credited == 25 * 26 / 2);

  HistoryQuery by_code;
  by_code.account = alice;
  by_code.code = 7;
  HistoryPage page;
  REQUIRE(e->account_history(by_code, &page).is_ok());
  REQUIRE(page.events.size() == 5);
  CHECK(page.events.front().transfer.request.id == 25);
  CHECK(page.next_before_position == 0);

  HistoryQuery window;
  window.account = alice;
  window.from_ns = outcomes[9].timestamp;  // transfer 10, inclusive
  window.to_ns = outcomes[14].timestamp;   // transfer 15, exclusive
  REQUIRE(e->account_history(window, &page).is_ok());
  REQUIRE(page.events.size() == 5);
  CHECK(page.events.front().transfer.request.id == 14);
  CHECK(page.events.back().transfer.request.id == 10);

  HistoryQuery bad;
  bad.account = alice;
  bad.limit = 0;
  CHECK(e->account_history(bad, &page).code() == Status::Code::invalid_argument);
  bad.limit = 1001;
  CHECK(e->account_history(bad, &page).code() == Status::Code::invalid_argument);
  bad.limit = 10;
  bad.from_ns = 10;
  bad.to_ns = 5;
  CHECK(e->account_history(bad, &page).code() == Status::Code::invalid_argument);
}

TEST_CASE("history shows two-phase transfers with their current state", "[read]") {
  TempDir dir;
  ManualClock clock;
  auto e = open_engine(dir.path(), clock.fn());
  mixed_workload(*e, clock);
  HistoryQuery q;
  q.account = alice;
  q.limit = 1000;
  q.min_position = e->stats().committed_position;
  HistoryPage page;
  REQUIRE(e->account_history(q, &page).is_ok());
  std::map<TransferId, TransferState> state;
  std::map<TransferKind, int> kinds;
  for (const AccountEvent& ev : page.events) {
    state[ev.transfer.request.id] = ev.transfer.state;
    ++kinds[ev.kind];
  }
  CHECK(state[43] == TransferState::posted);  // the pending one, posted by 44
  CHECK(state[44] == TransferState::posted);
  CHECK(state[45] == TransferState::voided);
  CHECK(state[46] == TransferState::voided);
  CHECK(state[47] == TransferState::expired);
  CHECK(kinds[TransferKind::pending] == 3);
  CHECK(kinds[TransferKind::post] == 1);
  CHECK(kinds[TransferKind::void_pending] == 1);
  CHECK(kinds[TransferKind::expire] == 1);
  // The newest event carries the account's current balances.
  std::vector<std::optional<Account>> live;
  REQUIRE(e->lookup_accounts({alice}, &live).is_ok());
  CHECK(page.events.front().credits_posted == live[0]->credits_posted);
  CHECK(page.events.front().debits_posted == live[0]->debits_posted);
  CHECK(page.events.front().debits_pending == 0);
}

TEST_CASE("a transfer id used by two debit accounts is found under both", "[read]") {
  TempDir dir;
  auto e = open_engine(dir.path());
  setup(*e);
  submit_ok(*e, single(5, issuer, alice, 10));
  const TransferOutcome o = submit_ok(*e, single(5, alice, bob, 3));
  std::vector<TransferInfo> found;
  REQUIRE(e->find_transfers(5, o.position, &found).is_ok());
  REQUIRE(found.size() == 2);
  CHECK(found[0].debit_account == issuer);
  CHECK(found[1].debit_account == alice);
  REQUIRE(e->find_transfers(6, 0, &found).is_ok());
  CHECK(found.empty());
}

TEST_CASE("ledger statistics: issued, redeemed, expired, outstanding per day", "[read]") {
  TempDir dir;
  ManualClock clock;
  auto e = open_engine(dir.path(), clock.fn());
  setup(*e);
  const auto day0 = static_cast<std::uint32_t>(clock.now() / 86'400'000'000'000ULL);
  submit_ok(*e, single(1, issuer, alice, 100));
  submit_ok(*e, single(2, issuer, bob, 50));
  submit_ok(*e, single(3, alice, bob, 10));  // member to member: neither
  submit_ok(*e, single(4, bob, redemption, 20, 2));
  clock.advance_s(86'400);
  submit_ok(*e, single(5, alice, redemption, 15, expiry_transfer_code));
  const TransferOutcome last = submit_ok(*e, single(6, issuer, alice, 1));
  std::vector<LedgerDayStats> days;
  REQUIRE(e->ledger_stats(mall, day0, day0 + 1, last.position, &days).is_ok());
  REQUIRE(days.size() == 2);
  CHECK(days[0].day == day0);
  CHECK(days[0].issued == 150);
  CHECK(days[0].redeemed == 20);
  CHECK(days[0].expired == 0);
  CHECK(days[0].transfers == 4);
  CHECK(days[0].outstanding == 130);
  CHECK(days[1].issued == 1);
  CHECK(days[1].expired == 15);
  CHECK(days[1].outstanding == 116);
  CHECK(e->ledger_stats(mall, 5, 4, 0, &days).code() == Status::Code::invalid_argument);
}

TEST_CASE("rebuilt read models equal the incrementally built ones, and verify passes", "[read]") {
  TempDir dir;
  ManualClock clock;
  {
    auto e = open_engine(dir.path(), clock.fn());
    mixed_workload(*e, clock);
  }
  const Dump incremental = dump(dir.path());
  CHECK(incremental.size() > 100);
  VerifyReport report;
  REQUIRE(Engine::verify(dir.path(), &report).is_ok());
  INFO((report.problems.empty() ? std::string() : report.problems.front()));
  CHECK(report.ok);
  CHECK(report.accounts == 4);
  CHECK(report.open_pending_transfers == 0);

  REQUIRE(Engine::rebuild_read_models(dir.path()).is_ok());
  const Dump rebuilt = dump(dir.path());
  CHECK(rebuilt == incremental);
  REQUIRE(Engine::verify(dir.path(), &report).is_ok());
  CHECK(report.ok);
}

TEST_CASE("verify reports read models that lag or differ from the log", "[read]") {
  TempDir dir;
  ManualClock clock;
  {
    auto e = open_engine(dir.path(), clock.fn());
    mixed_workload(*e, clock);
  }
  {
    std::unique_ptr<store::ReadModel> model;
    REQUIRE(store::ReadModel::open(dir.path(), &model).is_ok());
    store::ReadModel& rm = *model;
    std::optional<Account> a;
    std::uint64_t last = 0;
    std::uint64_t debits = 0;
    REQUIRE(rm.account(alice, &a, &last, &debits).is_ok());
    a->credits_posted += 1;  // one point out of thin air in the read model
    store::ReadModel::Writer w(rm);
    w.put_account(*a, last, debits);
    REQUIRE(rm.write(w).is_ok());
  }
  VerifyReport report;
  REQUIRE(Engine::verify(dir.path(), &report).is_ok());
  CHECK_FALSE(report.ok);
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems[0].find("account 21") != std::string::npos);

  {
    std::unique_ptr<store::ReadModel> model;
    REQUIRE(store::ReadModel::open(dir.path(), &model).is_ok());
    REQUIRE(model->drop_all().is_ok());
  }
  REQUIRE(Engine::verify(dir.path(), &report).is_ok());
  CHECK_FALSE(report.ok);
  CHECK(report.problems[0].find("read models end at position 0") != std::string::npos);

  // Opening the engine catches the read models up from the log.
  { auto e = open_engine(dir.path(), clock.fn()); }
  REQUIRE(Engine::verify(dir.path(), &report).is_ok());
  CHECK(report.ok);
}

namespace {

/// Collects feed events; waits until a position has been delivered.
struct Collector {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<FeedEvent> events;
  std::chrono::milliseconds delay{0};

  FeedCallback callback() {
    return [this](const std::vector<FeedEvent>& batch) {
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
      std::lock_guard<std::mutex> lock(mutex);
      events.insert(events.end(), batch.begin(), batch.end());
      cv.notify_all();
    };
  }
  bool wait_for(std::uint64_t position) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(20),
                       [&] { return !events.empty() && events.back().position >= position; });
  }
};

void check_consecutive(const std::vector<FeedEvent>& events, std::uint64_t first) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    INFO("event " << i);
    REQUIRE(events[i].position == first + i);
  }
}

}  // namespace

TEST_CASE("the feed catches up from the log, then goes live, without gaps or repeats", "[feed]") {
  TempDir dir;
  ManualClock clock;
  auto e = open_engine(dir.path(), clock.fn());
  mixed_workload(*e, clock);
  const std::uint64_t before = e->stats().committed_position;
  Collector c;
  std::unique_ptr<Subscription> sub;
  REQUIRE(e->subscribe(0, c.callback(), &sub).is_ok());
  REQUIRE(c.wait_for(before));
  const TransferOutcome live = submit_ok(*e, single(100, issuer, bob, 9));
  REQUIRE(c.wait_for(live.position));
  sub.reset();
  check_consecutive(c.events, 1);
  CHECK(c.events[0].type == FeedEvent::Type::ledger_created);
  CHECK(c.events[0].ledger.code == "MALL");
  CHECK(c.events[1].type == FeedEvent::Type::account_created);
  const FeedEvent& last = c.events.back();
  CHECK(last.type == FeedEvent::Type::transfer);
  CHECK(last.transfer.request.id == 100);
  CHECK(last.transfer.state == TransferState::posted);
  // Event-carried state: the balances after the event, as the accounts have them now.
  std::vector<std::optional<Account>> now;
  REQUIRE(e->lookup_accounts({issuer, bob}, &now).is_ok());
  CHECK(last.debit.account == issuer);
  CHECK(last.debit.debits_posted == now[0]->debits_posted);
  CHECK(last.credit.account == bob);
  CHECK(last.credit.credits_posted == now[1]->credits_posted);
  std::map<TransferKind, int> kinds;
  for (const FeedEvent& ev : c.events) {
    if (ev.type == FeedEvent::Type::transfer) ++kinds[ev.kind];
  }
  CHECK(kinds[TransferKind::expire] == 1);
  CHECK(kinds[TransferKind::post] == 1);
  CHECK(kinds[TransferKind::void_pending] == 1);
}

TEST_CASE("a slow feed subscriber falls back to the log and misses nothing", "[feed]") {
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  o.feed_buffer_events_max = 8;
  o.feed_batch_events_max = 16;
  std::unique_ptr<Engine> e;
  REQUIRE(Engine::open(o, &e).is_ok());
  setup(*e);
  Collector c;
  c.delay = std::chrono::milliseconds(5);
  std::unique_ptr<Subscription> sub;
  REQUIRE(e->subscribe(0, c.callback(), &sub).is_ok());
  const auto started = std::chrono::steady_clock::now();
  std::vector<TransferOutcome> out;
  for (TransferId b = 0; b < 10; ++b) {
    std::vector<Transfer> batch;
    for (TransferId k = 1; k <= 50; ++k) batch.push_back(single(b * 50 + k, issuer, alice, 1));
    REQUIRE(e->submit_transfers(batch, &out).is_ok());
  }
  // Writers did not wait for the subscriber (500 transfers vs 5 ms per delivered batch).
  const auto writing = std::chrono::steady_clock::now() - started;
  const std::uint64_t end = e->stats().committed_position;
  REQUIRE(c.wait_for(end));
  sub.reset();
  check_consecutive(c.events, 1);
  CHECK(c.events.back().credit.credits_posted == 500);
  CHECK(writing < std::chrono::seconds(5));
}

TEST_CASE("a feed subscription resumes after a position across a restart", "[feed]") {
  TempDir dir;
  std::uint64_t middle = 0;
  {
    auto e = open_engine(dir.path());
    setup(*e);
    for (TransferId id = 1; id <= 10; ++id) {
      const TransferOutcome o = submit_ok(*e, single(id, issuer, alice, id));
      if (id == 5) middle = o.position;
    }
  }
  auto e = open_engine(dir.path());
  Collector c;
  std::unique_ptr<Subscription> sub;
  REQUIRE(e->subscribe(middle, c.callback(), &sub).is_ok());
  REQUIRE(c.wait_for(e->stats().committed_position));
  sub.reset();
  check_consecutive(c.events, middle + 1);
  REQUIRE(c.events.size() == 5);
  CHECK(c.events.front().transfer.request.id == 6);
  CHECK(c.events.back().credit.credits_posted == 55);
  CHECK(c.events.front().credit.credits_posted == 21);
}

TEST_CASE("read_events pages the feed in commit order and ends with an empty page", "[feed]") {
  TempDir dir;
  auto e = open_engine(dir.path());
  setup(*e);
  std::uint64_t last = 0;
  for (TransferId id = 1; id <= 7; ++id)
    last = submit_ok(*e, single(id, issuer, alice, id)).position;
  std::optional<Account> ignored;
  REQUIRE(e->read_account(alice, last, &ignored).is_ok());  // the read models include it all

  std::vector<FeedEvent> all;
  std::vector<FeedEvent> page;
  std::uint64_t after = 0;
  for (int pages = 0; pages < 100; ++pages) {
    REQUIRE(e->read_events(after, 3, &page).is_ok());
    if (page.empty()) break;
    CHECK(page.size() <= 3);
    all.insert(all.end(), page.begin(), page.end());
    after = page.back().position;
  }
  REQUIRE(!all.empty());
  check_consecutive(all, 1);
  CHECK(all.back().position == last);
  CHECK(all.back().transfer.request.id == 7);
  CHECK(all.back().credit.credits_posted == 28);

  // Limits are checked; nothing is read.
  page.push_back(all.front());
  CHECK(e->read_events(0, 0, &page).code() == Status::Code::invalid_argument);
  CHECK(page.empty());
  CHECK(e->read_events(0, e->options().history_page_max + 1, &page).code() ==
        Status::Code::invalid_argument);
}

TEST_CASE("an account_closed feed event carries the account's ledger, live and from the log",
          "[feed]") {
  TempDir dir;
  auto e = open_engine(dir.path());
  setup(*e);
  Collector live;
  std::unique_ptr<Subscription> sub;
  REQUIRE(e->subscribe(0, live.callback(), &sub).is_ok());
  std::vector<AccountResult> created;
  REQUIRE(e->create_accounts({{40, mall, AccountKind::member, 0, 5, "dave"}}, &created).is_ok());
  CloseResult r{};
  Account closed;
  REQUIRE(e->close_account(40, &r, &closed).is_ok());
  REQUIRE(r == CloseResult::ok);
  const std::uint64_t end = e->stats().committed_position;
  REQUIRE(live.wait_for(end));
  sub.reset();
  std::vector<FeedEvent> logged;
  REQUIRE(e->read_events(end - 1, 10, &logged).is_ok());
  REQUIRE(logged.size() == 1);
  for (const FeedEvent& ev : {live.events.back(), logged.front()}) {
    CHECK(ev.type == FeedEvent::Type::account_closed);
    CHECK(ev.account.id == 40);
    CHECK(ev.account.ledger == mall);
    CHECK(ev.account.owner == "dave");
    CHECK((ev.account.flags & account_flags::closed) != 0);
  }
}

namespace {

/// Replaces the read models of `dir` with a RocksDB database holding `families` (besides
/// `default`), the format key `format` and some stray keys.
void plant_read_models(const std::string& dir, const std::vector<std::string>& families,
                       const std::string& format) {
  const std::string path = dir + "/read-models";
  REQUIRE(rocksdb::DestroyDB(path, rocksdb::Options()).ok());
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()}};
  for (const std::string& f : families) descriptors.emplace_back(f, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::Open(options, path, descriptors, &handles, &raw).ok());
  REQUIRE(raw->Put(rocksdb::WriteOptions(), "format", format).ok());
  REQUIRE(raw->Put(rocksdb::WriteOptions(), "checkpoint", std::string(8, '\x7f')).ok());
  for (auto* h : handles) {
    REQUIRE(raw->Put(rocksdb::WriteOptions(), h, "stray", "value").ok());
    REQUIRE(raw->DestroyColumnFamilyHandle(h).ok());
  }
  delete raw;
}

}  // namespace

TEST_CASE("read models of another format or family set are dropped and rebuilt at open", "[read]") {
  TempDir dir;
  ManualClock clock;
  {
    auto e = open_engine(dir.path(), clock.fn());
    mixed_workload(*e, clock);
  }
  const Dump incremental = dump(dir.path());
  const std::vector<std::string> current = {"rm_accounts", "rm_transfers", "rm_history",
                                            "rm_stats",    "rm_ledgers",   "rm_expiries"};
  SECTION("the families of format 2 (rm_transfer_ids)") {
    std::vector<std::string> old = current;
    old.insert(old.begin() + 2, "rm_transfer_ids");
    plant_read_models(dir.path(), old, "pointex-read-models-2");
  }
  SECTION("today's families, another format") {
    plant_read_models(dir.path(), current, "pointex-read-models-0");
  }
  SECTION("a family missing") {
    plant_read_models(dir.path(), {"rm_accounts"}, std::string(store::read_models_format));
  }
  {
    auto e = open_engine(dir.path(), clock.fn());
    std::optional<Account> a;
    REQUIRE(e->read_account(alice, 1, &a).is_ok());
    REQUIRE(a.has_value());
    std::vector<std::optional<Account>> live;
    REQUIRE(e->lookup_accounts({alice}, &live).is_ok());
    CHECK(a->credits_posted == live[0]->credits_posted);
    CHECK(a->debits_posted == live[0]->debits_posted);
  }
  CHECK(dump(dir.path()) == incremental);
  VerifyReport report;
  REQUIRE(Engine::verify(dir.path(), &report).is_ok());
  CHECK(report.ok);
}

TEST_CASE("verify changes nothing: read models of another format are a problem, not dropped",
          "[read]") {
  TempDir dir;
  ManualClock clock;
  {
    auto e = open_engine(dir.path(), clock.fn());
    mixed_workload(*e, clock);
  }
  const std::vector<std::string> old = {"rm_accounts", "rm_transfers", "rm_transfer_ids",
                                        "rm_history",  "rm_stats",     "rm_ledgers",
                                        "rm_expiries"};
  plant_read_models(dir.path(), old, "pointex-read-models-2");
  VerifyReport report;
  REQUIRE(Engine::verify(dir.path(), &report).is_ok());
  CHECK_FALSE(report.ok);
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems[0].find("read models cannot be checked") != std::string::npos);
  CHECK(report.events > 50);  // the log itself was audited
  std::vector<std::string> families;
  REQUIRE(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.path() + "/read-models", &families)
          .ok());
  CHECK(families.size() == old.size() + 1);  // still the planted ones

  // The engine drops and rebuilds them; verify then passes.
  { auto e = open_engine(dir.path(), clock.fn()); }
  REQUIRE(Engine::verify(dir.path(), &report).is_ok());
  CHECK(report.ok);
}

using pointex::test::Awaited;
using pointex::test::open_engine_with;

TEST_CASE("an asynchronous read waits in a list, not on a thread, and the projector answers it",
          "[read][async]") {
  TempDir dir;
  auto e = open_engine_with(dir.path(), [](EngineOptions& o) {
    o.read_threads = 1;
    o.read_wait_ms_max = 600'000;  // only the projector's progress can answer these
  });
  setup(*e);
  const std::uint64_t committed = e->stats().committed_position;
  // More waiting reads than reader threads: each waits without a thread of its own.
  constexpr int waiting = 50;
  std::vector<std::unique_ptr<Awaited<std::optional<Account>>>> reads;
  for (int i = 0; i < waiting; ++i) {
    reads.push_back(std::make_unique<Awaited<std::optional<Account>>>());
    e->read_account(alice, committed + 3, reads.back()->callback());
  }
  Awaited<std::vector<TransferInfo>> found;
  e->find_transfers(3, committed + 3, found.callback());
  Awaited<HistoryPage> history;
  HistoryQuery q;
  q.account = alice;
  q.min_position = committed + 3;
  e->account_history(q, history.callback());
  CHECK_FALSE(reads.front()->ready(std::chrono::milliseconds(50)));
  CHECK(e->stats().async_reads == waiting + 2);

  for (TransferId id = 1; id <= 3; ++id) submit_ok(*e, single(id, issuer, alice, 10));
  for (auto& r : reads) {
    const std::optional<Account> a = r->value();
    REQUIRE(a.has_value());
    CHECK(a->credits_posted == 30);  // it read after the position was there
    CHECK(r->thread() != std::this_thread::get_id());
  }
  const std::vector<TransferInfo> transfers = found.value();
  REQUIRE(transfers.size() == 1);
  CHECK(transfers[0].debit_account == issuer);
  CHECK(history.value().events.size() == 3);
  CHECK(e->stats().async_reads == 0);

  // Already there: answered at once (on a reader thread).
  Awaited<std::optional<TransferInfo>> t;
  e->read_transfer(issuer, 2, committed + 2, t.callback());
  const std::optional<TransferInfo> info = t.value();
  REQUIRE(info.has_value());
  CHECK(info->amount == 10);
}

TEST_CASE("an asynchronous read for a position not reached in time answers timed_out",
          "[read][async]") {
  TempDir dir;
  auto e = open_engine_with(dir.path(), [](EngineOptions& o) { o.read_wait_ms_max = 100; });
  setup(*e);
  const std::uint64_t future_position = e->stats().committed_position + 1000;
  Awaited<std::optional<Account>> a;
  e->read_account(alice, future_position, a.callback());
  Awaited<std::vector<LedgerDayStats>> stats;
  e->ledger_stats(mall, 0, 1, future_position, stats.callback());
  REQUIRE(a.ready());
  auto [s, account] = a.get();
  CHECK(s.code() == Status::Code::timed_out);
  CHECK_FALSE(account.has_value());
  CHECK(stats.status().code() == Status::Code::timed_out);
  CHECK(e->stats().async_reads == 0);
  // Bad arguments are answered at once, on the caller's thread.
  Awaited<HistoryPage> bad;
  HistoryQuery q;
  q.account = alice;
  q.limit = 0;
  e->account_history(q, bad.callback());
  REQUIRE(bad.ready(std::chrono::milliseconds(0)));
  CHECK(bad.thread() == std::this_thread::get_id());
  CHECK(bad.status().code() == Status::Code::invalid_argument);
}

TEST_CASE("asynchronous reads past async_reads_max are refused, and closing answers the rest",
          "[read][async]") {
  TempDir dir;
  auto e = open_engine_with(dir.path(), [](EngineOptions& o) {
    o.async_reads_max = 2;
    o.read_wait_ms_max = 600'000;
  });
  setup(*e);
  const std::uint64_t future_position = e->stats().committed_position + 1000;
  Awaited<std::optional<Account>> first;
  Awaited<std::optional<Account>> second;
  Awaited<std::optional<Account>> third;
  e->read_account(alice, future_position, first.callback());
  e->read_account(bob, future_position, second.callback());
  e->read_account(bob, future_position, third.callback());
  REQUIRE(third.ready(std::chrono::milliseconds(0)));
  CHECK(third.status().code() == Status::Code::overloaded);
  CHECK_FALSE(first.ready(std::chrono::milliseconds(20)));
  e.reset();
  REQUIRE(first.ready(std::chrono::milliseconds(0)));
  CHECK(first.status().code() == Status::Code::shutting_down);
  CHECK(second.status().code() == Status::Code::shutting_down);
}

TEST_CASE("read_events with a ledger filter skips other ledgers and bounds what it looks at",
          "[feed]") {
  TempDir dir;
  auto e = open_engine(dir.path());
  setup(*e);
  constexpr LedgerId air = 2;
  LedgerResult lr{};
  REQUIRE(e->create_ledger({air, "AIR", "Air", 0, 0}, &lr).is_ok());
  std::vector<AccountResult> created;
  REQUIRE(e->create_accounts({{30, air, AccountKind::issuer, 0, 0, "air"},
                              {31, air, AccountKind::member, 0, 0, "carol"}},
                             &created)
              .is_ok());
  for (TransferId id = 1; id <= 20; ++id) submit_ok(*e, single(id, issuer, alice, 1));
  Transfer t = single(1, 30, 31, 5);
  t.ledger = air;
  submit_ok(*e, t);
  t.id = 2;
  t.debit_account = 31;
  t.credit_account = 30;
  submit_ok(*e, t);
  CloseResult r{};
  Account closed;
  REQUIRE(e->close_account(31, &r, &closed).is_ok());
  REQUIRE(r == CloseResult::ok);
  const std::uint64_t end = e->stats().committed_position;
  std::optional<Account> ignored;
  REQUIRE(e->read_account(alice, end, &ignored).is_ok());

  EventQuery q;
  q.ledgers = {air};
  q.limit = 100;
  EventPage page;
  REQUIRE(e->read_events(q, &page).is_ok());
  std::vector<FeedEvent::Type> types;
  for (const FeedEvent& ev : page.events) types.push_back(ev.type);
  CHECK(types == std::vector<FeedEvent::Type>{
                     FeedEvent::Type::ledger_created, FeedEvent::Type::account_created,
                     FeedEvent::Type::account_created, FeedEvent::Type::transfer,
                     FeedEvent::Type::transfer, FeedEvent::Type::account_closed});
  CHECK(page.events[3].credit.account == 31);
  CHECK(page.events[3].credit.credits_posted == 5);
  CHECK(page.next_after_position == end);

  // A limit stops right after the last event returned.
  q.limit = 2;
  REQUIRE(e->read_events(q, &page).is_ok());
  REQUIRE(page.events.size() == 2);
  CHECK(page.next_after_position == page.events.back().position);

  // scan_max bounds the events looked at, matching or not; paging on finds everything.
  q.limit = 100;
  q.scan_max = 4;
  std::vector<FeedEvent> all;
  for (int pages = 0; pages < 100 && q.after_position < end; ++pages) {
    REQUIRE(e->read_events(q, &page).is_ok());
    CHECK(page.next_after_position <= q.after_position + 4);
    CHECK(page.next_after_position > q.after_position);
    all.insert(all.end(), page.events.begin(), page.events.end());
    q.after_position = page.next_after_position;
  }
  CHECK(all.size() == 6);
  // At the tail: an empty page that stays where it was.
  REQUIRE(e->read_events(q, &page).is_ok());
  CHECK(page.events.empty());
  CHECK(page.next_after_position == end);

  Awaited<EventPage> async;
  EventQuery mall_only;
  mall_only.ledgers = {mall};
  mall_only.limit = 1000;
  e->read_events(mall_only, async.callback());
  CHECK(async.value().events.size() == 1 + 4 + 20);  // the ledger, its accounts, its transfers
}

TEST_CASE("account_ledgers answers from memory, and from the read models after a reopen",
          "[read]") {
  TempDir dir;
  auto e = open_engine(dir.path());
  setup(*e);
  Awaited<std::vector<LedgerId>> in_memory;
  e->account_ledgers({alice, issuer}, in_memory.callback());
  REQUIRE(in_memory.ready(std::chrono::milliseconds(0)));  // answered on the caller's thread
  CHECK(in_memory.thread() == std::this_thread::get_id());
  CHECK(in_memory.value() == std::vector<LedgerId>{mall, mall});
  Awaited<std::vector<LedgerId>> unknown;  // not in memory: looked up in the read models
  e->account_ledgers({alice, 999, issuer}, unknown.callback());
  CHECK(unknown.value() == std::vector<LedgerId>{mall, 0, mall});
  e.reset();
  e = open_engine(dir.path());  // nothing is loaded up front
  Awaited<std::vector<LedgerId>> loaded;
  e->account_ledgers({bob, 12345}, loaded.callback());
  CHECK(loaded.value() == std::vector<LedgerId>{mall, 0});
}

TEST_CASE("asynchronous reads racing commits from several threads are each answered once, ok",
          "[read][async]") {
  TempDir dir;
  auto e = open_engine_with(dir.path(), [](EngineOptions& o) {
    o.threads = 2;
    o.read_wait_ms_max = 600'000;  // every read's position is reached below
  });
  setup(*e);
  constexpr int threads = 4;
  constexpr int per_thread = 100;
  constexpr std::uint64_t ahead_max = 3;
  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  std::atomic<std::uint64_t> highest{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < threads; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < per_thread; ++i) {
        std::vector<TransferOutcome> out;
        const TransferId id = static_cast<TransferId>(w * per_thread + i + 1);
        if (!e->submit_transfers({single(id, issuer, alice, 1)}, &out).is_ok() ||
            out[0].result != TransferResult::ok) {
          failed.fetch_add(1);
          continue;
        }
        // Some positions already included, some not yet committed: both kinds wait or not.
        const std::uint64_t wanted = out[0].position + static_cast<std::uint64_t>(i) % ahead_max;
        std::uint64_t seen = highest.load();
        while (seen < wanted && !highest.compare_exchange_weak(seen, wanted)) {
        }
        e->read_account(alice, wanted, [&](const Status& s, std::optional<Account> a) {
          if (!s.is_ok() || !a || a->credits_posted == 0) failed.fetch_add(1);
          answered.fetch_add(1);
        });
      }
    });
  }
  for (auto& t : writers) t.join();
  // Commit past the highest position any read asked for.
  for (TransferId id = 10'000; e->stats().committed_position < highest.load(); ++id) {
    submit_ok(*e, single(id, issuer, bob, 1));
  }
  for (int i = 0; i < 3000 && answered.load() < threads * per_thread; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(answered.load() == threads * per_thread);
  CHECK(failed.load() == 0);
  CHECK(e->stats().async_reads == 0);
}

TEST_CASE("history rows group an account's entries per write: pages and lookups cross groups",
          "[read][history]") {
  // Account 1 gets positions 1-300 in three writes (the second one 190 entries: two rows of at
  // most 128), account 2 every third position; the queries must not see where rows begin.
  TempDir dir;
  std::filesystem::create_directories(dir.path());
  std::unique_ptr<store::ReadModel> model;
  REQUIRE(store::ReadModel::open(dir.path(), &model).is_ok());
  auto entry = [](std::uint64_t position) {
    store::HistoryEntry e;
    e.position = position;
    e.timestamp = position * 1000;
    e.debit_account = 9;
    e.transfer_id = position + 7;
    e.code = position % 3 == 0 ? 7 : 1;
    e.amount = position;
    e.after.credits_posted = position * (position + 1) / 2;
    return e;
  };
  std::map<AccountId, std::vector<std::uint64_t>> written;  // positions, oldest first
  for (const auto& [from, to] : {std::pair{1, 10}, std::pair{11, 200}, std::pair{201, 300}}) {
    store::ReadModel::Writer w(*model);
    for (std::uint64_t p = from; p <= static_cast<std::uint64_t>(to); ++p) {
      w.put_history(1, entry(p));
      written[1].push_back(p);
      if (p % 3 == 0) {
        w.put_history(2, entry(p));
        written[2].push_back(p);
      }
    }
    w.set_checkpoint(to);
    REQUIRE(model->write(w).is_ok());
  }
  for (const AccountId account : {AccountId{1}, AccountId{2}}) {
    for (const std::uint64_t before :
         {0, 1, 2, 3, 10, 11, 12, 73, 138, 139, 140, 199, 200, 201, 202, 299, 300, 301, 400}) {
      for (const std::uint16_t code : {0, 7}) {
        for (const std::uint32_t limit : {1U, 3U, 7U, 128U, 1000U}) {
          store::HistoryFilter filter;
          filter.before_position = before;
          filter.code = code;
          std::vector<std::uint64_t> expected;  // newest first
          for (auto p = written[account].rbegin(); p != written[account].rend(); ++p) {
            if ((before == 0 || *p < before) && (code == 0 || entry(*p).code == code)) {
              expected.push_back(*p);
            }
          }
          std::vector<store::HistoryEntry> page;
          std::uint64_t next = 0;
          REQUIRE(model->history(account, filter, limit, &page, &next).is_ok());
          INFO("account " << account << " before " << before << " code " << code << " limit "
                          << limit);
          const std::size_t n = std::min<std::size_t>(limit, expected.size());
          REQUIRE(page.size() == n);
          for (std::size_t i = 0; i < n; ++i) {
            REQUIRE(page[i].position == expected[i]);
            REQUIRE(page[i].timestamp == expected[i] * 1000);
            REQUIRE(page[i].transfer_id == expected[i] + 7);
            REQUIRE(page[i].after.credits_posted == expected[i] * (expected[i] + 1) / 2);
          }
          CHECK(next == (expected.size() > limit ? expected[limit - 1] : 0));
        }
      }
    }
    // A time window [from, to) across a row boundary (account 1: rows 11-138 and 139-200).
    store::HistoryFilter window;
    window.from_ns = 130 * 1000;
    window.to_ns = 150 * 1000;
    std::vector<store::HistoryEntry> page;
    std::uint64_t next = 0;
    REQUIRE(model->history(account, window, 1000, &page, &next).is_ok());
    std::vector<std::uint64_t> got;
    for (const auto& e : page) got.push_back(e.position);
    std::vector<std::uint64_t> expected;
    for (std::uint64_t p = 149; p >= 130; --p) {
      if (account == 1 || p % 3 == 0) expected.push_back(p);
    }
    CHECK(got == expected);
    // Point lookups (the feed's): every position, present or not.
    for (std::uint64_t p = 0; p <= 302; ++p) {
      std::optional<store::HistoryEntry> e;
      REQUIRE(model->history_at(account, p, &e).is_ok());
      const bool present = p >= 1 && p <= 300 && (account == 1 || p % 3 == 0);
      INFO("account " << account << " position " << p);
      REQUIRE(e.has_value() == present);
      if (present) CHECK(e->amount == p);
    }
  }
  // The dump shows one item per entry, as a one-by-one build would have written them.
  std::size_t items = 0;
  REQUIRE(model
              ->dump([&](const std::string& cf, const std::string&, const std::string&) {
                if (cf == "rm_history") ++items;
              })
              .is_ok());
  CHECK(items == written[1].size() + written[2].size());

  // On disk, one row per account per write, split at 128: account 1 has 1 + 2 + 1 rows,
  // account 2 one per write.
  model.reset();  // flushes the memtables (written without a WAL)
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.path() + "/read-models", &names)
              .ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir.path() + "/read-models", families,
                                       &handles, &raw)
              .ok());
  std::size_t rows = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] != "rm_history") continue;
    std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++rows;
  }
  for (rocksdb::ColumnFamilyHandle* h : handles) (void)raw->DestroyColumnFamilyHandle(h);
  delete raw;
  CHECK(rows == 7);
}

TEST_CASE("a writer keeps its buffers between writes and gives them back when trimmed", "[read]") {
  TempDir dir;
  std::filesystem::create_directories(dir.path());
  std::unique_ptr<store::ReadModel> model;
  REQUIRE(store::ReadModel::open(dir.path(), &model).is_ok());
  store::ReadModel::Writer w(*model);
  // Two writes of 100k history entries each (a few MB, like a write under load), through the
  // same writer: what the second reads back is its own, not what the kept buffers held before.
  std::uint64_t position = 0;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 100000; ++i) {
      store::HistoryEntry e;
      e.position = ++position;
      e.timestamp = position;
      e.debit_account = 1;
      e.transfer_id = position;
      e.amount = static_cast<std::uint64_t>(round + 1);
      w.put_history(static_cast<AccountId>(2 + i % 1000), e);
    }
    w.set_checkpoint(position);
    REQUIRE(model->write(w).is_ok());
    w.clear();
    CHECK(w.size() == 0);
    // Cleared, not given back: the next write fills the same memory.
    CHECK(w.retained_bytes() > (4U << 20));
    std::vector<store::HistoryEntry> page;
    std::uint64_t next = 0;
    REQUIRE(model->history(2, store::HistoryFilter{}, 1000, &page, &next).is_ok());
    REQUIRE(page.size() == 100U * static_cast<std::size_t>(round + 1));
    CHECK(page.front().amount == static_cast<std::uint64_t>(round + 1));
    CHECK(page.back().amount == 1);
  }
  w.trim();
  CHECK(w.retained_bytes() < (4U << 20));
  // A trimmed writer writes as before.
  store::HistoryEntry e;
  e.position = ++position;
  e.amount = 3;
  w.put_history(2, e);
  w.set_checkpoint(position);
  REQUIRE(model->write(w).is_ok());
  std::optional<store::HistoryEntry> got;
  REQUIRE(model->history_at(2, position, &got).is_ok());
  REQUIRE(got.has_value());
  CHECK(got->amount == 3);
}

// Check-backs through the engine (docs/workflows.md, "Check-backs"): commit and rollback
// answers, the client resolving first (no check), unknown answers with backoff then parking,
// the operator's resolve, refusals, retries, restarts (timers re-armed, parked cases kept), the
// pure rules, and a SIGKILL after every step of a case.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <pointex/engine.hpp>
#include <string>
#include <thread>
#include <vector>

#include "domain/checkback.hpp"
#include "support.hpp"

using namespace pointex;
using pointex::test::ManualClock;
using pointex::test::TempDir;

namespace {

constexpr LedgerId mall = 1;
constexpr AccountId issuer = 1000;
constexpr AccountId alice = 2001;
constexpr std::uint64_t funded = 1000;

/// A check-back client for tests: records every check and answers from a script (then
/// `otherwise`), on its own thread.
class ScriptedClient final : public CheckBackClient {
 public:
  ScriptedClient() : thread_([this] { run(); }) {}
  ~ScriptedClient() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  void check(const CheckRequest& request, CheckCallback done) override {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(request);
    queue_.push_back(std::move(done));
    wake_.notify_one();
  }
  void script(std::vector<CheckAnswer> answers, CheckAnswer otherwise = CheckAnswer::unknown) {
    std::lock_guard<std::mutex> lock(mutex_);
    script_.assign(answers.begin(), answers.end());
    otherwise_ = otherwise;
  }
  std::vector<CheckRequest> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      CheckCallback done = std::move(queue_.front());
      queue_.pop_front();
      CheckAnswer a = otherwise_;
      if (!script_.empty()) {
        a = script_.front();
        script_.pop_front();
      }
      lock.unlock();
      done(a, a == CheckAnswer::unknown ? "scripted unknown" : "");
      lock.lock();
    }
  }
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<CheckCallback> queue_;
  std::deque<CheckAnswer> script_;
  CheckAnswer otherwise_ = CheckAnswer::unknown;
  std::vector<CheckRequest> requests_;
  bool stopping_ = false;
  std::thread thread_;
};

struct Fixture {
  TempDir dir;
  ManualClock clock;
  std::shared_ptr<ScriptedClient> client = std::make_shared<ScriptedClient>();
  std::unique_ptr<Engine> engine;
  bool manual = true;

  explicit Fixture(bool manual_clock = true) : manual(manual_clock) {
    open();
    setup();
  }
  void open() {
    engine = test::open_engine_with(dir.path(), [&](EngineOptions& o) {
      o.threads = 2;
      if (manual) o.clock_ns = clock.fn();
      o.check_back_client = client;
      o.check_back_backoff_base_ms = 10'000;
      o.check_back_backoff_max_ms = 25'000;
    });
  }
  void reopen() {
    engine.reset();
    open();
  }
  void setup() {
    LedgerResult lr{};
    REQUIRE(engine->create_ledger({mall, "MALL", "Mall points", 0, 0}, &lr).is_ok());
    std::vector<AccountResult> ar;
    REQUIRE(engine
                ->create_accounts({{issuer, mall, AccountKind::issuer, 0, 0, "mall"},
                                   {alice, mall, AccountKind::member,
                                    account_flags::debits_must_not_exceed_credits, 0, "alice"}},
                                  &ar)
                .is_ok());
    std::vector<TransferOutcome> o;
    REQUIRE(
        engine->submit_transfers({{1, issuer, alice, funded, mall, 1, 0, 0, 0, 0}}, &o).is_ok());
    REQUIRE(o[0].result == TransferResult::ok);
  }
  static CheckedTransfer request(TransferId id, std::uint64_t amount = 100) {
    CheckedTransfer c;
    c.transfer = {id, alice, issuer, amount, mall, 7, transfer_flags::pending, 0, 0, 42};
    c.url = "http://127.0.0.1:9/check";
    c.check_after_s = 60;
    c.checks_max = 3;
    return c;
  }
  CheckBackOutcome create(const CheckedTransfer& c) {
    CheckBackOutcome o;
    const Status s = engine->create_checked_transfer(c, &o);
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    return o;
  }
  CheckBackInfo lookup(TransferId id) {
    std::optional<CheckBackInfo> info;
    REQUIRE(engine->lookup_check_back(id, &info).is_ok());
    REQUIRE(info);
    return *info;
  }
  /// Waits until the case reaches `status` with nothing in flight.
  CheckBackInfo wait_for(TransferId id, CheckBackStatus status) {
    for (int i = 0; i < 1000; ++i) {
      const CheckBackInfo info = lookup(id);
      const bool done = info.settled || info.status == CheckBackStatus::parked ||
                        info.status == CheckBackStatus::pending;
      if (info.status == status && done) return info;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("check-back " << id << " never reached " << to_string(status));
    return {};
  }
  /// Waits until the case has recorded `n` checks.
  CheckBackInfo wait_recorded(TransferId id, std::size_t n) {
    CheckBackInfo info = lookup(id);
    for (int i = 0; i < 1000 && info.checks.size() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      info = lookup(id);
    }
    REQUIRE(info.checks.size() == n);
    return info;
  }
  /// Waits until `n` checks were asked.
  void wait_checks(std::size_t n) {
    for (int i = 0; i < 1000 && client->requests().size() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(client->requests().size() == n);
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
  }
};

}  // namespace

TEST_CASE("check-back: commit at the check time posts it, rollback voids it", "[checkback]") {
  Fixture f;
  f.client->script({CheckAnswer::commit, CheckAnswer::rollback});
  CheckBackOutcome o = f.create(Fixture::request(10));
  REQUIRE(o.result == CheckBackResult::ok);
  REQUIRE(o.check_back);
  CHECK(o.check_back->status == CheckBackStatus::pending);
  CHECK(o.check_back->next_check_at == f.clock.now() + 60'000'000'000ULL);
  CHECK(f.account(alice).debits_pending == 100);
  // Retries answer the case; another body with the id is refused.
  CHECK(f.create(Fixture::request(10)).result == CheckBackResult::exists);
  CHECK(f.create(Fixture::request(10, 101)).result ==
        CheckBackResult::exists_with_different_fields);
  // Before the check time nothing is asked.
  f.clock.advance_s(59);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(f.client->requests().empty());
  f.clock.advance_s(1);
  f.wait_checks(1);
  const CheckRequest asked = f.client->requests()[0];
  CHECK(asked.transfer.id == 10);
  CHECK(asked.url == "http://127.0.0.1:9/check");
  CHECK(asked.attempt == 1);
  CheckBackInfo info = f.wait_for(10, CheckBackStatus::committed);
  CHECK_FALSE(info.by_client);
  REQUIRE(info.checks.size() == 1);
  CHECK(info.checks[0].answer == CheckAnswer::commit);
  CHECK(f.account(alice).balance() == static_cast<std::int64_t>(funded) - 100);
  CHECK(f.account(alice).debits_pending == 0);

  REQUIRE(f.create(Fixture::request(11)).result == CheckBackResult::ok);
  f.clock.advance_s(60);
  info = f.wait_for(11, CheckBackStatus::rolled_back);
  CHECK_FALSE(info.by_client);
  CHECK(f.account(alice).balance() == static_cast<std::int64_t>(funded) - 100);
  CHECK(f.account(alice).debits_pending == 0);
  f.verify();
}

TEST_CASE("check-back: the client posting or voiding first means no check", "[checkback]") {
  Fixture f;
  f.client->script({}, CheckAnswer::commit);
  REQUIRE(f.create(Fixture::request(20)).result == CheckBackResult::ok);
  REQUIRE(f.create(Fixture::request(21)).result == CheckBackResult::ok);
  std::vector<TransferOutcome> t;
  REQUIRE(f.engine
              ->submit_transfers({{30, alice, 0, 0, 0, 0, transfer_flags::post_pending, 20, 0, 0},
                                  {31, alice, 0, 0, 0, 0, transfer_flags::void_pending, 21, 0, 0}},
                                 &t)
              .is_ok());
  REQUIRE(t[0].result == TransferResult::ok);
  REQUIRE(t[1].result == TransferResult::ok);
  f.clock.advance_s(60);
  CheckBackInfo info = f.wait_for(20, CheckBackStatus::committed);
  CHECK(info.by_client);
  CHECK(info.checks.empty());
  info = f.wait_for(21, CheckBackStatus::rolled_back);
  CHECK(info.by_client);
  CHECK(f.client->requests().empty());
  CHECK(f.account(alice).balance() == static_cast<std::int64_t>(funded) - 100);
  f.verify();
}

TEST_CASE("check-back: unknown answers back off, then the case is voided and parked",
          "[checkback]") {
  Fixture f;
  f.client->script({}, CheckAnswer::unknown);
  REQUIRE(f.create(Fixture::request(40)).result == CheckBackResult::ok);
  f.clock.advance_s(60);
  f.wait_checks(1);
  CheckBackInfo info = f.wait_recorded(40, 1);
  CHECK(info.status == CheckBackStatus::pending);
  // The next check waits the base (10 s), then twice that (capped at 25 s).
  CHECK(info.next_check_at == f.clock.now() + 10'000'000'000ULL);
  f.clock.advance_s(9);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(f.client->requests().size() == 1);
  f.clock.advance_s(1);
  f.wait_checks(2);
  // A restart keeps the count and the next time.
  f.wait_recorded(40, 2);
  CHECK(f.lookup(40).next_check_at == f.clock.now() + 20'000'000'000ULL);
  f.reopen();
  f.clock.advance_s(20);
  f.wait_checks(3);
  info = f.wait_for(40, CheckBackStatus::parked);
  CHECK(info.checks.size() == 3);
  CHECK(info.checks[2].detail == "scripted unknown");
  CHECK_FALSE(info.settled);
  CHECK(f.account(alice).debits_pending == 0);  // voided
  CHECK(f.account(alice).balance() == static_cast<std::int64_t>(funded));
  std::vector<CheckBackInfo> parked;
  REQUIRE(f.engine->parked_check_backs(&parked).is_ok());
  REQUIRE(parked.size() == 1);
  CHECK(parked[0].request.transfer.id == 40);
  // Parked survives a restart; the operator resolves it once.
  f.reopen();
  REQUIRE(f.engine->parked_check_backs(&parked).is_ok());
  CHECK(parked.size() == 1);
  CheckBackOutcome r;
  REQUIRE(f.engine->resolve_check_back(40, std::string(check_back_note_bytes_max + 1, 'n'), &r)
              .is_ok());
  CHECK(r.result == CheckBackResult::note_too_long);
  REQUIRE(f.engine->resolve_check_back(99, "x", &r).is_ok());
  CHECK(r.result == CheckBackResult::not_found);
  REQUIRE(f.engine->resolve_check_back(40, "refunded by hand, ticket 7", &r).is_ok());
  REQUIRE(r.result == CheckBackResult::ok);
  CHECK(r.check_back->status == CheckBackStatus::resolved);
  CHECK(r.check_back->note == "refunded by hand, ticket 7");
  CHECK(r.check_back->settled);
  REQUIRE(f.engine->resolve_check_back(40, "again", &r).is_ok());
  CHECK(r.result == CheckBackResult::not_parked);
  REQUIRE(f.engine->parked_check_backs(&parked).is_ok());
  CHECK(parked.empty());
  CHECK(f.client->requests().size() == 3);
  f.verify();
}

TEST_CASE("check-back: refusals store nothing, a refused transfer fails the case", "[checkback]") {
  Fixture f;
  const auto refused = [&](CheckedTransfer c) { return f.create(c).result; };
  CheckedTransfer c = Fixture::request(50);
  c.transfer.flags = 0;
  CHECK(refused(c) == CheckBackResult::transfer_invalid);
  c = Fixture::request(50);
  c.transfer.timeout_s = 5;
  CHECK(refused(c) == CheckBackResult::transfer_invalid);
  c = Fixture::request(50);
  c.transfer.amount = 0;
  CheckBackOutcome o = f.create(c);
  CHECK(o.result == CheckBackResult::transfer_invalid);
  CHECK(o.transfer_result == TransferResult::amount_must_not_be_zero);
  c = Fixture::request(50);
  c.transfer.code = order_transfer_code;
  CHECK(f.create(c).transfer_result == TransferResult::code_reserved);
  CHECK(refused(Fixture::request(process_id_max + 1)) == CheckBackResult::id_reserved);
  c = Fixture::request(50);
  c.url = "https://example.com/x";
  CHECK(refused(c) == CheckBackResult::url_invalid);
  c = Fixture::request(50);
  c.check_after_s = 0;
  CHECK(refused(c) == CheckBackResult::check_after_invalid);
  c = Fixture::request(50);
  c.checks_max = check_back_checks_max + 1;
  CHECK(refused(c) == CheckBackResult::checks_max_invalid);
  std::optional<CheckBackInfo> none;
  REQUIRE(f.engine->lookup_check_back(50, &none).is_ok());
  CHECK(!none);
  // The transfer itself refused (not enough points): the case fails, nothing pending.
  o = f.create(Fixture::request(51, funded + 1));
  REQUIRE(o.result == CheckBackResult::ok);
  CHECK(o.check_back->status == CheckBackStatus::failed);
  CHECK(o.check_back->transfer_result == TransferResult::exceeds_credits);
  CHECK(o.check_back->settled);
  CHECK(f.account(alice).debits_pending == 0);
  // A checks_max of 0 takes the default, and a retry of it is the same request.
  c = Fixture::request(52);
  c.checks_max = 0;
  o = f.create(c);
  REQUIRE(o.result == CheckBackResult::ok);
  CHECK(o.check_back->request.checks_max == 5);
  CHECK(f.create(c).result == CheckBackResult::exists);
  std::vector<TransferOutcome> t;
  REQUIRE(
      f.engine
          ->submit_transfers({{60, alice, 0, 0, 0, 0, transfer_flags::void_pending, 52, 0, 0}}, &t)
          .is_ok());
  f.clock.advance_s(60);
  f.wait_for(52, CheckBackStatus::rolled_back);
  f.verify();
}

TEST_CASE("check-back options and a missing client are refused", "[checkback]") {
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  std::unique_ptr<Engine> engine;
  o.check_back_checks_default = 0;
  CHECK(Engine::open(o, &engine).code() == Status::Code::invalid_argument);
  o.check_back_checks_default = 5;
  o.check_back_backoff_base_ms = 10;
  o.check_back_backoff_max_ms = 9;
  CHECK(Engine::open(o, &engine).code() == Status::Code::invalid_argument);
  o.check_back_backoff_max_ms = 10;
  REQUIRE(Engine::open(o, &engine).is_ok());
  CheckBackOutcome out;
  CHECK(engine->create_checked_transfer(Fixture::request(1), &out).code() ==
        Status::Code::invalid_argument);
}

TEST_CASE("check-back rules: backoff, the last answer's decision, the fold's refusals",
          "[checkback]") {
  using namespace pointex::domain;
  CheckState st;
  st.started.request = Fixture::request(7);
  st.made = true;
  st.next_check_at = 100;
  CHECK_FALSE(check_due(st, 99));
  CHECK(check_due(st, 100));
  CheckAnswered a = decide_check(st, CheckAnswer::unknown, "x", 1'000, 500, 1'500);
  CHECK_FALSE(a.decided);
  CHECK(a.step.check.attempt == 1);
  CHECK(a.step.next_check_at == 1'000 + 500'000'000ULL);
  st.checks.push_back(a.step.check);
  a = decide_check(st, CheckAnswer::unknown, "x", 1'000, 500, 1'500);
  CHECK(a.step.next_check_at == 1'000 + 1'000'000'000ULL);
  st.checks.push_back(a.step.check);
  a = decide_check(st, CheckAnswer::unknown, "x", 1'000, 500, 1'500);
  REQUIRE(a.decided);  // the third of three
  CHECK(a.decided->outcome == CheckOutcome::park);
  CHECK(decide_check(st, CheckAnswer::commit, "", 0, 1, 1).decided->outcome ==
        CheckOutcome::commit);
  CHECK(decide_from_client(TransferState::pending) == std::nullopt);
  CHECK(decide_from_client(TransferState::expired)->outcome == CheckOutcome::client_rolled_back);
  bool posted = false;
  CHECK(
      check_back_resolution_final(true, TransferResult::pending_transfer_already_voided, &posted));
  CHECK_FALSE(posted);
  CHECK_FALSE(check_back_resolution_final(true, TransferResult::exceeds_credits, &posted));

  // Folds: a check before the transfer is made, a skipped attempt, and failing after making
  // are refused; a resolve of a case that is not parked too.
  ProcessRecord r{ProcessKind::check_back, 7, {}};
  CheckStarted s;
  s.request = Fixture::request(7);
  s.first_check_at = 100;
  append_step(r, {ProcessKind::check_back, 7, 0, encode_step(s), 1}, 1);
  ProcessRecord bad = r;
  CheckChecked c;
  c.check.attempt = 1;
  append_step(bad, {ProcessKind::check_back, 7, 2, encode_step(c), 2}, 2);
  CheckState out;
  CHECK(fold_check_back(bad, &out) == DecodeError::invalid_field);
  append_step(r, {ProcessKind::check_back, 7, 1, encode_empty_check_step(), 2}, 2);
  bad = r;
  c.check.attempt = 2;
  append_step(bad, {ProcessKind::check_back, 7, 2, encode_step(c), 3}, 3);
  CHECK(fold_check_back(bad, &out) == DecodeError::invalid_field);
  bad = r;
  append_step(bad,
              {ProcessKind::check_back, 7, 3,
               encode_step(CheckDecided{CheckOutcome::fail, TransferResult::exceeds_credits}), 3},
              3);
  CHECK(fold_check_back(bad, &out) == DecodeError::invalid_field);
  bad = r;
  append_step(bad, {ProcessKind::check_back, 7, 3, encode_step(CheckDecided{}), 3}, 3);
  append_step(bad, {ProcessKind::check_back, 7, 4, encode_step(CheckCompleted{true}), 4}, 4);
  REQUIRE(fold_check_back(bad, &out) == DecodeError::none);
  CHECK(check_back_finished(bad));
  append_step(bad, {ProcessKind::check_back, 7, 5, encode_step(CheckResolved{"n"}), 5}, 5);
  CHECK(fold_check_back(bad, &out) == DecodeError::invalid_field);
}

namespace {

bool run_check_child(const std::string& dir, const std::string& step, const std::string& answer) {
  return test::killed_child(POINTEX_CHECKBACK_CRASH_CHILD, {dir, answer}, "check:" + step);
}

}  // namespace

TEST_CASE("crash after every step of a check-back: it completes or parks, with conservation",
          "[checkback]") {
  struct Case {
    const char* step;
    const char* answer;
    CheckBackStatus want;
  };
  const std::vector<Case> cases = {
      {"started", "commit", CheckBackStatus::committed},
      {"made", "commit", CheckBackStatus::committed},
      {"checked", "commit", CheckBackStatus::committed},
      {"decided", "commit", CheckBackStatus::committed},
      {"resolved_transfer", "commit", CheckBackStatus::committed},
      {"completed", "commit", CheckBackStatus::committed},
      {"checked", "rollback", CheckBackStatus::rolled_back},
      {"resolved_transfer", "rollback", CheckBackStatus::rolled_back},
      {"checked", "unknown", CheckBackStatus::parked},
      {"decided", "unknown", CheckBackStatus::parked},
      {"completed", "unknown", CheckBackStatus::parked},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.step << " " << c.answer) {
      Fixture f(/*manual_clock=*/false);
      f.engine.reset();
      REQUIRE(run_check_child(f.dir.path(), c.step, c.answer));
      // After the restart the checks answer as the child's did.
      const std::string a = c.answer;
      f.client->script({}, a == "commit"     ? CheckAnswer::commit
                           : a == "rollback" ? CheckAnswer::rollback
                                             : CheckAnswer::unknown);
      f.open();
      CheckedTransfer r;
      r.transfer = {77, alice, issuer, 100, mall, 7, transfer_flags::pending, 0, 0, 0};
      r.url = "http://127.0.0.1:9/check";
      r.check_after_s = 1;
      r.checks_max = 2;
      REQUIRE(f.create(r).result == CheckBackResult::exists);
      const CheckBackInfo info = f.wait_for(77, c.want);
      const bool posted = c.want == CheckBackStatus::committed;
      CHECK(f.account(alice).balance() == static_cast<std::int64_t>(funded) - (posted ? 100 : 0));
      CHECK(f.account(alice).debits_pending == 0);
      CHECK(info.checks.size() <= 2);
      f.verify();
    }
  }
}

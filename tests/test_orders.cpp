// Points + cash orders through the engine (docs/workflows.md, "Orders"): the happy path with
// balances, cash 0, payment failure, the deadline, cancels, retries and replays, late results,
// unknown payments, refusals, two orders racing for the same points, restarts (a waiting order
// and its timer survive), the simulated provider, and a SIGKILL after every order step.

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

#include "engine_test_access.hpp"
#include "support.hpp"

using namespace pointex;
using pointex::test::Awaited;
using pointex::test::ManualClock;
using pointex::test::TempDir;

namespace {

constexpr LedgerId mall = 1;
constexpr AccountId issuer = 1000;
constexpr AccountId shop = 1500;
constexpr AccountId alice = 2001;
constexpr AccountId bob = 2002;
constexpr std::uint64_t funded = 1000;

/// A provider for tests: records every creation and answers it from its own thread, created
/// (with a reference) or refused; results are the test's to report (Engine::payment_result).
class TestProvider final : public PaymentProvider {
 public:
  explicit TestProvider(std::string name, bool creates = true)
      : name_(std::move(name)), creates_(creates), thread_([this] { run(); }) {}
  ~TestProvider() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  const std::string& name() const override { return name_; }
  void create_payment(const PaymentRequest& request, PaymentCreationCallback done) override {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(request);
    queue_.push_back(std::move(done));
    wake_.notify_one();
  }
  std::vector<PaymentRequest> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      PaymentCreationCallback done = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      if (creates_) {
        done({true, "ref-" + std::to_string(++created_), {}});
      } else {
        done({false, {}, "card declined by the test provider"});
      }
      lock.lock();
    }
  }
  const std::string name_;
  const bool creates_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<PaymentCreationCallback> queue_;
  std::vector<PaymentRequest> requests_;
  int created_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

struct Fixture {
  TempDir dir;
  ManualClock clock;
  std::shared_ptr<TestProvider> acme = std::make_shared<TestProvider>("acme");
  std::shared_ptr<TestProvider> refusing = std::make_shared<TestProvider>("refusing", false);
  std::unique_ptr<Engine> engine;

  Fixture() {
    open();
    setup();
  }
  void open() {
    engine = test::open_engine_with(dir.path(), [&](EngineOptions& o) {
      o.threads = 2;
      o.clock_ns = clock.fn();
      o.payment_providers = {acme, refusing};
      o.order_timeout_s_default = 60;
      o.order_timeout_s_max = 3600;
    });
  }
  void reopen() {
    engine.reset();
    open();
  }
  void setup() {
    LedgerResult lr{};
    REQUIRE(engine->create_ledger({mall, "MALL", "Mall points", 0, 0}, &lr).is_ok());
    const std::uint32_t member = account_flags::debits_must_not_exceed_credits;
    std::vector<AccountResult> ar;
    REQUIRE(engine
                ->create_accounts({{issuer, mall, AccountKind::issuer, 0, 0, "mall"},
                                   {shop, mall, AccountKind::member, 0, 0, "shop"},
                                   {alice, mall, AccountKind::member, member, 0, "alice"},
                                   {bob, mall, AccountKind::member, member, 0, "bob"}},
                                  &ar)
                .is_ok());
    for (AccountResult r : ar) REQUIRE(r == AccountResult::ok);
    std::vector<TransferOutcome> o;
    REQUIRE(engine
                ->submit_transfers({{1, issuer, alice, funded, mall, 1, 0, 0, 0, 0},
                                    {2, issuer, bob, funded, mall, 1, 0, 0, 0, 0}},
                                   &o)
                .is_ok());
    REQUIRE(o[0].result == TransferResult::ok);
  }

  OrderOutcome create(const Order& order) {
    OrderOutcome o;
    const Status s = engine->create_order(order, &o);
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    return o;
  }
  OrderOutcome cancel(OrderId id) {
    OrderOutcome o;
    REQUIRE(engine->cancel_order(id, &o).is_ok());
    return o;
  }
  PaymentResultAnswer pay(const OrderOutcome& created, PaymentStatus status,
                          const std::string& provider = "acme") {
    REQUIRE(created.order);
    PaymentResultAnswer a;
    REQUIRE(engine->payment_result(provider, created.order->payment_id, status, &a).is_ok());
    return a;
  }
  OrderInfo lookup(OrderId id) {
    std::optional<OrderInfo> info;
    REQUIRE(engine->lookup_order(id, &info).is_ok());
    REQUIRE(info);
    return *info;
  }
  /// Waits (the engine's timer runs on its own thread) until the order has `status`.
  OrderInfo wait_for(OrderId id, OrderStatus status) {
    for (int i = 0; i < 500; ++i) {
      const OrderInfo info = lookup(id);
      if (info.status == status && info.step == OrderStep::completed) return info;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("order " << id << " never reached " << to_string(status));
    return {};
  }
  Account account(AccountId id) {
    std::vector<std::optional<Account>> a;
    REQUIRE(engine->lookup_accounts({id}, &a).is_ok());
    REQUIRE(a[0]);
    return *a[0];
  }
  /// Closes the engine and audits the data dir: conservation, no order half done.
  void verify(std::uint64_t orders) {
    engine.reset();
    const VerifyReport report = test::verified(dir.path());
    CHECK(report.orders == orders);
    CHECK(report.open_orders == 0);
    CHECK(report.open_pending_transfers == 0);
  }
};

Order order_of(OrderId id, AccountId member = alice, std::uint64_t points = 300,
               std::uint64_t cash = 1999) {
  Order o;
  o.id = id;
  o.member_account = member;
  o.merchant_account = shop;
  o.points = points;
  o.cash = {cash, cash != 0 ? "CNY" : ""};
  return o;
}

}  // namespace

TEST_CASE("order: points reserved, paid, posted, and retries and replays change nothing",
          "[orders]") {
  Fixture f;
  OrderOutcome o = f.create(order_of(1));
  CHECK(o.result == OrderResult::ok);
  REQUIRE(o.order);
  CHECK(o.order->status == OrderStatus::awaiting_payment);
  CHECK(o.order->provider == "acme");  // the first provider is the default
  CHECK(o.order->payment_reference == "ref-1");
  CHECK(o.order->timeout_s == 60);
  CHECK(o.order->deadline == f.clock.now() + 60'000'000'000ULL);
  // The provider was asked for the cash part, with the order's payment id.
  REQUIRE(f.acme->requests().size() == 1);
  const PaymentRequest request = f.acme->requests()[0];
  CHECK(request.payment_id == o.order->payment_id);
  CHECK(request.order_id == 1);
  CHECK(request.amount == 1999);
  CHECK(request.currency == "CNY");
  // The points are reserved: pending on both sides, with the order's code.
  CHECK(f.account(alice).debits_pending == 300);
  CHECK(f.account(alice).available() == funded - 300);
  CHECK(f.account(shop).credits_pending == 300);
  std::optional<TransferInfo> reservation;
  REQUIRE(f.engine->lookup_transfer(alice, 1, &reservation).is_ok());
  REQUIRE(reservation);
  CHECK(reservation->code == order_transfer_code);
  CHECK(reservation->state == TransferState::pending);
  // A retry while it waits answers its state; another body with the id is refused.
  CHECK(f.create(order_of(1)).result == OrderResult::exists);
  CHECK(f.create(order_of(1, alice, 301)).result == OrderResult::exists_with_different_fields);
  // The payment succeeds: the points are the shop's.
  PaymentResultAnswer a = f.pay(o, PaymentStatus::succeeded);
  CHECK(a.outcome == PaymentResultOutcome::applied);
  const OrderInfo done = f.wait_for(1, OrderStatus::completed);
  CHECK(done.payment_status == PaymentStatus::succeeded);
  CHECK(f.account(alice).balance() == funded - 300);
  CHECK(f.account(alice).debits_pending == 0);
  CHECK(f.account(shop).balance() == 300);
  CHECK(f.account(shop).credits_pending == 0);
  // Every step and its time.
  std::vector<OrderStep> steps;
  for (const OrderInfo::StepTime& t : done.steps) steps.push_back(t.step);
  CHECK(steps == std::vector<OrderStep>{OrderStep::started, OrderStep::reserved,
                                        OrderStep::payment_created, OrderStep::decided,
                                        OrderStep::completed});
  CHECK(done.steps.front().timestamp == done.created_at);
  // Replays: of the callback, of the order; nothing moves twice.
  a = f.pay(o, PaymentStatus::succeeded);
  CHECK(a.outcome == PaymentResultOutcome::replayed);
  REQUIRE(a.order);
  CHECK(a.order->status == OrderStatus::completed);
  o = f.create(order_of(1));
  CHECK(o.result == OrderResult::exists);
  CHECK(o.order->status == OrderStatus::completed);
  CHECK(f.account(shop).balance() == 300);
  CHECK(f.acme->requests().size() == 1);
  // A cancel after the success is refused; nothing changes.
  o = f.cancel(1);
  CHECK(o.result == OrderResult::already_completed);
  CHECK(o.order->status == OrderStatus::completed);
  CHECK(f.account(shop).balance() == 300);
  // After a restart, from the read models.
  f.reopen();
  CHECK(f.create(order_of(1)).result == OrderResult::exists);
  CHECK(f.pay(o, PaymentStatus::succeeded).outcome == PaymentResultOutcome::replayed);
  CHECK(f.lookup(1).status == OrderStatus::completed);
  f.verify(1);
}

TEST_CASE("order: cash 0 is points alone, posted at once", "[orders]") {
  Fixture f;
  const OrderOutcome o = f.create(order_of(2, alice, 250, 0));
  CHECK(o.result == OrderResult::ok);
  REQUIRE(o.order);
  CHECK(o.order->status == OrderStatus::completed);
  CHECK(o.order->step == OrderStep::completed);
  CHECK(o.order->payment_id.empty());
  CHECK(o.order->provider.empty());
  CHECK(f.acme->requests().empty());
  CHECK(f.account(alice).balance() == funded - 250);
  CHECK(f.account(shop).balance() == 250);
  f.verify(1);
}

TEST_CASE("order: a failed payment voids the points", "[orders]") {
  Fixture f;
  const OrderOutcome o = f.create(order_of(3));
  CHECK(f.pay(o, PaymentStatus::failed).outcome == PaymentResultOutcome::applied);
  const OrderInfo info = f.wait_for(3, OrderStatus::failed);
  CHECK(info.failure == OrderFailure::payment_failed);
  CHECK(f.account(alice).balance() == funded);
  CHECK(f.account(alice).debits_pending == 0);
  CHECK(f.account(shop).balance() == 0);
  std::optional<TransferInfo> reservation;
  REQUIRE(f.engine->lookup_transfer(alice, 3, &reservation).is_ok());
  CHECK(reservation->state == TransferState::voided);
  // A replay of the failure; a success after it is late (recorded, nothing moves).
  CHECK(f.pay(o, PaymentStatus::failed).outcome == PaymentResultOutcome::replayed);
  CHECK(f.pay(o, PaymentStatus::succeeded).outcome == PaymentResultOutcome::late);
  CHECK(f.lookup(3).refund_due);
  CHECK(f.account(shop).balance() == 0);
  f.verify(1);
}

TEST_CASE("order: a payment the provider cannot create fails the order", "[orders]") {
  Fixture f;
  Order order = order_of(4);
  order.provider = "refusing";
  const OrderOutcome o = f.create(order);
  CHECK(o.result == OrderResult::ok);
  REQUIRE(o.order);
  CHECK(o.order->status == OrderStatus::failed);
  CHECK(o.order->failure == OrderFailure::payment_not_created);
  CHECK(o.order->payment_error == "card declined by the test provider");
  CHECK(f.account(alice).debits_pending == 0);
  CHECK(f.account(alice).balance() == funded);
  f.verify(1);
}

TEST_CASE("order: the deadline expires it, also after a restart, and a late success is recorded",
          "[orders]") {
  Fixture f;
  Order order = order_of(5);
  order.timeout_s = 30;
  const OrderOutcome o = f.create(order);
  CHECK(o.order->status == OrderStatus::awaiting_payment);
  CHECK(f.create(order_of(6)).order->status == OrderStatus::awaiting_payment);  // 60 s
  f.clock.advance_s(29);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(f.lookup(5).status == OrderStatus::awaiting_payment);
  f.clock.advance_s(1);
  OrderInfo info = f.wait_for(5, OrderStatus::expired);
  CHECK(f.account(alice).debits_pending == 300);  // order 6 still holds its points
  // A restart re-arms order 6's timer from its durable deadline.
  f.reopen();
  CHECK(f.lookup(6).status == OrderStatus::awaiting_payment);
  f.clock.advance_s(31);
  f.wait_for(6, OrderStatus::expired);
  CHECK(f.account(alice).debits_pending == 0);
  CHECK(f.account(alice).balance() == funded);
  // The provider's success comes after the deadline: recorded once, points stay voided.
  PaymentResultAnswer a = f.pay(o, PaymentStatus::succeeded);
  CHECK(a.outcome == PaymentResultOutcome::late);
  REQUIRE(a.order);
  CHECK(a.order->refund_due);
  CHECK(a.order->status == OrderStatus::expired);
  CHECK(f.pay(o, PaymentStatus::succeeded).outcome == PaymentResultOutcome::late);
  info = f.lookup(5);
  CHECK(info.steps.size() == 6);  // one late_result, not two
  CHECK(info.steps.back().step == OrderStep::late_result);
  CHECK(info.steps.back().late_status == PaymentStatus::succeeded);
  CHECK(f.account(shop).balance() == 0);
  CHECK(f.engine->stats().payment_results_late == 1);
  f.verify(2);
}

TEST_CASE("order: a late result of an order that finished before a restart, also recovered",
          "[orders]") {
  Fixture f;
  const OrderOutcome o = f.create(order_of(40));
  REQUIRE(f.cancel(40).result == OrderResult::ok);
  // Closed cleanly: the read models hold the finished order, and it is not in memory after.
  f.reopen();
  // The read models stop here: the late step lives in the log's tail only, so the next open
  // must take a step of an order that was not open at the checkpoint.
  EngineTestAccess::read_model(*f.engine).fail_writes_after(0);
  CHECK(f.pay(o, PaymentStatus::succeeded).outcome == PaymentResultOutcome::late);
  CHECK(f.lookup(40).refund_due);
  f.reopen();
  const OrderInfo info = f.lookup(40);
  CHECK(info.status == OrderStatus::cancelled);
  CHECK(info.refund_due);
  CHECK(info.steps.back().step == OrderStep::late_result);
  CHECK(f.pay(o, PaymentStatus::succeeded).outcome == PaymentResultOutcome::late);
  CHECK(f.lookup(40).steps.size() == info.steps.size());  // recorded once
  CHECK(f.engine->stats().open_processes == 0);
  f.verify(1);
}

TEST_CASE("order: cancel before the payment voids the points, after it is refused", "[orders]") {
  Fixture f;
  const OrderOutcome o = f.create(order_of(7));
  OrderOutcome c = f.cancel(7);
  CHECK(c.result == OrderResult::ok);
  REQUIRE(c.order);
  CHECK(c.order->status == OrderStatus::cancelled);
  CHECK(c.order->step == OrderStep::completed);  // answered once the points are back
  CHECK(f.account(alice).debits_pending == 0);
  CHECK(f.account(alice).balance() == funded);
  CHECK(f.cancel(7).result == OrderResult::exists);
  CHECK(f.cancel(99).result == OrderResult::not_found);
  // The payment's success after the cancel is late: the cash must be refunded.
  CHECK(f.pay(o, PaymentStatus::succeeded).outcome == PaymentResultOutcome::late);
  CHECK(f.lookup(7).refund_due);
  CHECK(f.account(shop).balance() == 0);
  // A failed order cannot be cancelled either.
  const OrderOutcome failed = f.create(order_of(8));
  f.pay(failed, PaymentStatus::failed);
  f.wait_for(8, OrderStatus::failed);
  CHECK(f.cancel(8).result == OrderResult::already_finished);
  f.verify(2);
}

TEST_CASE("order: without enough points it fails at once, nothing pending", "[orders]") {
  Fixture f;
  const OrderOutcome o = f.create(order_of(9, alice, funded + 1));
  CHECK(o.result == OrderResult::ok);
  REQUIRE(o.order);
  CHECK(o.order->status == OrderStatus::failed);
  CHECK(o.order->failure == OrderFailure::reservation_refused);
  CHECK(o.order->reservation_result == TransferResult::exceeds_credits);
  CHECK(o.order->payment_id.empty() == false);
  CHECK(f.acme->requests().empty());  // no payment was asked for
  CHECK(f.account(alice).debits_pending == 0);
  // The failure is the order's: a retry answers it, a payment result for it is unknown.
  CHECK(f.create(order_of(9, alice, funded + 1)).order->status == OrderStatus::failed);
  PaymentResultAnswer a;
  REQUIRE(
      f.engine->payment_result("acme", o.order->payment_id, PaymentStatus::succeeded, &a).is_ok());
  CHECK(a.outcome == PaymentResultOutcome::payment_not_found);
  // A client transfer holding the id on the member's account makes the reservation fail.
  std::vector<TransferOutcome> t;
  REQUIRE(f.engine->submit_transfers({{10, alice, bob, 5, mall, 1, 0, 0, 0, 0}}, &t).is_ok());
  const OrderOutcome taken = f.create(order_of(10));
  CHECK(taken.order->reservation_result == TransferResult::exists_with_different_fields);
  f.verify(2);
}

TEST_CASE("order: refusals before it starts store nothing", "[orders]") {
  Fixture f;
  const auto refused = [&](const Order& o) { return f.create(o).result; };
  CHECK(refused(order_of(0)) == OrderResult::id_must_not_be_zero);
  CHECK(refused(order_of(workflow_transfer_id_min)) == OrderResult::id_reserved);
  CHECK(refused(order_of(1, alice, 0)) == OrderResult::points_must_not_be_zero);
  CHECK(refused(order_of(1, shop)) == OrderResult::accounts_must_be_different);
  CHECK(refused(order_of(1, 77)) == OrderResult::member_account_not_found);
  Order o = order_of(1);
  o.merchant_account = 78;
  CHECK(refused(o) == OrderResult::merchant_account_not_found);
  o = order_of(1);
  o.cash.currency = "yen";
  CHECK(refused(o) == OrderResult::currency_invalid);
  o = order_of(1);
  o.timeout_s = 3601;
  CHECK(refused(o) == OrderResult::timeout_too_long);
  o = order_of(1);
  o.provider = "nobody";
  CHECK(refused(o) == OrderResult::provider_not_found);
  LedgerResult lr{};
  REQUIRE(f.engine->create_ledger({2, "AIR", "Air", 0, 0}, &lr).is_ok());
  std::vector<AccountResult> ar;
  REQUIRE(f.engine->create_accounts({{3000, 2, AccountKind::member, 0, 0, ""}}, &ar).is_ok());
  o = order_of(1);
  o.merchant_account = 3000;
  CHECK(refused(o) == OrderResult::ledger_mismatch);
  // Nothing was stored: the id is free.
  std::optional<OrderInfo> info;
  REQUIRE(f.engine->lookup_order(1, &info).is_ok());
  CHECK_FALSE(info);
  CHECK(refused(order_of(1)) == OrderResult::ok);
  // Clients may not use the order code, nor resolve a reservation.
  std::vector<TransferOutcome> t;
  REQUIRE(f.engine
              ->submit_transfers({{50, alice, bob, 5, mall, order_transfer_code, 0, 0, 0, 0},
                                  {51, alice, 0, 0, 0, 0, transfer_flags::void_pending, 1, 0, 0}},
                                 &t)
              .is_ok());
  CHECK(t[0].result == TransferResult::code_reserved);
  CHECK(t[1].result == TransferResult::code_reserved);
  CHECK(f.lookup(1).status == OrderStatus::awaiting_payment);
}

TEST_CASE("order: results of unknown payments and providers are refused and counted", "[orders]") {
  Fixture f;
  const OrderOutcome o = f.create(order_of(11));
  PaymentResultAnswer a;
  REQUIRE(f.engine->payment_result("nobody", o.order->payment_id, PaymentStatus::succeeded, &a)
              .is_ok());
  CHECK(a.outcome == PaymentResultOutcome::provider_not_found);
  for (const std::string& id : {std::string("po-12-1"), std::string("garbage"),
                                o.order->payment_id + "0", std::string("po-11-1")}) {
    REQUIRE(f.engine->payment_result("acme", id, PaymentStatus::succeeded, &a).is_ok());
    CHECK(a.outcome == PaymentResultOutcome::payment_not_found);
  }
  // The right id at another provider is not this payment either.
  REQUIRE(f.engine->payment_result("refusing", o.order->payment_id, PaymentStatus::succeeded, &a)
              .is_ok());
  CHECK(a.outcome == PaymentResultOutcome::payment_not_found);
  CHECK(f.engine->stats().payment_results_unknown == 5);
  CHECK(f.lookup(11).status == OrderStatus::awaiting_payment);
  CHECK(f.lookup(11).steps.size() == 3);  // nothing recorded
}

TEST_CASE("order: two orders racing for the same points, one wins", "[orders]") {
  Fixture f;
  Awaited<OrderOutcome> first;
  Awaited<OrderOutcome> second;
  f.engine->create_order(order_of(20, alice, 700), first.callback());
  f.engine->create_order(order_of(21, alice, 700), second.callback());
  const OrderOutcome a = first.value();
  const OrderOutcome b = second.value();
  REQUIRE(a.order);
  REQUIRE(b.order);
  const bool a_won = a.order->status == OrderStatus::awaiting_payment;
  const OrderOutcome& won = a_won ? a : b;
  const OrderOutcome& lost = a_won ? b : a;
  CHECK(won.order->status == OrderStatus::awaiting_payment);
  CHECK(lost.order->status == OrderStatus::failed);
  CHECK(lost.order->reservation_result == TransferResult::exceeds_credits);
  CHECK(f.account(alice).debits_pending == 700);
  CHECK(f.pay(won, PaymentStatus::succeeded).outcome == PaymentResultOutcome::applied);
  f.wait_for(won.order->request.id, OrderStatus::completed);
  CHECK(f.account(alice).balance() == funded - 700);
  CHECK(f.account(shop).balance() == 700);
  f.verify(2);
}

TEST_CASE("order: concurrent results, cancels and retries of one order agree", "[orders]") {
  Fixture f;
  const OrderOutcome o = f.create(order_of(30));
  std::vector<std::unique_ptr<Awaited<PaymentResultAnswer>>> results;
  std::vector<std::unique_ptr<Awaited<OrderOutcome>>> cancels;
  for (int i = 0; i < 10; ++i) {
    results.push_back(std::make_unique<Awaited<PaymentResultAnswer>>());
    f.engine->payment_result("acme", o.order->payment_id, PaymentStatus::succeeded,
                             results.back()->callback());
    cancels.push_back(std::make_unique<Awaited<OrderOutcome>>());
    f.engine->cancel_order(30, cancels.back()->callback());
  }
  int applied = 0;
  int late = 0;
  for (auto& r : results) {
    const PaymentResultOutcome outcome = r->value().outcome;
    applied += outcome == PaymentResultOutcome::applied ? 1 : 0;
    late += outcome == PaymentResultOutcome::late ? 1 : 0;
  }
  int cancelled = 0;
  for (auto& c : cancels) cancelled += c->value().result == OrderResult::ok ? 1 : 0;
  // The first of them decided: either paid (cancels refused) or cancelled (results late).
  const OrderInfo info = f.lookup(30);
  REQUIRE(info.step == OrderStep::completed);
  if (info.status == OrderStatus::completed) {
    CHECK(applied == 1);
    CHECK(cancelled == 0);
    CHECK(f.account(shop).balance() == 300);
  } else {
    CHECK(info.status == OrderStatus::cancelled);
    CHECK(cancelled == 1);
    CHECK(late == 10);
    CHECK(info.refund_due);
    CHECK(f.account(shop).balance() == 0);
  }
  CHECK(f.account(alice).debits_pending == 0);
  f.verify(1);
}

TEST_CASE("order: the simulated provider pays or fails as its seed says", "[orders]") {
  TempDir dir;
  SimulatedProviderOptions sim;
  sim.name = "sim";
  sim.latency_ms = 5;
  sim.failure_rate = 0.3;
  sim.seed = 9;
  auto engine = test::open_engine_with(dir.path(), [&](EngineOptions& o) {
    o.threads = 2;
    o.payment_providers = {make_simulated_provider(sim)};
  });
  LedgerResult lr{};
  REQUIRE(engine->create_ledger({mall, "MALL", "Mall points", 0, 0}, &lr).is_ok());
  std::vector<AccountResult> ar;
  REQUIRE(engine
              ->create_accounts({{issuer, mall, AccountKind::issuer, 0, 0, ""},
                                 {shop, mall, AccountKind::member, 0, 0, ""},
                                 {alice, mall, AccountKind::member, 0, 0, ""}},
                                &ar)
              .is_ok());
  std::vector<TransferOutcome> t;
  REQUIRE(engine->submit_transfers({{1, issuer, alice, 100'000, mall, 1, 0, 0, 0, 0}}, &t).is_ok());
  constexpr int n = 50;
  std::vector<std::string> payment_ids;
  for (int i = 1; i <= n; ++i) {
    OrderOutcome o;
    REQUIRE(engine->create_order(order_of(static_cast<OrderId>(i), alice, 10), &o).is_ok());
    REQUIRE(o.order);
    payment_ids.push_back(o.order->payment_id);
  }
  std::uint64_t paid = 0;
  for (int i = 1; i <= n; ++i) {
    const bool fails =
        simulated_payment_fails(9, 0.3, payment_ids[static_cast<std::size_t>(i - 1)]);
    paid += fails ? 0 : 10;
    for (int tries = 0;; ++tries) {
      std::optional<OrderInfo> info;
      REQUIRE(engine->lookup_order(static_cast<OrderId>(i), &info).is_ok());
      if (info->step == OrderStep::completed) {
        CHECK(info->status == (fails ? OrderStatus::failed : OrderStatus::completed));
        break;
      }
      REQUIRE(tries < 500);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::vector<std::optional<Account>> a;
  REQUIRE(engine->lookup_accounts({shop, alice}, &a).is_ok());
  CHECK(a[0]->balance() == static_cast<std::int64_t>(paid));
  CHECK(a[1]->balance() == 100'000 - static_cast<std::int64_t>(paid));
  CHECK(a[1]->debits_pending == 0);
  CHECK(paid > 0);
  CHECK(paid < 10 * n);
}

TEST_CASE("order options are checked at open", "[orders]") {
  TempDir dir;
  EngineOptions o;
  o.data_dir = dir.path();
  std::unique_ptr<Engine> engine;
  o.order_timeout_s_default = 0;
  CHECK(Engine::open(o, &engine).code() == Status::Code::invalid_argument);
  o.order_timeout_s_default = 100;
  o.order_timeout_s_max = 99;
  CHECK(Engine::open(o, &engine).code() == Status::Code::invalid_argument);
  o.order_timeout_s_max = 100;
  o.payment_providers = {std::make_shared<TestProvider>("Acme")};
  CHECK(Engine::open(o, &engine).code() == Status::Code::invalid_argument);
  o.payment_providers = {std::make_shared<TestProvider>("a"), std::make_shared<TestProvider>("a")};
  CHECK(Engine::open(o, &engine).code() == Status::Code::invalid_argument);
  o.payment_providers = {std::make_shared<TestProvider>("a"), nullptr};
  CHECK(Engine::open(o, &engine).code() == Status::Code::invalid_argument);
  o.payment_providers = {std::make_shared<TestProvider>("a")};
  CHECK(Engine::open(o, &engine).is_ok());
}

namespace {

struct CrashCase {
  const char* step;
  const char* action;  // order_crash_child's ACTION
  std::uint64_t points;
  std::uint64_t cash;
  OrderStatus want;
};

/// Runs one order in a child process that SIGKILLs itself after `c.step`; true when killed.
bool run_order_child(const std::string& dir, OrderId id, const CrashCase& c,
                     std::uint32_t timeout_s) {
  return test::killed_child(POINTEX_ORDER_CRASH_CHILD,
                            {dir, std::to_string(id), std::to_string(c.points),
                             std::to_string(c.cash), std::to_string(timeout_s), c.action},
                            std::string("order:") + c.step);
}

/// After the restart: what the child had still to do, done by the test (the same order again
/// waits for the resumed one; then the result, the cancel, the late success).
void finish_order(Fixture& f, const Order& order, const std::string& action) {
  const OrderOutcome o = f.create(order);
  REQUIRE(o.result == OrderResult::exists);
  REQUIRE(o.order);
  if (o.order->status == OrderStatus::awaiting_payment) {
    if (action == "succeed" || action == "fail") {
      f.pay(o, action == "succeed" ? PaymentStatus::succeeded : PaymentStatus::failed, "sim");
    } else if (action == "cancel" || action == "late") {
      REQUIRE(f.cancel(order.id).result == OrderResult::ok);
    }
  }
  if (action == "late" && !f.lookup(order.id).refund_due) {
    CHECK(f.pay(o, PaymentStatus::succeeded, "sim").outcome == PaymentResultOutcome::late);
  }
}

}  // namespace

TEST_CASE("crash after every step of an order: it completes or compensates", "[orders]") {
  const std::vector<CrashCase> cases = {
      {"started", "succeed", 300, 500, OrderStatus::completed},
      {"reserved", "succeed", 300, 500, OrderStatus::completed},
      {"payment_created", "succeed", 300, 500, OrderStatus::completed},
      {"decided", "succeed", 300, 500, OrderStatus::completed},
      {"resolved", "succeed", 300, 500, OrderStatus::completed},
      {"completed", "succeed", 300, 500, OrderStatus::completed},
      {"decided", "fail", 300, 500, OrderStatus::failed},
      {"resolved", "fail", 300, 500, OrderStatus::failed},
      {"completed", "fail", 300, 500, OrderStatus::failed},
      {"decided", "cancel", 300, 500, OrderStatus::cancelled},
      {"resolved", "cancel", 300, 500, OrderStatus::cancelled},
      {"completed", "cancel", 300, 500, OrderStatus::cancelled},
      {"late_result", "late", 300, 500, OrderStatus::cancelled},
      {"decided", "expire", 300, 500, OrderStatus::expired},
      {"resolved", "expire", 300, 500, OrderStatus::expired},
      {"started", "none", funded + 1, 500, OrderStatus::failed},
      {"decided", "none", funded + 1, 500, OrderStatus::failed},
      {"completed", "none", funded + 1, 500, OrderStatus::failed},
      {"started", "none", 300, 0, OrderStatus::completed},
      {"reserved", "none", 300, 0, OrderStatus::completed},
      {"decided", "none", 300, 0, OrderStatus::completed},
      {"resolved", "none", 300, 0, OrderStatus::completed},
  };
  for (const CrashCase& c : cases) {
    DYNAMIC_SECTION(c.step << " " << c.action << " points " << c.points << " cash " << c.cash) {
      TempDir dir;
      SimulatedProviderOptions quiet;
      quiet.name = "sim";
      quiet.report_results = false;
      Fixture f;  // its own dir: the test's provider; the crash runs on `dir`
      f.engine.reset();
      const auto open = [&] {
        f.engine = test::open_engine_with(dir.path(), [&](EngineOptions& o) {
          o.threads = 2;
          o.payment_providers = {make_simulated_provider(quiet)};
        });
      };
      open();
      f.setup();
      f.engine.reset();
      const std::uint32_t timeout_s = std::string(c.action) == "expire" ? 1 : 600;
      REQUIRE(run_order_child(dir.path(), 77, c, timeout_s));
      open();
      Order order;
      order.id = 77;
      order.member_account = alice;
      order.merchant_account = shop;
      order.points = c.points;
      order.cash = {c.cash, c.cash != 0 ? "EUR" : ""};
      order.timeout_s = timeout_s;
      finish_order(f, order, c.action);
      OrderInfo info;
      for (int i = 0; i < 500; ++i) {
        info = f.lookup(77);
        if (info.step == OrderStep::completed) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      CHECK(info.step == OrderStep::completed);
      CHECK(info.status == c.want);
      CHECK(info.refund_due == (std::string(c.action) == "late"));
      const bool paid = c.want == OrderStatus::completed;
      CHECK(f.account(alice).balance() ==
            static_cast<std::int64_t>(funded) - (paid ? static_cast<std::int64_t>(c.points) : 0));
      CHECK(f.account(shop).balance() == (paid ? static_cast<std::int64_t>(c.points) : 0));
      CHECK(f.account(alice).debits_pending == 0);
      CHECK(f.account(shop).credits_pending == 0);
      CHECK(f.engine->stats().open_processes == 0);
      // The audit: per-ledger conservation, nothing pending, the order's points agree with it.
      f.engine.reset();
      const VerifyReport report = test::verified(dir.path());
      CHECK(report.orders == 1);
      CHECK(report.open_orders == 0);
      CHECK(report.open_pending_transfers == 0);
    }
  }
}

#pragma once
/// Points + cash orders as a kind of durable process (docs/workflows.md, "Orders"): the steps
/// on the process host (engine/workflows.hpp), the payment providers, the deadline as a durable
/// timer. Every business rule is in src/domain/order.cpp; this class sequences the steps,
/// talks to the providers and resumes open orders.
///
/// Everything runs on the flows thread; the providers answer on their own threads through a
/// gate that the flow closes when the engine stops (their late answers are dropped). The host
/// keeps each order's record; this class its typed state and the callers waiting on it.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "domain/order.hpp"
#include "engine/workflows.hpp"

namespace pointex::engine {

class OrderFlow final : public Flow {
 public:
  /// Attaches the providers of `host.core().options` (their results go through a gate that
  /// stop() closes).
  explicit OrderFlow(Workflows& host);
  ~OrderFlow() override;

  /// The options' order part: provider names valid and unique, timeouts consistent.
  [[nodiscard]] static Status validate_options(const EngineOptions& options);

  domain::ProcessKind kind() const override { return domain::ProcessKind::order; }
  const char* name() const override { return "order"; }
  [[nodiscard]] bool fold(const domain::ProcessRecord& record) override;
  void resume(std::uint64_t id) override;
  void wake(std::uint64_t id, std::uint64_t due_ns) override;
  void step_failed(std::uint64_t id, bool abandoned, const Status& status) override;
  bool may_leave(std::uint64_t id) const override;
  void forget(std::uint64_t id) override;
  void stop(const Status& status) override;

  // The facade's calls (any thread): they post to the flows thread.
  void create(const Order& order, ResultCallback<OrderOutcome> callback);
  void cancel(OrderId id, ResultCallback<OrderOutcome> callback);
  void lookup(OrderId id, ResultCallback<std::optional<OrderInfo>> callback);
  void payment_result(const std::string& provider, const std::string& payment_id,
                      PaymentStatus status, ResultCallback<PaymentResultAnswer> callback);

  std::uint64_t unknown_results() const { return unknown_results_.load(); }
  std::uint64_t late_results() const { return late_results_.load(); }

 private:
  using Key = Workflows::Key;
  /// A caller waiting for the order to reach a point: a creation (answered once the payment
  /// is created or the order completed), a cancel (once completed), a payment result (once
  /// decided, and recorded if late).
  struct Waiter {
    enum class Kind : std::uint8_t { create, cancel, payment };
    Kind kind = Kind::create;
    /// The caller whose request started it (create: ok, cancel: ok, payment: applied).
    bool first = false;
    PaymentStatus status = PaymentStatus::succeeded;
    ResultCallback<OrderOutcome> order;
    ResultCallback<PaymentResultAnswer> payment;
  };
  struct Entry {
    domain::OrderState order;
    std::vector<Waiter> waiters;
    /// A `decided` step on its way to the log (nothing else may decide meanwhile).
    bool deciding = false;
    /// late_result steps on their way, by status bit.
    std::uint8_t late_in_flight = 0;
    /// A cancel came while the points were being reserved: it decides once they are.
    bool cancel_requested = false;
    /// The provider was asked to create the payment and has not answered.
    bool creating = false;
  };
  /// Where the providers' answers enter: closed (null) once the engine stops.
  struct Gate {
    std::mutex mutex;
    OrderFlow* flow = nullptr;
    /// Runs `task` on the flows thread if the flow is still there.
    void post(std::function<void(OrderFlow&)> task);
  };
  static Key key(OrderId id) { return {domain::ProcessKind::order, id}; }

  void start_order(const Order& order, ResultCallback<OrderOutcome> callback);
  void cancel_order(OrderId id, ResultCallback<OrderOutcome> callback);
  void take_result(const std::string& provider, const std::string& payment_id, PaymentStatus status,
                   ResultCallback<PaymentResultAnswer> callback);
  /// The started step of a new order, or a refusal (not stored).
  OrderResult prepare(const Order& order, domain::OrderStarted* started, Status* status);

  // Steps, on the flows thread.
  using Answered = void (OrderFlow::*)(OrderId, const Status&, TransferResult);
  /// Submits one of the order's transfers; its answer goes to `then` on the flows thread.
  void submit(OrderId id, const Transfer& transfer, Answered then);
  void reserve(OrderId id);
  void reservation_answered(OrderId id, const Status& status, TransferResult result);
  void after_reserved(OrderId id);
  void create_payment(OrderId id);
  void payment_answered(OrderId id, const PaymentCreation& creation);
  void decide(OrderId id, const domain::OrderDecided& decided);
  void resolve(OrderId id);
  void resolution_answered(OrderId id, const Status& status, TransferResult result);
  void complete(OrderId id);
  void record_late(OrderId id, PaymentStatus status);
  void stall(OrderId id, const Status& status);
  /// Answers every waiter whose answer is known now (after each durable step).
  void settle(OrderId id);
  /// Whether `w` could be answered now (and answers it).
  bool answer(OrderId id, Waiter& w);
  OrderInfo info(OrderId id);
  void unknown_payment(const std::string& provider, const std::string& payment_id,
                       const ResultCallback<PaymentResultAnswer>& callback);

  Workflows& host_;
  Engine::Impl& core_;
  std::map<std::string, std::shared_ptr<PaymentProvider>> providers_;
  /// The first of EngineOptions::payment_providers (empty: none).
  std::string default_provider_;
  std::shared_ptr<Gate> gate_;
  std::atomic<std::uint64_t> unknown_results_{0};
  std::atomic<std::uint64_t> late_results_{0};
  /// Flows thread: every order the host holds in memory.
  std::map<OrderId, Entry> orders_;
};

}  // namespace pointex::engine

#pragma once
/// Shopping rebates as a kind of durable process (docs/workflows.md, "Rebates"): a ledger's
/// earning rules (kept like exchange rates: an event in the log, a read model, a map here), and
/// each purchase's steps on the process host: the pending credit, refunds, the post or void
/// when the return window ends (a host timer), and clawbacks after it. Every rule is in
/// src/domain/rebate.cpp; this class sequences the steps.
///
/// A purchase does one thing at a time: a step or a transfer in flight makes it busy, and
/// refunds that come meanwhile wait in its queue, in order. Callers are answered when the
/// purchase is idle again, so an answer shows everything their request caused.

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "domain/rebate.hpp"
#include "engine/workflows.hpp"

namespace pointex::engine {

class RebateFlow final : public Flow {
 public:
  explicit RebateFlow(Workflows& host);

  domain::ProcessKind kind() const override { return domain::ProcessKind::rebate; }
  const char* name() const override { return "purchase"; }
  [[nodiscard]] Status load(const store::ReadModel& read_model) override;
  [[nodiscard]] Status recover(const domain::RulesSet& event);
  [[nodiscard]] bool fold(const domain::ProcessRecord& record) override;
  void resume(std::uint64_t id) override;
  void wake(std::uint64_t id, std::uint64_t due_ns) override;
  void step_failed(std::uint64_t id, bool abandoned, const Status& status) override;
  bool may_leave(std::uint64_t id) const override;
  void forget(std::uint64_t id) override;
  void stop(const Status& status) override;

  // Rules (caller's thread).
  void set_rules(const EarningRules& rules, ResultCallback<RulesResult> callback);
  std::optional<EarningRules> rules(LedgerId ledger) const;
  std::vector<EarningRules> all_rules() const;

  // Purchases (any thread): they post to the flows thread.
  void purchase(const Purchase& purchase, ResultCallback<PurchaseOutcome> callback);
  void refund(const Refund& refund, ResultCallback<PurchaseOutcome> callback);
  void lookup(PurchaseId id, ResultCallback<std::optional<PurchaseInfo>> callback);

 private:
  using Key = Workflows::Key;
  struct Waiter {
    /// purchase: the caller whose request started it (ok) or a retry (exists).
    PurchaseResult result = PurchaseResult::ok;
    ResultCallback<PurchaseOutcome> callback;
  };
  struct QueuedRefund {
    Refund refund;
    ResultCallback<PurchaseOutcome> callback;
  };
  struct Entry {
    domain::PurchaseState state;
    /// A step or transfer is in flight.
    bool busy = false;
    std::deque<QueuedRefund> refunds;
    /// Answered when the purchase is idle again.
    std::vector<Waiter> waiters;
  };
  static Key key(PurchaseId id) { return {domain::ProcessKind::rebate, id}; }

  void start(const Purchase& purchase, ResultCallback<PurchaseOutcome> callback);
  PurchaseResult prepare(const Purchase& purchase, domain::PurchaseStarted* started,
                         Status* status);
  void take_refund(const Refund& refund, ResultCallback<PurchaseOutcome> callback);

  // Steps, on the flows thread.
  using Answered = void (RebateFlow::*)(PurchaseId, const Status&, TransferResult);
  void submit(PurchaseId id, const Transfer& transfer, Answered then);
  /// Continues from the durable state: the next thing to do, else idle (queued refunds, then
  /// the waiters).
  void advance(PurchaseId id);
  void credit_answered(PurchaseId id, const Status& status, TransferResult result);
  void decide(PurchaseId id, const domain::PurchaseDecided& decided);
  void resolution_answered(PurchaseId id, const Status& status, TransferResult result);
  void clawback_answered(PurchaseId id, const Status& status, TransferResult result);
  /// Appends a step; `then` after it is durable. Marks the purchase busy meanwhile.
  void append(PurchaseId id, domain::PurchaseStep step, std::string data, const char* crash_at);
  void stall(PurchaseId id, const Status& status);
  void answer_waiters(PurchaseId id);
  PurchaseInfo info(PurchaseId id) const;

  Workflows& host_;
  Engine::Impl& core_;
  mutable std::mutex rules_mutex_;
  /// Serializes set_rules (read, compare, append, publish).
  std::mutex set_rules_mutex_;
  std::map<LedgerId, EarningRules> rules_;
  /// Flows thread: every purchase the host holds in memory.
  std::map<PurchaseId, Entry> purchases_;
};

}  // namespace pointex::engine

#pragma once
/// The alliance exchange as a kind of durable process (docs/workflows.md): its rates, its
/// typed state and waiters, and its steps (started -> legs submitted -> decided -> legs posted
/// or voided -> completed). Every business rule is in src/domain/exchange.cpp; the host
/// (engine/workflows.hpp) makes each step durable before this class acts on it.

#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "domain/exchange.hpp"
#include "engine/workflows.hpp"

namespace pointex::engine {

class ExchangeFlow final : public Flow {
 public:
  explicit ExchangeFlow(Workflows& host);

  domain::ProcessKind kind() const override { return domain::ProcessKind::exchange; }
  const char* name() const override { return "exchange"; }
  [[nodiscard]] Status load(const store::ReadModel& read_model) override;
  [[nodiscard]] bool fold(const domain::ProcessRecord& record) override;
  void resume(std::uint64_t id) override;
  void wake(std::uint64_t id, std::uint64_t due_ns) override;
  void step_failed(std::uint64_t id, bool abandoned, const Status& status) override;
  bool may_leave(std::uint64_t id) const override;
  void forget(std::uint64_t id) override;
  void stop(const Status& status) override;

  /// Recovery: a rate set after the checkpoint.
  [[nodiscard]] Status recover(const domain::RateSet& event);

  // The facade (engine/exchange_api.cpp), any thread.
  void set_rate(const Rate& rate, ResultCallback<RateResult> callback);
  std::optional<Rate> rate(LedgerId from_ledger, LedgerId to_ledger) const;
  std::vector<Rate> rates() const;
  void exchange(const Exchange& exchange, ResultCallback<ExchangeOutcome> callback);
  void lookup_exchange(ExchangeId id, ResultCallback<std::optional<ExchangeInfo>> callback);

 private:
  using Key = Workflows::Key;
  struct Waiter {
    ResultCallback<ExchangeOutcome> callback;
    /// The caller who started it (answered ok rather than exists).
    bool first = false;
  };
  struct Entry {
    domain::ExchangeState state;
    std::vector<Waiter> waiters;
  };

  static Key key(ExchangeId id) { return {domain::ProcessKind::exchange, id}; }
  // The steps, on the flows thread.
  void start(const Exchange& exchange, ResultCallback<ExchangeOutcome> callback);
  void submit_legs(ExchangeId id);
  void legs_answered(ExchangeId id, const Status& status,
                     const std::vector<TransferOutcome>& outcomes);
  void decide(ExchangeId id, const domain::ExchangeDecided& decided);
  void resolve_legs(ExchangeId id);
  void resolutions_answered(ExchangeId id, const Status& status,
                            const std::vector<TransferOutcome>& outcomes);
  void complete(ExchangeId id);
  void stall(ExchangeId id, const Status& status);
  void answer_waiters(Entry& entry);

  Workflows& host_;

  mutable std::mutex rates_mutex_;
  std::map<std::pair<LedgerId, LedgerId>, Rate> rates_;
  /// Serializes set_rate's check and append (off the hot path).
  std::mutex set_rate_mutex_;

  /// Flows thread: every exchange the host holds in memory.
  std::map<ExchangeId, Entry> exchanges_;
};

}  // namespace pointex::engine

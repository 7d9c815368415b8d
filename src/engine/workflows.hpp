#pragma once
/// The process manager (docs/workflows.md): durable processes (sagas) whose every step is an
/// event in the one ordered log, and the alliance exchange built on it.
///
/// One thread, `pointex-flows`, runs every step of every process from a task queue, so a
/// process's state needs no lock and a step never runs on the journal's writer thread or a
/// CAF scheduler thread. A step is made durable (a ProcessStepped event through the journal)
/// before what it decided is done: `started` before the legs are submitted, `decided` before
/// they are posted or voided, `completed` before the caller is answered. Rates are set on the
/// caller's thread under their own lock.
///
/// In memory: the rates, every open process, and completed ones until the read models include
/// their last step (then a lookup finds them in rm_processes), and the daily counters (caps)
/// of recent days. Recovery fills all of it from the read models' checkpoint plus the log's
/// tail; start() then resumes every open process.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "domain/events.hpp"
#include "domain/exchange.hpp"
#include "domain/process.hpp"
#include "engine/engine_impl.hpp"

namespace pointex::engine {

class Workflows {
 public:
  /// Most processes open at once; past it, exchange() fails with `overloaded`.
  static constexpr std::size_t open_processes_max = 65536;

  explicit Workflows(Engine::Impl& core);
  ~Workflows();
  Workflows(const Workflows&) = delete;
  Workflows& operator=(const Workflows&) = delete;

  /// Recovery, first: the rates, open processes and recent counters as of the read models'
  /// checkpoint (`now_ns` says which days are recent).
  [[nodiscard]] Status load(const store::ReadModel& read_model, std::uint64_t now_ns);
  /// Recovery, then: one event of the log's tail after the checkpoint.
  [[nodiscard]] Status recover(std::uint64_t position, const domain::RateSet& event);
  [[nodiscard]] Status recover(std::uint64_t position, const domain::ProcessStepped& event);
  /// Starts the thread and resumes every open process. REQUIRES: the journal and actors run.
  void start();
  /// Answers the callers still waiting with `shutting_down` and stops the thread; the open
  /// processes stay open in the log (the next open resumes them). Late callbacks are dropped.
  void stop();

  void set_rate(const Rate& rate, ResultCallback<RateResult> callback);
  std::optional<Rate> rate(LedgerId from_ledger, LedgerId to_ledger) const;
  std::vector<Rate> rates() const;
  void exchange(const Exchange& exchange, ResultCallback<ExchangeOutcome> callback);
  void lookup_exchange(ExchangeId id, ResultCallback<std::optional<ExchangeInfo>> callback);
  std::uint64_t open_processes() const { return open_.load(std::memory_order_relaxed); }

 private:
  using Key = std::pair<domain::ProcessKind, std::uint64_t>;
  struct Waiter {
    ResultCallback<ExchangeOutcome> callback;
    /// The caller who started it (answered ok rather than exists).
    bool first = false;
  };
  struct Process {
    domain::ProcessRecord record;
    domain::ExchangeState state;
    std::vector<Waiter> waiters;
    /// A step failed to be made durable or a leg could not be submitted (the engine is
    /// stopping or its log failed): nothing more happens in this run; the next open resumes it.
    Status stalled;
  };
  class StepChunk;

  /// Runs `task` on the flows thread; false (task dropped) once stopped.
  bool post(std::function<void()> task);
  void run();
  void housekeeping();

  // Exchange steps, on the flows thread.
  void start_exchange(const Exchange& exchange, ResultCallback<ExchangeOutcome> callback);
  void append_step(const Key& key, std::uint8_t step, std::string data,
                   std::function<void(Process&)> then);
  void step_durable(const Key& key, const domain::ProcessStepped& step, std::uint64_t position,
                    const std::function<void(Process&)>& then);
  void step_failed(const Key& key, std::uint8_t step, const Status& status);
  void submit_legs(const Key& key);
  void legs_answered(const Key& key, const Status& status,
                     const std::vector<TransferOutcome>& outcomes);
  void decide(const Key& key, const domain::ExchangeDecided& decided);
  void resolve_legs(const Key& key);
  void resolutions_answered(const Key& key, const Status& status,
                            const std::vector<TransferOutcome>& outcomes);
  void complete(Process& process);
  void resume(const Key& key);
  void stall(Process& process, const Status& status);
  void answer_waiters(Process& process);
  /// The process in memory, else loaded from rm_processes (null if none). `*status` says
  /// when the read failed.
  Process* find(const Key& key, Status* status);
  void crash_point(const char* step) const;
  /// Applies counter changes to the days still in memory (older days were dropped).
  void count(const std::vector<domain::CounterDelta>& deltas);

  Engine::Impl& core_;
  /// Test hook: POINTEX_TEST_CRASH_AT names a step after which the process SIGKILLs itself.
  std::string crash_at_;

  mutable std::mutex rates_mutex_;
  std::map<std::pair<LedgerId, LedgerId>, Rate> rates_;
  /// Serializes set_rate's check and append (off the hot path).
  std::mutex set_rate_mutex_;

  // The flows thread's state (and recovery's, before the thread starts).
  std::map<Key, Process> processes_;
  domain::CounterTable counters_;
  /// The first day counters_ holds (older ones left memory).
  std::uint32_t counters_from_day_ = 0;
  std::atomic<std::uint64_t> open_{0};

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace pointex::engine

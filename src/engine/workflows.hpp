#pragma once
/// The durable-process host (docs/workflows.md): durable processes (sagas) whose every step is
/// an event in the one ordered log, of any kind; each kind is a Flow (the alliance exchange is
/// engine/exchange_flow.hpp).
///
/// One thread, `pointex-flows`, runs every step of every process from a task queue, so a
/// process's state needs no lock and a step never runs on the journal's writer thread or a
/// CAF scheduler thread. A step is made durable (a ProcessStepped event through the journal)
/// before what it decided is done: the host calls the kind back only from the step's
/// on_durable. The host also keeps durable timers (a kind asks to be woken at an engine-clock
/// time; the due time is always in some durable step, so timers themselves are not stored).
///
/// In memory: every open process (its generic record here, its typed state in its Flow), and
/// completed ones until the read models include their last step (then a lookup finds them in
/// rm_processes), and the daily counters (caps) of recent days. Recovery fills all of it from
/// the read models' checkpoint plus the log's tail; start() then resumes every open process.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "domain/events.hpp"
#include "domain/process.hpp"
#include "domain/timer_queue.hpp"
#include "engine/engine_impl.hpp"

namespace pointex::engine {

class Workflows;
class ExchangeFlow;
class OrderFlow;
class RebateFlow;
class CheckBackFlow;

/// One kind of durable process: its typed state and its waiters, folded from the generic
/// records the host keeps. Every call is on the flows thread (or in recovery, before it runs).
class Flow {
 public:
  virtual ~Flow() = default;
  virtual domain::ProcessKind kind() const = 0;
  /// A label for logs ("exchange").
  virtual const char* name() const = 0;
  /// Recovery, first: what the kind keeps outside processes (e.g. rates). Default: nothing.
  [[nodiscard]] virtual Status load(const store::ReadModel&) { return Status::ok(); }
  /// Folds `record` (all its durable steps) into the kind's state of process record.id,
  /// creating it if needed. False when the record is not a valid sequence of this kind's steps.
  [[nodiscard]] virtual bool fold(const domain::ProcessRecord& record) = 0;
  /// An open process after a restart (or a recovery): continue from its last durable step, and
  /// arm its timers again.
  virtual void resume(std::uint64_t id) = 0;
  /// A timer armed with Workflows::wake_at is due (engine clock >= due_ns). The process is in
  /// memory and open.
  virtual void wake(std::uint64_t id, std::uint64_t due_ns) = 0;
  /// The process's step failed to be durable. `abandoned`: it was the first step, the host
  /// forgot the process (answer its waiters with `status` and drop its state); else the process
  /// is stalled (answer its waiters; the next open resumes it).
  virtual void step_failed(std::uint64_t id, bool abandoned, const Status& status) = 0;
  /// Whether a finished process may leave memory (nobody waits for it).
  virtual bool may_leave(std::uint64_t id) const = 0;
  /// The process left memory: drop its state.
  virtual void forget(std::uint64_t id) = 0;
  /// The engine stops: answer every waiter with `status` (shutting_down).
  virtual void stop(const Status& status) = 0;
};

class Workflows {
 public:
  /// Most processes open at once, over every kind; past it, starting one fails with
  /// `overloaded`.
  static constexpr std::size_t open_processes_max = 65536;
  using Key = std::pair<domain::ProcessKind, std::uint64_t>;
  /// What follows a durable step, on the flows thread.
  using Then = std::function<void()>;

  explicit Workflows(Engine::Impl& core);
  ~Workflows();
  Workflows(const Workflows&) = delete;
  Workflows& operator=(const Workflows&) = delete;

  /// Recovery, first: every kind's own state, open processes and recent counters as of the
  /// read models' checkpoint (`now_ns` says which days are recent).
  [[nodiscard]] Status load(const store::ReadModel& read_model, std::uint64_t now_ns);
  /// Recovery, then: one event of the log's tail after the checkpoint.
  [[nodiscard]] Status recover(std::uint64_t position, const domain::RateSet& event);
  [[nodiscard]] Status recover(std::uint64_t position, const domain::RulesSet& event);
  [[nodiscard]] Status recover(std::uint64_t position, const domain::ProcessStepped& event);
  /// Starts the thread and resumes every open process. REQUIRES: the journal and actors run.
  void start();
  /// Answers the callers still waiting with `shutting_down` and stops the thread; the open
  /// processes stay open in the log (the next open resumes them). Late callbacks are dropped.
  void stop();

  ExchangeFlow& exchanges() { return *exchange_; }
  OrderFlow& orders() { return *orders_; }
  RebateFlow& rebates() { return *rebates_; }
  CheckBackFlow& check_backs() { return *check_backs_; }
  std::uint64_t open_processes() const { return open_.load(std::memory_order_relaxed); }

  // For the kinds (Flow implementations).

  Engine::Impl& core() { return core_; }
  /// Runs `task` on the flows thread; false (task dropped) once stopped.
  bool post(std::function<void()> task);
  /// Whether one more process may open (open_processes_max).
  bool may_open() const { return open_.load() < open_processes_max; }
  /// A new process whose first step is `first` (already folded by the kind): counts it open,
  /// applies its counter deltas at once (so concurrent starts see each other), and appends it.
  void open(const domain::ProcessStepped& first, Then then);
  /// Appends the next step of an open process; `then` runs once it is durable (after the kind
  /// folded it). A failure calls the kind's step_failed instead.
  void append_step(const Key& key, std::uint8_t step, std::string data, Then then);
  /// The record of a process in memory, else loaded from rm_processes and folded by its kind
  /// (null if none; `*status` says when the read failed).
  const domain::ProcessRecord* find(const Key& key, Status* status);
  /// Nothing more happens to the process in this run (its waiters are answered by its kind).
  void stall(const Key& key, const Status& status);
  /// Why the process is stalled (ok if it is not).
  Status stalled(const Key& key) const;
  /// Wakes process `key` (its kind's wake()) once the engine clock reaches `due_ns`. Flows
  /// thread only; a kind arms again in resume() what a restart forgot.
  void wake_at(const Key& key, std::uint64_t due_ns);
  const domain::CounterTable& counters() const { return counters_; }
  void crash_point(const char* step) const;

 private:
  struct Process {
    domain::ProcessRecord record;
    /// A step failed to be made durable or a leg could not be submitted (the engine is
    /// stopping or its log failed): nothing more happens in this run; the next open resumes it.
    Status stalled;
  };
  class StepChunk;

  Flow& flow(domain::ProcessKind kind) const;
  void run();
  /// When the next timer is due (steady clock), at most one housekeeping interval away.
  std::chrono::steady_clock::time_point next_timer() const;
  void fire_timers();
  void housekeeping();
  void submit(domain::ProcessStepped step, Then then);
  void step_durable(const domain::ProcessStepped& step, std::uint64_t position, const Then& then);
  void step_failed(const domain::ProcessStepped& step, const Status& status);
  /// Applies counter changes to the days still in memory (older days were dropped).
  void count(const std::vector<domain::CounterDelta>& deltas);

  Engine::Impl& core_;
  /// Test hook: POINTEX_TEST_CRASH_AT names a step after which the process SIGKILLs itself.
  std::string crash_at_;
  std::unique_ptr<ExchangeFlow> exchange_;
  std::unique_ptr<OrderFlow> orders_;
  std::unique_ptr<RebateFlow> rebates_;
  std::unique_ptr<CheckBackFlow> check_backs_;
  std::map<domain::ProcessKind, Flow*> flows_;

  // The flows thread's state (and recovery's, before the thread starts).
  std::map<Key, Process> processes_;
  domain::CounterTable counters_;
  /// The first day counters_ holds (older ones left memory).
  std::uint32_t counters_from_day_ = 0;
  std::atomic<std::uint64_t> open_{0};
  domain::TimerQueue timers_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace pointex::engine

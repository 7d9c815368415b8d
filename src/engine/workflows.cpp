// The durable-process host (docs/workflows.md): the flows thread, the generic records of every
// process, making each step durable before its kind acts on it, recovery by kind, timers,
// housekeeping and the daily counters. What a kind does is in its Flow (engine/exchange_flow.cpp).

#include "engine/workflows.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>

#include "domain/assert.hpp"
#include "domain/exchange.hpp"
#include "engine/checkback_flow.hpp"
#include "engine/exchange_flow.hpp"
#include "engine/log.hpp"
#include "engine/order_flow.hpp"
#include "engine/projector.hpp"
#include "engine/rebate_flow.hpp"

namespace pointex::engine {
namespace {

constexpr auto housekeeping_interval = std::chrono::seconds(1);
/// Counters of days before (today - this) leave memory: caps count today only, and yesterday
/// is kept for exchanges that started just before midnight and complete after it.
constexpr std::uint32_t counter_days_kept = 1;

std::vector<domain::CounterDelta> released(std::vector<domain::CounterDelta> deltas) {
  for (domain::CounterDelta& d : deltas) d.release = !d.release;
  return deltas;
}

}  // namespace

/// One process step on its way to the log; once durable (or failed), the flows thread goes on.
class Workflows::StepChunk final : public store::JournalChunk {
 public:
  Workflows* flows = nullptr;
  Then then;

  void on_durable() override {
    const auto& step = std::get<domain::ProcessStepped>(events.front());
    flows->post([flows = flows, step, position = first_position, then = std::move(then)] {
      flows->step_durable(step, position, then);
    });
  }
  void on_failed(const Status& status) override {
    const auto& step = std::get<domain::ProcessStepped>(events.front());
    flows->post([flows = flows, step, status] { flows->step_failed(step, status); });
  }
};

Workflows::Workflows(Engine::Impl& core)
    : core_(core), exchange_(std::make_unique<ExchangeFlow>(*this)) {
  if (const char* at = std::getenv("POINTEX_TEST_CRASH_AT")) crash_at_ = at;
  // In the body: the order flow gives its providers a sink that posts to the task queue, so
  // every member must exist first.
  orders_ = std::make_unique<OrderFlow>(*this);
  rebates_ = std::make_unique<RebateFlow>(*this);
  check_backs_ = std::make_unique<CheckBackFlow>(*this);
  for (Flow* f : {static_cast<Flow*>(exchange_.get()), static_cast<Flow*>(orders_.get()),
                  static_cast<Flow*>(rebates_.get()), static_cast<Flow*>(check_backs_.get())}) {
    POINTEX_ASSERT(flows_.count(f->kind()) == 0);  // one Flow per kind
    flows_[f->kind()] = f;
  }
}

Workflows::~Workflows() {
  stop();
}

Flow& Workflows::flow(domain::ProcessKind kind) const {
  const auto it = flows_.find(kind);
  POINTEX_ASSERT(it != flows_.end());  // events of unknown kinds are refused when decoded
  return *it->second;
}

// ---------------------------------------------------------------------------------------------
// Recovery.

Status Workflows::load(const store::ReadModel& read_model, std::uint64_t now_ns) {
  for (const auto& [kind, f] : flows_) {
    const Status s = f->load(read_model);
    if (!s.is_ok()) return s;
  }
  const std::uint32_t today = domain::utc_day(now_ns);
  const std::uint32_t from_day = today > counter_days_kept ? today - counter_days_kept : 0;
  counters_from_day_ = from_day;
  Status s = read_model.counters(from_day, [&](const domain::CounterKey& key, std::uint64_t value) {
    counters_[key] = value;
  });
  if (!s.is_ok()) return s;
  std::vector<domain::ProcessRecord> open;
  s = read_model.open_processes(&open);
  if (!s.is_ok()) return s;
  for (domain::ProcessRecord& record : open) {
    Flow& f = flow(record.kind);
    if (!f.fold(record)) {
      return Status::corruption(std::string("read models: open ") + f.name() + " " +
                                std::to_string(record.id) + " cannot be folded");
    }
    const Key key{record.kind, record.id};
    processes_[key].record = std::move(record);
    open_.fetch_add(1, std::memory_order_relaxed);
  }
  return Status::ok();
}

Status Workflows::recover(std::uint64_t, const domain::RateSet& event) {
  return exchange_->recover(event);
}

Status Workflows::recover(std::uint64_t, const domain::RulesSet& event) {
  return rebates_->recover(event);
}

Status Workflows::recover(std::uint64_t position, const domain::ProcessStepped& event) {
  const Key key{event.kind, event.id};
  Flow& f = flow(event.kind);
  auto it = processes_.find(key);
  if (it == processes_.end()) {
    // Not open at the checkpoint: its first step (every kind numbers it 0), or a step after
    // it finished (an order's late payment result), when its record is in the read models.
    // The kind's fold says whether the step may come there.
    std::optional<domain::ProcessRecord> stored;
    if (event.step != domain::step_started) {
      const Status s = core_.read_model->process(event.kind, event.id, &stored);
      if (!s.is_ok()) return s;
      if (!stored) {
        return Status::corruption(std::string("process step of an ") + f.name() +
                                  " that is not open");
      }
    }
    it = processes_.emplace(key, Process{}).first;
    if (stored) {
      it->second.record = std::move(*stored);
    } else {
      it->second.record.kind = event.kind;
      it->second.record.id = event.id;
      open_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  Process& p = it->second;
  const bool was_finished = domain::process_finished(p.record);
  count(domain::step_counter_deltas(p.record, event));
  domain::append_step(p.record, event, position);
  if (!f.fold(p.record)) {
    return Status::corruption(std::string(f.name()) + " " + std::to_string(event.id) +
                              ": steps out of order");
  }
  const bool finished = domain::process_finished(p.record);
  if (!was_finished && finished) open_.fetch_sub(1, std::memory_order_relaxed);
  // A step may open a finished process again (a purchase's clawback after its window).
  if (was_finished && !finished) open_.fetch_add(1, std::memory_order_relaxed);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// The thread.

void Workflows::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "pointex-flows");
    run();
  });
  std::vector<Key> open;
  for (const auto& [key, p] : processes_) {
    if (!domain::process_finished(p.record)) open.push_back(key);
  }
  if (!open.empty()) log().info("resuming {} open processes", open.size());
  for (const Key& key : open) {
    post([this, key] { flow(key.first).resume(key.second); });
  }
}

void Workflows::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  tasks_.clear();
  for (const auto& [kind, f] : flows_) f->stop(Status::shutting_down("engine is closing"));
}

bool Workflows::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return false;
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
  return true;
}

void Workflows::run() {
  auto next_housekeeping = std::chrono::steady_clock::now() + housekeeping_interval;
  for (;;) {
    std::function<void()> task;
    {
      // Sleep until a task, housekeeping, or the next timer (engine clock, in ns from now).
      const auto until = std::min(next_housekeeping, next_timer());
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_until(lock, until, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      if (!tasks_.empty()) {
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
    }
    if (task) task();
    fire_timers();
    if (std::chrono::steady_clock::now() >= next_housekeeping) {
      housekeeping();
      next_housekeeping = std::chrono::steady_clock::now() + housekeeping_interval;
    }
  }
}

std::chrono::steady_clock::time_point Workflows::next_timer() const {
  const auto now = std::chrono::steady_clock::now();
  const std::optional<std::uint64_t> due_ns = timers_.next_due_ns();
  if (!due_ns) return now + housekeeping_interval;
  // The engine clock may not be the steady one (tests set it): look again at least every
  // housekeeping interval.
  const std::uint64_t now_ns = core_.now();
  const std::chrono::nanoseconds in(*due_ns > now_ns ? *due_ns - now_ns : 0);
  return now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   std::min<std::chrono::nanoseconds>(in, housekeeping_interval));
}

void Workflows::wake_at(const Key& key, std::uint64_t due_ns) {
  if (!timers_.arm({due_ns, key.first, key.second})) {
    // Cannot happen below open_processes_max timers per process kind; the next open re-arms.
    log().critical("{} {}: too many timers; not armed", flow(key.first).name(), key.second);
  }
}

void Workflows::fire_timers() {
  if (timers_.empty()) return;
  for (const domain::Timer& t : timers_.take_due(core_.now())) {
    const auto it = processes_.find({t.kind, t.id});
    if (it == processes_.end() || domain::process_finished(it->second.record)) continue;
    if (!it->second.stalled.is_ok()) continue;  // nothing more in this run
    flow(t.kind).wake(t.id, t.due_ns);
  }
}

void Workflows::housekeeping() {
  // Completed processes leave memory once the read models include their last step.
  const std::uint64_t checkpoint = core_.projector->checkpoint();
  for (auto it = processes_.begin(); it != processes_.end();) {
    const auto& [key, p] = *it;
    Flow& f = flow(key.first);
    if (domain::process_finished(p.record) && f.may_leave(key.second) &&
        p.record.last_position() <= checkpoint) {
      f.forget(key.second);
      it = processes_.erase(it);
    } else {
      ++it;
    }
  }
  const std::uint32_t today = domain::utc_day(core_.now());
  if (today <= counter_days_kept) return;
  if (today - counter_days_kept <= counters_from_day_) return;
  counters_from_day_ = today - counter_days_kept;
  const domain::CounterKey first{counters_from_day_, 0, 0, 0};
  counters_.erase(counters_.begin(), counters_.lower_bound(first));
}

void Workflows::count(const std::vector<domain::CounterDelta>& deltas) {
  std::vector<domain::CounterDelta> kept;
  for (const domain::CounterDelta& d : deltas) {
    if (d.key.day >= counters_from_day_) kept.push_back(d);
  }
  domain::apply_counter_deltas(counters_, kept);
}

void Workflows::crash_point(const char* step) const {
  if (crash_at_ == step) {
    log().warn("POINTEX_TEST_CRASH_AT={}: killing the process", step);
    raise(SIGKILL);
  }
}

// ---------------------------------------------------------------------------------------------
// Steps, on the flows thread.

const domain::ProcessRecord* Workflows::find(const Key& key, Status* status) {
  *status = Status::ok();
  const auto it = processes_.find(key);
  if (it != processes_.end()) return &it->second.record;
  // Not in memory: finished, and in the read models (open ones never leave memory).
  std::optional<domain::ProcessRecord> record;
  *status = core_.read_model->process(key.first, key.second, &record);
  if (!status->is_ok() || !record) return nullptr;
  Flow& f = flow(key.first);
  if (!f.fold(*record)) {
    f.forget(key.second);
    *status = Status::corruption(std::string("read models: ") + f.name() + " " +
                                 std::to_string(key.second));
    return nullptr;
  }
  Process& p = processes_[key];
  p.record = std::move(*record);
  return &p.record;
}

void Workflows::open(const domain::ProcessStepped& first, Then then) {
  const Key key{first.kind, first.id};
  POINTEX_ASSERT(processes_.count(key) == 0);
  Process& p = processes_[key];
  p.record.kind = key.first;
  p.record.id = key.second;
  open_.fetch_add(1, std::memory_order_relaxed);
  // Counted now, before it is durable, so that concurrent processes see each other.
  count(domain::step_counter_deltas(p.record, first));
  submit(first, std::move(then));
}

void Workflows::append_step(const Key& key, std::uint8_t step, std::string data, Then then) {
  POINTEX_ASSERT(!processes_.at(key).record.steps.empty());  // open() made the first
  submit(domain::ProcessStepped{key.first, key.second, step, std::move(data), 0}, std::move(then));
}

void Workflows::submit(domain::ProcessStepped step, Then then) {
  auto chunk = std::make_unique<StepChunk>();
  chunk->flows = this;
  chunk->then = std::move(then);
  chunk->events.emplace_back(std::move(step));
  core_.journal->append(std::move(chunk));
}

void Workflows::step_durable(const domain::ProcessStepped& step, std::uint64_t position,
                             const Then& then) {
  const auto it = processes_.find({step.kind, step.id});
  POINTEX_ASSERT(it != processes_.end());  // a process with a step in flight stays in memory
  Process& p = it->second;
  // The first step was counted when it was opened.
  if (!p.record.steps.empty()) count(domain::step_counter_deltas(p.record, step));
  // A step may follow the end (an order's late result, a purchase's refund after its window).
  const bool was_finished = !p.record.steps.empty() && domain::process_finished(p.record);
  domain::append_step(p.record, step, position);
  const bool folded = flow(step.kind).fold(p.record);
  POINTEX_ASSERT(folded);
  const bool finished = domain::process_finished(p.record);
  if (!was_finished && finished) {
    open_.fetch_sub(1, std::memory_order_relaxed);
    timers_.disarm(step.kind, step.id);
  }
  // A step may open a finished process again (a purchase's clawback after its window): it is
  // counted open, and resumed by the next open if it does not finish before.
  if (was_finished && !finished) open_.fetch_add(1, std::memory_order_relaxed);
  then();
}

void Workflows::step_failed(const domain::ProcessStepped& step, const Status& status) {
  const Key key{step.kind, step.id};
  const auto it = processes_.find(key);
  POINTEX_ASSERT(it != processes_.end());
  Flow& f = flow(step.kind);
  log().error("{} {}: step {} not written: {}", f.name(), step.id, step.step, status.to_string());
  if (!it->second.record.steps.empty()) {
    it->second.stalled = status;
    return f.step_failed(step.id, /*abandoned=*/false, status);
  }
  // It never started: give the counters back and forget it (a retry is decided afresh).
  count(released(domain::step_counter_deltas(it->second.record, step)));
  processes_.erase(it);
  timers_.disarm(step.kind, step.id);
  open_.fetch_sub(1, std::memory_order_relaxed);
  f.step_failed(step.id, /*abandoned=*/true, status);
}

void Workflows::stall(const Key& key, const Status& status) {
  processes_.at(key).stalled = status;
}

Status Workflows::stalled(const Key& key) const {
  const auto it = processes_.find(key);
  return it == processes_.end() ? Status::ok() : it->second.stalled;
}

}  // namespace pointex::engine

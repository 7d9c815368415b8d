// The process manager and the alliance exchange's steps (docs/workflows.md). Every business
// rule is in src/domain/exchange.cpp; this file sequences the steps, makes each durable before
// acting on it, and resumes open processes after a restart.

#include "engine/workflows.hpp"

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>

#include "domain/assert.hpp"
#include "engine/log.hpp"
#include "engine/projector.hpp"

namespace pointex::engine {
namespace {

constexpr auto housekeeping_interval = std::chrono::seconds(1);
/// Counters of days before (today - this) leave memory: caps count today only, and yesterday
/// is kept for exchanges that started just before midnight and complete after it.
constexpr std::uint32_t counter_days_kept = 1;

/// A rate's creation or an identical PUT's barrier.
class RateChunk final : public store::JournalChunk {
 public:
  ResultCallback<RateResult> callback;
  void on_durable() override { callback(Status::ok(), RateResult::ok); }
  void on_failed(const Status& status) override { callback(status, RateResult::ok); }
};

std::vector<domain::CounterDelta> released(std::vector<domain::CounterDelta> deltas) {
  for (domain::CounterDelta& d : deltas) d.release = !d.release;
  return deltas;
}

}  // namespace

/// One process step on its way to the log; once durable (or failed), the flows thread goes on.
class Workflows::StepChunk final : public store::JournalChunk {
 public:
  Workflows* flows = nullptr;
  Key key;
  std::function<void(Process&)> then;

  void on_durable() override {
    const auto& step = std::get<domain::ProcessStepped>(events.front());
    flows->post([flows = flows, key = key, step, position = first_position,
                 then = std::move(then)] { flows->step_durable(key, step, position, then); });
  }
  void on_failed(const Status& status) override {
    const std::uint8_t step = std::get<domain::ProcessStepped>(events.front()).step;
    flows->post(
        [flows = flows, key = key, step, status] { flows->step_failed(key, step, status); });
  }
};

Workflows::Workflows(Engine::Impl& core) : core_(core) {
  if (const char* at = std::getenv("POINTEX_TEST_CRASH_AT")) crash_at_ = at;
}

Workflows::~Workflows() {
  stop();
}

// ---------------------------------------------------------------------------------------------
// Recovery.

Status Workflows::load(const store::ReadModel& read_model, std::uint64_t now_ns) {
  std::vector<Rate> rates;
  Status s = read_model.rates(&rates);
  if (!s.is_ok()) return s;
  for (const Rate& r : rates) rates_[{r.from_ledger, r.to_ledger}] = r;
  const std::uint32_t today = domain::utc_day(now_ns);
  const std::uint32_t from_day = today > counter_days_kept ? today - counter_days_kept : 0;
  counters_from_day_ = from_day;
  s = read_model.counters(from_day, [&](const domain::CounterKey& key, std::uint64_t value) {
    counters_[key] = value;
  });
  if (!s.is_ok()) return s;
  std::vector<domain::ProcessRecord> open;
  s = read_model.open_processes(&open);
  if (!s.is_ok()) return s;
  for (domain::ProcessRecord& record : open) {
    Process p;
    if (domain::fold_exchange(record, &p.state) != domain::DecodeError::none) {
      return Status::corruption("read models: open exchange " + std::to_string(record.id) +
                                " cannot be folded");
    }
    p.record = std::move(record);
    processes_[{p.record.kind, p.record.id}] = std::move(p);
    open_.fetch_add(1, std::memory_order_relaxed);
  }
  return Status::ok();
}

Status Workflows::recover(std::uint64_t, const domain::RateSet& event) {
  // Pair assertion: what was validated before it was written must still be valid.
  if (domain::validate_rate(event.rate) != RateResult::ok) {
    return Status::corruption("rate fails validation");
  }
  std::lock_guard<std::mutex> lock(rates_mutex_);
  rates_[{event.rate.from_ledger, event.rate.to_ledger}] = event.rate;
  return Status::ok();
}

Status Workflows::recover(std::uint64_t position, const domain::ProcessStepped& event) {
  const Key key{event.kind, event.id};
  auto it = processes_.find(key);
  if (it == processes_.end()) {
    // Not open at the checkpoint: this must be its first step (a finished process takes none).
    if (event.step != domain::step_started) {
      return Status::corruption("process step of an exchange that is not open");
    }
    it = processes_.emplace(key, Process{}).first;
    it->second.record.kind = event.kind;
    it->second.record.id = event.id;
    open_.fetch_add(1, std::memory_order_relaxed);
  }
  Process& p = it->second;
  if (domain::process_finished(p.record)) return Status::corruption("step after completion");
  count(domain::step_counter_deltas(p.record, event));
  domain::append_step(p.record, event, position);
  if (domain::fold_exchange(p.record, &p.state) != domain::DecodeError::none) {
    return Status::corruption("exchange " + std::to_string(event.id) + ": steps out of order");
  }
  if (domain::process_finished(p.record)) open_.fetch_sub(1, std::memory_order_relaxed);
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
  if (!open.empty()) log().info("resuming {} open exchanges", open.size());
  for (const Key& key : open) post([this, key] { resume(key); });
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
  for (auto& [key, p] : processes_) {
    for (Waiter& w : p.waiters) w.callback(Status::shutting_down("engine is closing"), {});
    p.waiters.clear();
  }
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
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_until(lock, next_housekeeping, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      if (!tasks_.empty()) {
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
    }
    if (task) task();
    if (std::chrono::steady_clock::now() >= next_housekeeping) {
      housekeeping();
      next_housekeeping = std::chrono::steady_clock::now() + housekeeping_interval;
    }
  }
}

void Workflows::housekeeping() {
  // Completed processes leave memory once the read models include their last step.
  const std::uint64_t checkpoint = core_.projector->checkpoint();
  for (auto it = processes_.begin(); it != processes_.end();) {
    const Process& p = it->second;
    if (domain::process_finished(p.record) && p.waiters.empty() &&
        p.record.last_position() <= checkpoint) {
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
// Rates (caller's thread).

void Workflows::set_rate(const Rate& rate, ResultCallback<RateResult> callback) {
  if (core_.stopping.load()) {
    return callback(Status::shutting_down("engine is closing"), RateResult::ok);
  }
  if (core_.journal->failed()) {
    return callback(Status::io_error("the event log failed; reopen the data dir"), RateResult::ok);
  }
  {
    std::lock_guard<std::mutex> lock(core_.ledgers_mutex);
    if (core_.ledgers.count(rate.from_ledger) == 0) {
      return callback(Status::ok(), RateResult::from_ledger_not_found);
    }
    if (core_.ledgers.count(rate.to_ledger) == 0) {
      return callback(Status::ok(), RateResult::to_ledger_not_found);
    }
  }
  RateResult r = domain::validate_rate(rate);
  if (r != RateResult::ok) return callback(Status::ok(), r);
  std::optional<AccountSpec> from;
  std::optional<AccountSpec> to;
  for (auto [id, spec] :
       {std::pair{rate.from_exchange_account, &from}, std::pair{rate.to_exchange_account, &to}}) {
    AccountEntry* entry = nullptr;
    const Status s = core_.directory.lookup(id, &entry);
    if (!s.is_ok()) return callback(s, RateResult::ok);
    if (entry != nullptr) {
      *spec = entry->spec;
      entry->unpin();
    }
  }
  r = domain::check_rate_accounts(rate, from ? &*from : nullptr, to ? &*to : nullptr);
  if (r != RateResult::ok) return callback(Status::ok(), r);
  auto chunk = std::make_unique<RateChunk>();
  chunk->callback = std::move(callback);
  std::lock_guard<std::mutex> lock(set_rate_mutex_);
  const std::optional<Rate> existing = this->rate(rate.from_ledger, rate.to_ledger);
  if (existing && existing->same_definition(rate)) {
    core_.journal->append(std::move(chunk));  // a barrier behind the original
    return;
  }
  Rate stored = rate;
  chunk->events.emplace_back(domain::RateSet{stored});
  stored.timestamp = core_.journal->append(std::move(chunk)).first_timestamp;
  // Published at once, like a ledger: an exchange using it is logged after it.
  std::lock_guard<std::mutex> rates_lock(rates_mutex_);
  rates_[{stored.from_ledger, stored.to_ledger}] = stored;
}

std::optional<Rate> Workflows::rate(LedgerId from_ledger, LedgerId to_ledger) const {
  std::lock_guard<std::mutex> lock(rates_mutex_);
  const auto it = rates_.find({from_ledger, to_ledger});
  if (it == rates_.end()) return std::nullopt;
  return it->second;
}

std::vector<Rate> Workflows::rates() const {
  std::lock_guard<std::mutex> lock(rates_mutex_);
  std::vector<Rate> out;
  out.reserve(rates_.size());
  for (const auto& [key, r] : rates_) out.push_back(r);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Exchanges: the entry points post to the flows thread.

void Workflows::exchange(const Exchange& exchange, ResultCallback<ExchangeOutcome> callback) {
  auto shared = std::make_shared<ResultCallback<ExchangeOutcome>>(std::move(callback));
  if (core_.stopping.load() ||
      !post([this, exchange, shared] { start_exchange(exchange, std::move(*shared)); })) {
    (*shared)(Status::shutting_down("engine is closing"), {});
  }
}

void Workflows::lookup_exchange(ExchangeId id,
                                ResultCallback<std::optional<ExchangeInfo>> callback) {
  auto shared = std::make_shared<ResultCallback<std::optional<ExchangeInfo>>>(std::move(callback));
  const bool posted = post([this, id, shared] {
    Status s;
    const Process* p = find({domain::ProcessKind::exchange, id}, &s);
    std::optional<ExchangeInfo> info;
    if (p != nullptr) info = domain::exchange_info(p->state);
    (*shared)(s, std::move(info));
  });
  if (!posted) (*shared)(Status::shutting_down("engine is closing"), std::nullopt);
}

Workflows::Process* Workflows::find(const Key& key, Status* status) {
  *status = Status::ok();
  const auto it = processes_.find(key);
  if (it != processes_.end()) return &it->second;
  // Not in memory: finished, and in the read models (open ones never leave memory).
  std::optional<domain::ProcessRecord> record;
  *status = core_.read_model->process(key.first, key.second, &record);
  if (!status->is_ok() || !record) return nullptr;
  Process p;
  if (domain::fold_exchange(*record, &p.state) != domain::DecodeError::none) {
    *status = Status::corruption("read models: exchange " + std::to_string(key.second));
    return nullptr;
  }
  p.record = std::move(*record);
  return &processes_.emplace(key, std::move(p)).first->second;
}

void Workflows::start_exchange(const Exchange& ex, ResultCallback<ExchangeOutcome> callback) {
  const auto refuse = [&](ExchangeResult r) {
    ExchangeOutcome o;
    o.result = r;
    callback(Status::ok(), o);
  };
  ExchangeResult r = domain::validate_exchange(ex);
  if (r != ExchangeResult::ok) return refuse(r);
  const Key key{domain::ProcessKind::exchange, ex.id};
  Status s;
  if (Process* p = find(key, &s)) {
    if (p->state.started.request != ex) return refuse(ExchangeResult::exists_with_different_fields);
    if (domain::process_finished(p->record)) {
      return callback(Status::ok(), domain::exchange_outcome(p->state, /*first=*/false));
    }
    if (!p->stalled.is_ok()) return callback(p->stalled, {});
    p->waiters.push_back({std::move(callback), false});  // answered when it completes
    return;
  }
  if (!s.is_ok()) return callback(s, {});
  if (open_.load() >= open_processes_max) {
    return callback(Status::overloaded("too many exchanges in flight; retry with the same id"), {});
  }
  std::optional<AccountSpec> accounts[2];
  const AccountId ids[2] = {ex.from_account, ex.to_account};
  for (int i = 0; i < 2; ++i) {
    AccountEntry* entry = nullptr;
    s = core_.directory.lookup(ids[i], &entry);
    if (!s.is_ok()) return callback(s, {});
    if (entry != nullptr) {
      accounts[i] = entry->spec;
      entry->unpin();
    }
  }
  if (!accounts[0]) return refuse(ExchangeResult::from_account_not_found);
  if (!accounts[1]) return refuse(ExchangeResult::to_account_not_found);
  const std::optional<Rate> rate = this->rate(accounts[0]->ledger, accounts[1]->ledger);
  if (!rate) return refuse(ExchangeResult::rate_not_found);
  const domain::ExchangeQuote quote = domain::quote_exchange(*rate, ex.amount);
  if (quote.result != ExchangeResult::ok) return refuse(quote.result);
  const std::uint32_t day = domain::utc_day(core_.now());
  r = domain::check_caps(*rate, counters_, ex.from_account, day, ex.amount);
  if (r != ExchangeResult::ok) return refuse(r);

  domain::ExchangeStarted started;
  started.request = ex;
  started.from_ledger = rate->from_ledger;
  started.to_ledger = rate->to_ledger;
  started.from_exchange_account = rate->from_exchange_account;
  started.to_exchange_account = rate->to_exchange_account;
  started.gross = quote.gross;
  started.fee = quote.fee;
  started.credited = quote.credited;
  started.day = day;
  Process& p = processes_[key];
  p.record.kind = key.first;
  p.record.id = key.second;
  p.state.started = started;
  p.waiters.push_back({std::move(callback), true});
  open_.fetch_add(1, std::memory_order_relaxed);
  // Counted now, before it is durable, so that concurrent exchanges see each other.
  domain::ProcessStepped step{key.first, key.second, domain::step_started,
                              domain::encode_step(started), 0};
  count(domain::step_counter_deltas(p.record, step));
  append_step(key, domain::step_started, std::move(step.data), [this, key](Process&) {
    crash_point("started");
    submit_legs(key);
  });
}

void Workflows::append_step(const Key& key, std::uint8_t step, std::string data,
                            std::function<void(Process&)> then) {
  auto chunk = std::make_unique<StepChunk>();
  chunk->flows = this;
  chunk->key = key;
  chunk->then = std::move(then);
  chunk->events.emplace_back(
      domain::ProcessStepped{key.first, key.second, step, std::move(data), 0});
  core_.journal->append(std::move(chunk));
}

void Workflows::step_durable(const Key& key, const domain::ProcessStepped& step,
                             std::uint64_t position, const std::function<void(Process&)>& then) {
  const auto it = processes_.find(key);
  POINTEX_ASSERT(it != processes_.end());  // a process with a step in flight stays in memory
  Process& p = it->second;
  if (step.step != domain::step_started) count(domain::step_counter_deltas(p.record, step));
  domain::append_step(p.record, step, position);
  POINTEX_ASSERT(domain::fold_exchange(p.record, &p.state) == domain::DecodeError::none);
  then(p);
}

void Workflows::step_failed(const Key& key, std::uint8_t step, const Status& status) {
  const auto it = processes_.find(key);
  POINTEX_ASSERT(it != processes_.end());
  Process& p = it->second;
  log().error("exchange {}: step {} not written: {}", key.second, step, status.to_string());
  if (step != domain::step_started) return stall(p, status);
  // It never started: give the caps back and forget it (a retry is decided afresh).
  const domain::ProcessStepped started{key.first, key.second, domain::step_started,
                                       domain::encode_step(p.state.started), 0};
  domain::ProcessRecord empty;
  empty.kind = key.first;
  empty.id = key.second;
  count(released(domain::step_counter_deltas(empty, started)));
  std::vector<Waiter> waiters = std::move(p.waiters);
  processes_.erase(it);
  open_.fetch_sub(1, std::memory_order_relaxed);
  for (Waiter& w : waiters) w.callback(status, {});
}

void Workflows::stall(Process& p, const Status& status) {
  p.stalled = status;
  std::vector<Waiter> waiters = std::move(p.waiters);
  p.waiters.clear();
  for (Waiter& w : waiters) w.callback(status, {});
}

void Workflows::submit_legs(const Key& key) {
  const auto& legs = domain::exchange_legs(processes_.at(key).state.started);
  core_.submit(
      {legs[0], legs[1]},
      [this, key](const Status& s, std::vector<TransferOutcome> o) {
        post([this, key, s, o = std::move(o)] { legs_answered(key, s, o); });
      },
      /*workflow=*/true);
}

void Workflows::legs_answered(const Key& key, const Status& status,
                              const std::vector<TransferOutcome>& outcomes) {
  Process& p = processes_.at(key);
  if (!status.is_ok()) return stall(p, status);
  POINTEX_ASSERT(outcomes.size() == 2);
  crash_point("legs");
  decide(key, domain::decide_after_legs(outcomes[0].result, outcomes[1].result));
}

void Workflows::decide(const Key& key, const domain::ExchangeDecided& decided) {
  append_step(key, domain::step_decided, domain::encode_step(decided), [this, key](Process&) {
    crash_point("decided");
    resolve_legs(key);
  });
}

void Workflows::resolve_legs(const Key& key) {
  Process& p = processes_.at(key);
  const domain::ExchangeDecided& d = p.state.decided;
  std::vector<Transfer> resolutions;
  for (std::size_t i = 0; i < 2; ++i) {
    const std::uint8_t bit = i == 0 ? domain::leg1_bit : domain::leg2_bit;
    if ((d.legs & bit) != 0) {
      resolutions.push_back(domain::leg_resolution(p.state.started, i, d.commit));
    }
  }
  if (resolutions.empty()) return complete(p);
  core_.submit(
      std::move(resolutions),
      [this, key](const Status& s, std::vector<TransferOutcome> o) {
        post([this, key, s, o = std::move(o)] { resolutions_answered(key, s, o); });
      },
      /*workflow=*/true);
}

void Workflows::resolutions_answered(const Key& key, const Status& status,
                                     const std::vector<TransferOutcome>& outcomes) {
  Process& p = processes_.at(key);
  if (!status.is_ok()) return stall(p, status);
  for (const TransferOutcome& o : outcomes) {
    if (!domain::resolution_done(p.state.decided.commit, o.result)) {
      // Cannot happen: only this exchange may post or void its legs (code_reserved).
      log().critical("exchange {}: resolving a leg answered {}; left open", key.second,
                     to_string(o.result));
      return stall(p, Status::corruption("exchange leg could not be resolved"));
    }
  }
  crash_point("resolved");
  complete(p);
}

void Workflows::complete(Process& p) {
  const Key key{p.record.kind, p.record.id};
  domain::ExchangeCompleted completed{p.state.decided.result};
  append_step(key, domain::step_completed, domain::encode_step(completed), [this](Process& done) {
    crash_point("completed");
    open_.fetch_sub(1, std::memory_order_relaxed);
    answer_waiters(done);
  });
}

void Workflows::answer_waiters(Process& p) {
  std::vector<Waiter> waiters = std::move(p.waiters);
  p.waiters.clear();
  for (Waiter& w : waiters) w.callback(Status::ok(), domain::exchange_outcome(p.state, w.first));
}

void Workflows::resume(const Key& key) {
  Process& p = processes_.at(key);
  if (p.state.step == ExchangeStep::decided) return resolve_legs(key);
  POINTEX_ASSERT(p.state.step == ExchangeStep::started);
  // Nobody was answered: decide from the legs as the accounts hold them.
  const auto legs = domain::exchange_legs(p.state.started);
  std::optional<TransferInfo> found[2];
  for (int i = 0; i < 2; ++i) {
    const Status s = core_.lookup_transfer(legs[i].debit_account, legs[i].id, &found[i]);
    if (!s.is_ok()) return stall(p, s);
  }
  decide(key, domain::decide_after_crash(p.state.started, found[0], found[1]));
}

}  // namespace pointex::engine

// The alliance exchange's steps and rates (docs/workflows.md). Every business rule is in
// src/domain/exchange.cpp; this file sequences the steps through the host (engine/workflows.cpp),
// which makes each durable before it is acted on, and resumes open exchanges after a restart.

#include "engine/exchange_flow.hpp"

#include <memory>

#include "domain/assert.hpp"
#include "engine/answer_latch.hpp"
#include "engine/log.hpp"

namespace pointex::engine {
ExchangeFlow::ExchangeFlow(Workflows& host) : host_(host) {}

// ---------------------------------------------------------------------------------------------
// The Flow interface.

Status ExchangeFlow::load(const store::ReadModel& read_model) {
  std::vector<Rate> rates;
  const Status s = read_model.rates(&rates);
  if (!s.is_ok()) return s;
  std::lock_guard<std::mutex> lock(rates_mutex_);
  for (const Rate& r : rates) rates_[{r.from_ledger, r.to_ledger}] = r;
  return Status::ok();
}

Status ExchangeFlow::recover(const domain::RateSet& event) {
  // Pair assertion: what was validated before it was written must still be valid.
  if (domain::validate_rate(event.rate) != RateResult::ok) {
    return Status::corruption("rate fails validation");
  }
  std::lock_guard<std::mutex> lock(rates_mutex_);
  rates_[{event.rate.from_ledger, event.rate.to_ledger}] = event.rate;
  return Status::ok();
}

bool ExchangeFlow::fold(const domain::ProcessRecord& record) {
  POINTEX_ASSERT(record.kind == kind());
  return domain::fold_exchange(record, &exchanges_[record.id].state) == domain::DecodeError::none;
}

void ExchangeFlow::resume(ExchangeId id) {
  const Entry& e = exchanges_.at(id);
  if (e.state.step == ExchangeStep::decided) return resolve_legs(id);
  POINTEX_ASSERT(e.state.step == ExchangeStep::started);
  // Nobody was answered: decide from the legs as the accounts hold them.
  const auto legs = domain::exchange_legs(e.state.started);
  std::optional<TransferInfo> found[2];
  for (int i = 0; i < 2; ++i) {
    const Status s = host_.core().lookup_transfer(legs[i].debit_account, legs[i].id, &found[i]);
    if (!s.is_ok()) return stall(id, s);
  }
  decide(id, domain::decide_after_crash(e.state.started, found[0], found[1]));
}

void ExchangeFlow::wake(ExchangeId id, std::uint64_t) {
  // An exchange has no timeout, so it never arms a timer.
  log().critical("exchange {}: woken by a timer it never armed; ignored", id);
}

void ExchangeFlow::step_failed(ExchangeId id, bool abandoned, const Status& status) {
  const auto it = exchanges_.find(id);
  POINTEX_ASSERT(it != exchanges_.end());
  std::vector<Waiter> waiters = std::move(it->second.waiters);
  it->second.waiters.clear();
  // Abandoned: it never started, a retry is decided afresh.
  if (abandoned) exchanges_.erase(it);
  for (Waiter& w : waiters) w.callback(status, {});
}

bool ExchangeFlow::may_leave(ExchangeId id) const {
  const auto it = exchanges_.find(id);
  return it == exchanges_.end() || it->second.waiters.empty();
}

void ExchangeFlow::forget(ExchangeId id) {
  exchanges_.erase(id);
}

void ExchangeFlow::stop(const Status& status) {
  for (auto& [id, e] : exchanges_) {
    for (Waiter& w : e.waiters) w.callback(status, {});
    e.waiters.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Rates (caller's thread).

void ExchangeFlow::set_rate(const Rate& rate, ResultCallback<RateResult> callback) {
  Engine::Impl& core = host_.core();
  if (core.stopping.load()) {
    return callback(Status::shutting_down("engine is closing"), RateResult::ok);
  }
  if (core.journal->failed()) {
    return callback(Status::io_error("the event log failed; reopen the data dir"), RateResult::ok);
  }
  {
    std::lock_guard<std::mutex> lock(core.ledgers_mutex);
    if (core.ledgers.count(rate.from_ledger) == 0) {
      return callback(Status::ok(), RateResult::from_ledger_not_found);
    }
    if (core.ledgers.count(rate.to_ledger) == 0) {
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
    const Status s = core.directory.lookup(id, &entry);
    if (!s.is_ok()) return callback(s, RateResult::ok);
    if (entry != nullptr) {
      *spec = entry->spec;
      entry->unpin();
    }
  }
  r = domain::check_rate_accounts(rate, from ? &*from : nullptr, to ? &*to : nullptr);
  if (r != RateResult::ok) return callback(Status::ok(), r);
  std::shared_ptr<AnswerLatch> latch;
  {
    std::lock_guard<std::mutex> lock(set_rate_mutex_);
    // Published at once, like a ledger: an exchange using it is logged after it.
    latch = append_definition<domain::RateSet>(
        *core.journal, core.test_publish_delay_us, rate,
        this->rate(rate.from_ledger, rate.to_ledger),
        [this](const Rate& r) {
          std::lock_guard<std::mutex> rates_lock(rates_mutex_);
          rates_[{r.from_ledger, r.to_ledger}] = r;
        },
        std::move(callback));
  }
  latch->arrive();
}

std::optional<Rate> ExchangeFlow::rate(LedgerId from_ledger, LedgerId to_ledger) const {
  std::lock_guard<std::mutex> lock(rates_mutex_);
  const auto it = rates_.find({from_ledger, to_ledger});
  if (it == rates_.end()) return std::nullopt;
  return it->second;
}

std::vector<Rate> ExchangeFlow::rates() const {
  std::lock_guard<std::mutex> lock(rates_mutex_);
  std::vector<Rate> out;
  out.reserve(rates_.size());
  for (const auto& [key, r] : rates_) out.push_back(r);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Exchanges: the entry points post to the flows thread.

void ExchangeFlow::exchange(const Exchange& exchange, ResultCallback<ExchangeOutcome> callback) {
  auto shared = std::make_shared<ResultCallback<ExchangeOutcome>>(std::move(callback));
  if (host_.core().stopping.load() ||
      !host_.post([this, exchange, shared] { start(exchange, std::move(*shared)); })) {
    (*shared)(Status::shutting_down("engine is closing"), {});
  }
}

void ExchangeFlow::lookup_exchange(ExchangeId id,
                                   ResultCallback<std::optional<ExchangeInfo>> callback) {
  auto shared = std::make_shared<ResultCallback<std::optional<ExchangeInfo>>>(std::move(callback));
  const bool posted = host_.post([this, id, shared] {
    Status s;
    std::optional<ExchangeInfo> info;
    if (host_.find(key(id), &s) != nullptr) info = domain::exchange_info(exchanges_.at(id).state);
    (*shared)(s, std::move(info));
  });
  if (!posted) (*shared)(Status::shutting_down("engine is closing"), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// The steps, on the flows thread.

void ExchangeFlow::start(const Exchange& ex, ResultCallback<ExchangeOutcome> callback) {
  const auto refuse = [&](ExchangeResult r) {
    ExchangeOutcome o;
    o.result = r;
    callback(Status::ok(), o);
  };
  ExchangeResult r = domain::validate_exchange(ex);
  if (r != ExchangeResult::ok) return refuse(r);
  Status s;
  if (const domain::ProcessRecord* record = host_.find(key(ex.id), &s)) {
    Entry& e = exchanges_.at(ex.id);
    if (e.state.started.request != ex) return refuse(ExchangeResult::exists_with_different_fields);
    if (domain::process_finished(*record)) {
      return callback(Status::ok(), domain::exchange_outcome(e.state, /*first=*/false));
    }
    const Status stalled = host_.stalled(key(ex.id));
    if (!stalled.is_ok()) return callback(stalled, {});
    e.waiters.push_back({std::move(callback), false});  // answered when it completes
    return;
  }
  if (!s.is_ok()) return callback(s, {});
  if (!host_.may_open()) {
    return callback(Status::overloaded("too many exchanges in flight; retry with the same id"), {});
  }
  std::optional<AccountSpec> accounts[2];
  const AccountId ids[2] = {ex.from_account, ex.to_account};
  for (int i = 0; i < 2; ++i) {
    AccountEntry* entry = nullptr;
    s = host_.core().directory.lookup(ids[i], &entry);
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
  const std::uint32_t day = domain::utc_day(host_.core().now());
  r = domain::check_caps(*rate, host_.counters(), ex.from_account, day, ex.amount);
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
  Entry& e = exchanges_[ex.id];
  e.state.started = started;  // read by retries before it is durable
  e.waiters.push_back({std::move(callback), true});
  const ExchangeId id = ex.id;
  host_.open({kind(), id, domain::step_started, domain::encode_step(started), 0}, [this, id] {
    host_.crash_point("started");
    submit_legs(id);
  });
}

void ExchangeFlow::submit_legs(ExchangeId id) {
  const auto& legs = domain::exchange_legs(exchanges_.at(id).state.started);
  host_.core().submit(
      {legs[0], legs[1]},
      [this, id](const Status& s, std::vector<TransferOutcome> o) {
        host_.post([this, id, s, o = std::move(o)] { legs_answered(id, s, o); });
      },
      /*workflow=*/true);
}

void ExchangeFlow::legs_answered(ExchangeId id, const Status& status,
                                 const std::vector<TransferOutcome>& outcomes) {
  if (!status.is_ok()) return stall(id, status);
  POINTEX_ASSERT(outcomes.size() == 2);
  host_.crash_point("legs");
  decide(id, domain::decide_after_legs(outcomes[0].result, outcomes[1].result));
}

void ExchangeFlow::decide(ExchangeId id, const domain::ExchangeDecided& decided) {
  host_.append_step(key(id), domain::step_decided, domain::encode_step(decided), [this, id] {
    host_.crash_point("decided");
    resolve_legs(id);
  });
}

void ExchangeFlow::resolve_legs(ExchangeId id) {
  const domain::ExchangeState& state = exchanges_.at(id).state;
  const domain::ExchangeDecided& d = state.decided;
  std::vector<Transfer> resolutions;
  for (std::size_t i = 0; i < 2; ++i) {
    const std::uint8_t bit = i == 0 ? domain::leg1_bit : domain::leg2_bit;
    if ((d.legs & bit) != 0) {
      resolutions.push_back(domain::leg_resolution(state.started, i, d.commit));
    }
  }
  if (resolutions.empty()) return complete(id);
  host_.core().submit(
      std::move(resolutions),
      [this, id](const Status& s, std::vector<TransferOutcome> o) {
        host_.post([this, id, s, o = std::move(o)] { resolutions_answered(id, s, o); });
      },
      /*workflow=*/true);
}

void ExchangeFlow::resolutions_answered(ExchangeId id, const Status& status,
                                        const std::vector<TransferOutcome>& outcomes) {
  if (!status.is_ok()) return stall(id, status);
  const bool commit = exchanges_.at(id).state.decided.commit;
  for (const TransferOutcome& o : outcomes) {
    if (!domain::resolution_done(commit, o.result)) {
      // Cannot happen: only this exchange may post or void its legs (code_reserved).
      log().critical("exchange {}: resolving a leg answered {}; left open", id,
                     to_string(o.result));
      return stall(id, Status::corruption("exchange leg could not be resolved"));
    }
  }
  host_.crash_point("resolved");
  complete(id);
}

void ExchangeFlow::complete(ExchangeId id) {
  const domain::ExchangeCompleted completed{exchanges_.at(id).state.decided.result};
  host_.append_step(key(id), domain::step_completed, domain::encode_step(completed), [this, id] {
    host_.crash_point("completed");
    answer_waiters(exchanges_.at(id));
  });
}

void ExchangeFlow::stall(ExchangeId id, const Status& status) {
  host_.stall(key(id), status);
  step_failed(id, /*abandoned=*/false, status);
}

void ExchangeFlow::answer_waiters(Entry& e) {
  std::vector<Waiter> waiters = std::move(e.waiters);
  e.waiters.clear();
  for (Waiter& w : waiters) w.callback(Status::ok(), domain::exchange_outcome(e.state, w.first));
}

}  // namespace pointex::engine

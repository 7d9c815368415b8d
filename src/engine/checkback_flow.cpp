// Check-backs on the process host (docs/workflows.md, "Check-backs"). Every rule is in
// src/domain/checkback.cpp; this file sequences a case's steps, makes each durable before it
// is acted on (Workflows::append_step), and asks the CheckBackClient off the flows thread.

#include "engine/checkback_flow.hpp"

#include <algorithm>

#include "domain/assert.hpp"
#include "engine/log.hpp"

namespace pointex::engine {
namespace {

constexpr std::uint64_t ns_per_s = 1'000'000'000ULL;

}  // namespace

void CheckBackFlow::Gate::post(std::function<void(CheckBackFlow&)> task) {
  std::lock_guard<std::mutex> lock(mutex);
  if (flow == nullptr) return;
  CheckBackFlow* f = flow;
  f->host_.post([f, task = std::move(task)] { task(*f); });
}

CheckBackFlow::CheckBackFlow(Workflows& host)
    : host_(host), core_(host.core()), gate_(std::make_shared<Gate>()) {
  gate_->flow = this;
}

CheckBackFlow::~CheckBackFlow() {
  stop(Status::shutting_down("engine is closing"));
}

// ---------------------------------------------------------------------------------------------
// The Flow interface.

bool CheckBackFlow::fold(const domain::ProcessRecord& record) {
  POINTEX_ASSERT(record.kind == kind());
  return domain::fold_check_back(record, &cases_[record.id].state) == domain::DecodeError::none;
}

void CheckBackFlow::resume(TransferId id) {
  advance(id);
}

void CheckBackFlow::wake(TransferId id, std::uint64_t) {
  const Entry& e = cases_.at(id);
  if (!e.busy && domain::check_due(e.state, core_.now())) advance(id);
}

void CheckBackFlow::step_failed(TransferId id, bool abandoned, const Status& status) {
  const auto it = cases_.find(id);
  if (it == cases_.end()) return;
  std::vector<Waiter> waiters = std::move(it->second.waiters);
  it->second.waiters.clear();
  it->second.busy = false;
  if (abandoned) cases_.erase(it);
  for (Waiter& w : waiters) w.callback(status, {});
}

bool CheckBackFlow::may_leave(TransferId id) const {
  const auto it = cases_.find(id);
  return it == cases_.end() || (!it->second.busy && it->second.waiters.empty());
}

void CheckBackFlow::forget(TransferId id) {
  cases_.erase(id);
}

void CheckBackFlow::stop(const Status& status) {
  {
    std::lock_guard<std::mutex> lock(gate_->mutex);
    if (gate_->flow == nullptr) return;
    gate_->flow = nullptr;
  }
  for (auto& [id, e] : cases_) {
    for (Waiter& w : e.waiters) w.callback(status, {});
    e.waiters.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// The facade's calls.

void CheckBackFlow::create(const CheckedTransfer& request,
                           ResultCallback<CheckBackOutcome> callback) {
  auto shared = std::make_shared<ResultCallback<CheckBackOutcome>>(std::move(callback));
  if (core_.stopping.load() ||
      !host_.post([this, request, shared] { start(request, std::move(*shared)); })) {
    (*shared)(Status::shutting_down("engine is closing"), {});
  }
}

void CheckBackFlow::lookup(TransferId id, ResultCallback<std::optional<CheckBackInfo>> callback) {
  auto shared = std::make_shared<ResultCallback<std::optional<CheckBackInfo>>>(std::move(callback));
  const bool posted = host_.post([this, id, shared] {
    Status s;
    std::optional<CheckBackInfo> found;
    if (host_.find(key(id), &s) != nullptr) found = info(id);
    (*shared)(s, std::move(found));
  });
  if (!posted) (*shared)(Status::shutting_down("engine is closing"), std::nullopt);
}

void CheckBackFlow::parked(ResultCallback<std::vector<CheckBackInfo>> callback) {
  auto shared = std::make_shared<ResultCallback<std::vector<CheckBackInfo>>>(std::move(callback));
  const bool posted = host_.post([this, shared] {
    // Parked cases are open processes: every one is in memory.
    std::vector<CheckBackInfo> out;
    for (const auto& [id, e] : cases_) {
      if (domain::check_back_status(e.state) == CheckBackStatus::parked && e.state.completed) {
        out.push_back(info(id));
      }
    }
    std::sort(out.begin(), out.end(), [](const CheckBackInfo& a, const CheckBackInfo& b) {
      return a.updated_at < b.updated_at;
    });
    (*shared)(Status::ok(), std::move(out));
  });
  if (!posted) (*shared)(Status::shutting_down("engine is closing"), {});
}

void CheckBackFlow::resolve(TransferId id, const std::string& note,
                            ResultCallback<CheckBackOutcome> callback) {
  auto shared = std::make_shared<ResultCallback<CheckBackOutcome>>(std::move(callback));
  if (core_.stopping.load() ||
      !host_.post([this, id, note, shared] { take_resolve(id, note, std::move(*shared)); })) {
    (*shared)(Status::shutting_down("engine is closing"), {});
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points, on the flows thread.

void CheckBackFlow::start(CheckedTransfer request, ResultCallback<CheckBackOutcome> callback) {
  CheckBackOutcome refused;
  refused.result = domain::validate_checked_transfer(request, &refused.transfer_result);
  if (refused.result != CheckBackResult::ok) return callback(Status::ok(), refused);
  if (!core_.options.check_back_client) {
    return callback(Status::invalid_argument("no check-back client is configured"), {});
  }
  // A retry that gave no checks_max is the same request as the first.
  if (request.checks_max == 0) request.checks_max = core_.options.check_back_checks_default;
  const TransferId id = request.transfer.id;
  Status s;
  if (host_.find(key(id), &s) != nullptr) {
    Entry& e = cases_.at(id);
    if (e.state.started.request != request) {
      return callback(Status::ok(),
                      CheckBackOutcome{CheckBackResult::exists_with_different_fields, {}, {}});
    }
    const Status stalled = host_.stalled(key(id));
    if (!stalled.is_ok()) return callback(stalled, {});
    e.waiters.push_back({Waiter::Kind::create, CheckBackResult::exists, std::move(callback)});
    if (!e.busy) settle(id);
    return;
  }
  if (!s.is_ok()) return callback(s, {});
  if (!host_.may_open()) {
    return callback(Status::overloaded("too many processes in flight; retry with the same id"), {});
  }
  domain::CheckStarted started;
  started.request = request;
  // The first check is due check_after_s from now (engine clock): durable in `started`, so a
  // restart arms it again.
  started.first_check_at = core_.now() + std::uint64_t{request.check_after_s} * ns_per_s;
  Entry& e = cases_[id];
  e.state.started = started;  // read by retries before it is durable
  e.busy = true;
  e.waiters.push_back({Waiter::Kind::create, CheckBackResult::ok, std::move(callback)});
  host_.open({kind(), id, static_cast<std::uint8_t>(domain::CheckStep::started),
              domain::encode_step(started), 0},
             [this, id] {
               cases_.at(id).busy = false;
               host_.crash_point("check:started");
               advance(id);
             });
}

void CheckBackFlow::take_resolve(TransferId id, const std::string& note,
                                 ResultCallback<CheckBackOutcome> callback) {
  Status s;
  if (host_.find(key(id), &s) == nullptr) {
    if (!s.is_ok()) return callback(s, {});
    return callback(Status::ok(), CheckBackOutcome{CheckBackResult::not_found, {}, {}});
  }
  const Status stalled = host_.stalled(key(id));
  if (!stalled.is_ok()) return callback(stalled, {});
  Entry& e = cases_.at(id);
  const CheckBackResult r = e.busy || !e.state.completed ? CheckBackResult::not_parked
                                                         : domain::decide_resolve(e.state, note);
  if (r != CheckBackResult::ok) return callback(Status::ok(), CheckBackOutcome{r, {}, info(id)});
  e.waiters.push_back({Waiter::Kind::resolve, CheckBackResult::ok, std::move(callback)});
  append(id, domain::CheckStep::resolved, domain::encode_step(domain::CheckResolved{note}),
         "check:resolved");
}

// ---------------------------------------------------------------------------------------------
// Steps.

void CheckBackFlow::submit(TransferId id, const Transfer& transfer, Answered then) {
  cases_.at(id).busy = true;
  core_.submit(
      {transfer},
      [this, id, then](const Status& s, std::vector<TransferOutcome> o) {
        const TransferResult r = o.empty() ? TransferResult::ok : o[0].result;
        host_.post([this, id, then, s, r] {
          cases_.at(id).busy = false;
          (this->*then)(id, s, r);
        });
      },
      /*workflow=*/true);
}

void CheckBackFlow::append(TransferId id, domain::CheckStep step, std::string data,
                           const char* crash_at) {
  cases_.at(id).busy = true;
  host_.append_step(key(id), static_cast<std::uint8_t>(step), std::move(data),
                    [this, id, crash_at] {
                      cases_.at(id).busy = false;
                      host_.crash_point(crash_at);
                      advance(id);
                    });
}

void CheckBackFlow::advance(TransferId id) {
  Entry& e = cases_.at(id);
  POINTEX_ASSERT(!e.busy);
  const domain::CheckState& st = e.state;
  if (!st.decided) {
    if (!st.made) {
      return submit(id, domain::check_back_pending(st.started), &CheckBackFlow::pending_answered);
    }
    if (const std::optional<domain::CheckDecided> d = domain::decided_by_last_check(st)) {
      return append(id, domain::CheckStep::decided, domain::encode_step(*d), "check:decided");
    }
    if (domain::check_due(st, core_.now())) return check(id);
    host_.wake_at(key(id), st.next_check_at);
  } else if (!st.completed) {
    switch (st.decision.outcome) {
      case domain::CheckOutcome::commit:
        return submit(id, domain::check_back_resolution(st.started, true),
                      &CheckBackFlow::resolution_answered);
      case domain::CheckOutcome::rollback:
      case domain::CheckOutcome::park:
        return submit(id, domain::check_back_resolution(st.started, false),
                      &CheckBackFlow::resolution_answered);
      case domain::CheckOutcome::fail:
      case domain::CheckOutcome::client_committed:
      case domain::CheckOutcome::client_rolled_back: {
        // Nothing to post or void: the transfer was refused, or its client resolved it.
        const bool posted = st.decision.outcome == domain::CheckOutcome::client_committed;
        return append(id, domain::CheckStep::completed,
                      domain::encode_step(domain::CheckCompleted{posted}), "check:completed");
      }
    }
  }
  settle(id);
}

void CheckBackFlow::pending_answered(TransferId id, const Status& status, TransferResult result) {
  if (!status.is_ok()) return stall(id, status);
  if (const std::optional<domain::CheckDecided> failed = domain::decide_after_pending(result)) {
    return append(id, domain::CheckStep::decided, domain::encode_step(*failed), "check:decided");
  }
  append(id, domain::CheckStep::made, domain::encode_empty_check_step(), "check:made");
}

void CheckBackFlow::check(TransferId id) {
  Entry& e = cases_.at(id);
  const Transfer& t = e.state.started.request.transfer;
  // Its client may have posted or voided it already: then no URL is asked.
  std::optional<TransferInfo> found;
  const Status s = core_.lookup_transfer(t.debit_account, t.id, &found);
  if (!s.is_ok()) return stall(id, s);
  if (found) {
    if (const std::optional<domain::CheckDecided> d = domain::decide_from_client(found->state)) {
      return append(id, domain::CheckStep::decided, domain::encode_step(*d), "check:decided");
    }
  }
  e.busy = true;
  CheckRequest request;
  request.transfer = t;
  request.url = e.state.started.request.url;
  request.attempt = static_cast<std::uint32_t>(e.state.checks.size() + 1);
  core_.options.check_back_client->check(
      request, [gate = gate_, id](CheckAnswer answer, std::string detail) {
        gate->post([id, answer, detail = std::move(detail)](CheckBackFlow& flow) {
          flow.check_answered(id, answer, detail);
        });
      });
}

void CheckBackFlow::check_answered(TransferId id, CheckAnswer answer, std::string detail) {
  Entry& e = cases_.at(id);
  e.busy = false;
  if (!host_.stalled(key(id)).is_ok() || e.state.decided) return;
  const domain::CheckAnswered a = domain::decide_check(
      e.state, answer, std::move(detail), core_.now(), core_.options.check_back_backoff_base_ms,
      core_.options.check_back_backoff_max_ms);
  if (answer != CheckAnswer::commit && answer != CheckAnswer::rollback) {
    log().warn("check-back {}: check {} answered unknown ({})", id, a.step.check.attempt,
               a.step.check.detail);
  }
  append(id, domain::CheckStep::checked, domain::encode_step(a.step), "check:checked");
}

void CheckBackFlow::resolution_answered(TransferId id, const Status& status,
                                        TransferResult result) {
  if (!status.is_ok()) return stall(id, status);
  const domain::CheckState& st = cases_.at(id).state;
  const bool post = st.decision.outcome == domain::CheckOutcome::commit;
  bool posted = false;
  if (!domain::check_back_resolution_final(post, result, &posted)) {
    log().critical("check-back {}: resolving its transfer answered {}; left open", id,
                   to_string(result));
    return stall(id, Status::corruption("check-back transfer could not be resolved"));
  }
  host_.crash_point("check:resolved_transfer");
  append(id, domain::CheckStep::completed, domain::encode_step(domain::CheckCompleted{posted}),
         "check:completed");
}

void CheckBackFlow::stall(TransferId id, const Status& status) {
  host_.stall(key(id), status);
  step_failed(id, /*abandoned=*/false, status);
}

void CheckBackFlow::settle(TransferId id) {
  Entry& e = cases_.at(id);
  std::vector<Waiter> waiters = std::move(e.waiters);
  e.waiters.clear();
  for (Waiter& w : waiters) {
    w.callback(Status::ok(), CheckBackOutcome{w.result, TransferResult::ok, info(id)});
  }
}

CheckBackInfo CheckBackFlow::info(TransferId id) const {
  return domain::check_back_info(cases_.at(id).state);
}

}  // namespace pointex::engine

// Shopping rebates on the process host (docs/workflows.md, "Rebates"). Every rule is in
// src/domain/rebate.cpp; this file sequences a purchase's steps, makes each durable before it
// is acted on (Workflows::append_step), and keeps the ledgers' earning rules.

#include "engine/rebate_flow.hpp"

#include "domain/assert.hpp"
#include "domain/exchange.hpp"
#include "engine/answer_latch.hpp"
#include "engine/log.hpp"

namespace pointex::engine {
namespace {

constexpr std::uint64_t ns_per_s = 1'000'000'000ULL;

}  // namespace

RebateFlow::RebateFlow(Workflows& host) : host_(host), core_(host.core()) {}

// ---------------------------------------------------------------------------------------------
// Rules.

Status RebateFlow::load(const store::ReadModel& read_model) {
  std::vector<EarningRules> all;
  const Status s = read_model.rules(&all);
  if (!s.is_ok()) return s;
  std::lock_guard<std::mutex> lock(rules_mutex_);
  for (EarningRules& r : all) rules_[r.ledger] = std::move(r);
  return Status::ok();
}

Status RebateFlow::recover(const domain::RulesSet& event) {
  std::lock_guard<std::mutex> lock(rules_mutex_);
  rules_[event.rules.ledger] = event.rules;
  return Status::ok();
}

void RebateFlow::set_rules(const EarningRules& rules, ResultCallback<RulesResult> callback) {
  if (core_.stopping.load()) {
    return callback(Status::shutting_down("engine is closing"), RulesResult::ok);
  }
  if (core_.journal->failed()) {
    return callback(Status::io_error("the event log failed; reopen the data dir"), RulesResult::ok);
  }
  {
    std::lock_guard<std::mutex> lock(core_.ledgers_mutex);
    if (core_.ledgers.count(rules.ledger) == 0) {
      return callback(Status::ok(), RulesResult::ledger_not_found);
    }
  }
  std::optional<AccountSpec> accounts[2];
  const AccountId ids[2] = {rules.issuer_account, rules.expiry_account};
  for (int i = 0; i < 2; ++i) {
    if (ids[i] == 0) continue;
    AccountEntry* entry = nullptr;
    const Status s = core_.directory.lookup(ids[i], &entry);
    if (!s.is_ok()) return callback(s, RulesResult::ok);
    if (entry != nullptr) {
      accounts[i] = entry->spec;
      entry->unpin();
    }
  }
  RulesResult r = domain::check_rules_account(rules, accounts[0] ? &*accounts[0] : nullptr,
                                              accounts[1] ? &*accounts[1] : nullptr);
  if (r == RulesResult::ok) r = domain::validate_rules(rules);
  if (r != RulesResult::ok) return callback(Status::ok(), r);

  std::shared_ptr<AnswerLatch> latch;
  {
    std::lock_guard<std::mutex> lock(set_rules_mutex_);
    // Published at once: a purchase using them is logged after them.
    latch = append_definition<domain::RulesSet>(
        *core_.journal, core_.test_publish_delay_us, rules, this->rules(rules.ledger),
        [this](const EarningRules& r) {
          std::lock_guard<std::mutex> rules_lock(rules_mutex_);
          rules_[r.ledger] = r;
        },
        std::move(callback));
  }
  latch->arrive();
}

std::optional<EarningRules> RebateFlow::rules(LedgerId ledger) const {
  std::lock_guard<std::mutex> lock(rules_mutex_);
  const auto it = rules_.find(ledger);
  if (it == rules_.end()) return std::nullopt;
  return it->second;
}

std::vector<EarningRules> RebateFlow::all_rules() const {
  std::lock_guard<std::mutex> lock(rules_mutex_);
  std::vector<EarningRules> out;
  for (const auto& [ledger, r] : rules_) out.push_back(r);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The Flow interface.

bool RebateFlow::fold(const domain::ProcessRecord& record) {
  POINTEX_ASSERT(record.kind == kind());
  return domain::fold_purchase(record, &purchases_[record.id].state) == domain::DecodeError::none;
}

void RebateFlow::resume(PurchaseId id) {
  advance(id);
}

void RebateFlow::wake(PurchaseId id, std::uint64_t) {
  const Entry& e = purchases_.at(id);
  if (!e.busy && domain::purchase_due(e.state, core_.now())) advance(id);
}

void RebateFlow::step_failed(PurchaseId id, bool abandoned, const Status& status) {
  const auto it = purchases_.find(id);
  if (it == purchases_.end()) return;
  Entry taken = std::move(it->second);
  // Abandoned: it never started, a retry is decided afresh. Else it is stalled until the next
  // open, which resumes it.
  if (abandoned) {
    purchases_.erase(it);
  } else {
    it->second.state = taken.state;
    it->second.busy = false;
  }
  for (Waiter& w : taken.waiters) w.callback(status, {});
  for (QueuedRefund& q : taken.refunds) q.callback(status, {});
}

bool RebateFlow::may_leave(PurchaseId id) const {
  const auto it = purchases_.find(id);
  if (it == purchases_.end()) return true;
  const Entry& e = it->second;
  return !e.busy && e.waiters.empty() && e.refunds.empty();
}

void RebateFlow::forget(PurchaseId id) {
  purchases_.erase(id);
}

void RebateFlow::stop(const Status& status) {
  for (auto& [id, e] : purchases_) {
    for (Waiter& w : e.waiters) w.callback(status, {});
    for (QueuedRefund& q : e.refunds) q.callback(status, {});
    e.waiters.clear();
    e.refunds.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// The facade's calls.

void RebateFlow::purchase(const Purchase& purchase, ResultCallback<PurchaseOutcome> callback) {
  auto shared = std::make_shared<ResultCallback<PurchaseOutcome>>(std::move(callback));
  if (core_.stopping.load() ||
      !host_.post([this, purchase, shared] { start(purchase, std::move(*shared)); })) {
    (*shared)(Status::shutting_down("engine is closing"), {});
  }
}

void RebateFlow::refund(const Refund& refund, ResultCallback<PurchaseOutcome> callback) {
  auto shared = std::make_shared<ResultCallback<PurchaseOutcome>>(std::move(callback));
  if (core_.stopping.load() ||
      !host_.post([this, refund, shared] { take_refund(refund, std::move(*shared)); })) {
    (*shared)(Status::shutting_down("engine is closing"), {});
  }
}

void RebateFlow::lookup(PurchaseId id, ResultCallback<std::optional<PurchaseInfo>> callback) {
  auto shared = std::make_shared<ResultCallback<std::optional<PurchaseInfo>>>(std::move(callback));
  const bool posted = host_.post([this, id, shared] {
    Status s;
    std::optional<PurchaseInfo> found;
    if (host_.find(key(id), &s) != nullptr) found = info(id);
    (*shared)(s, std::move(found));
  });
  if (!posted) (*shared)(Status::shutting_down("engine is closing"), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Entry points, on the flows thread.

PurchaseResult RebateFlow::prepare(const Purchase& p, domain::PurchaseStarted* started,
                                   Status* status) {
  AccountEntry* entry = nullptr;
  *status = core_.directory.lookup(p.member_account, &entry);
  if (!status->is_ok()) return PurchaseResult::ok;
  if (entry == nullptr) return PurchaseResult::member_account_not_found;
  const AccountSpec member = entry->spec;
  entry->unpin();
  if (member.kind != AccountKind::member) return PurchaseResult::member_account_invalid;
  const std::optional<EarningRules> r = rules(member.ledger);
  if (!r) return PurchaseResult::rules_not_found;
  const std::uint64_t now = core_.now();
  const domain::Earning earning = domain::earn(*r, p, now);
  if (earning.result != PurchaseResult::ok) return earning.result;
  started->request = p;
  started->ledger = member.ledger;
  started->issuer_account = r->issuer_account;
  started->rate_bps = earning.rate_bps;
  started->multiplier_bps = earning.multiplier_bps;
  started->points_earned = earning.points_earned;
  started->day = domain::utc_day(now);
  const std::uint64_t today = domain::counter_value(
      host_.counters(), domain::rebate_member_counter(started->day, p.member_account));
  started->points = domain::apply_daily_cap(earning.points, r->cap_per_member_day, today);
  started->window_ends_at = now + static_cast<std::uint64_t>(r->return_window_s) * ns_per_s;
  return PurchaseResult::ok;
}

void RebateFlow::start(const Purchase& purchase, ResultCallback<PurchaseOutcome> callback) {
  const auto refuse = [&](PurchaseResult r) { callback(Status::ok(), PurchaseOutcome{r, {}}); };
  const PurchaseResult r = domain::validate_purchase(purchase);
  if (r != PurchaseResult::ok) return refuse(r);
  Status s;
  if (host_.find(key(purchase.id), &s) != nullptr) {
    Entry& e = purchases_.at(purchase.id);
    if (e.state.started.request != purchase) {
      return refuse(PurchaseResult::exists_with_different_fields);
    }
    const Status stalled = host_.stalled(key(purchase.id));
    if (!stalled.is_ok()) return callback(stalled, {});
    e.waiters.push_back({PurchaseResult::exists, std::move(callback)});
    if (!e.busy && e.refunds.empty()) answer_waiters(purchase.id);
    return;
  }
  if (!s.is_ok()) return callback(s, {});
  if (!host_.may_open()) {
    return callback(Status::overloaded("too many processes in flight; retry with the same id"), {});
  }
  domain::PurchaseStarted started;
  const PurchaseResult checked = prepare(purchase, &started, &s);
  if (!s.is_ok()) return callback(s, {});
  if (checked != PurchaseResult::ok) return refuse(checked);
  const PurchaseId id = purchase.id;
  Entry& e = purchases_[id];
  e.state.started = started;  // read by retries before it is durable
  e.busy = true;
  e.waiters.push_back({PurchaseResult::ok, std::move(callback)});
  host_.open({kind(), id, static_cast<std::uint8_t>(domain::PurchaseStep::started),
              domain::encode_step(started), 0},
             [this, id] {
               purchases_.at(id).busy = false;
               host_.crash_point("purchase:started");
               advance(id);
             });
}

void RebateFlow::take_refund(const Refund& refund, ResultCallback<PurchaseOutcome> callback) {
  Status s;
  if (host_.find(key(refund.purchase_id), &s) == nullptr) {
    if (!s.is_ok()) return callback(s, {});
    return callback(Status::ok(), PurchaseOutcome{PurchaseResult::purchase_not_found, {}});
  }
  const Status stalled = host_.stalled(key(refund.purchase_id));
  if (!stalled.is_ok()) return callback(stalled, {});
  Entry& e = purchases_.at(refund.purchase_id);
  e.refunds.push_back({refund, std::move(callback)});
  if (!e.busy) advance(refund.purchase_id);
}

// ---------------------------------------------------------------------------------------------
// Steps.

void RebateFlow::submit(PurchaseId id, const Transfer& transfer, Answered then) {
  purchases_.at(id).busy = true;
  core_.submit(
      {transfer},
      [this, id, then](const Status& s, std::vector<TransferOutcome> o) {
        const TransferResult r = o.empty() ? TransferResult::ok : o[0].result;
        host_.post([this, id, then, s, r] {
          purchases_.at(id).busy = false;
          (this->*then)(id, s, r);
        });
      },
      /*workflow=*/true);
}

void RebateFlow::append(PurchaseId id, domain::PurchaseStep step, std::string data,
                        const char* crash_at) {
  purchases_.at(id).busy = true;
  host_.append_step(key(id), static_cast<std::uint8_t>(step), std::move(data),
                    [this, id, crash_at] {
                      purchases_.at(id).busy = false;
                      host_.crash_point(crash_at);
                      advance(id);
                    });
}

void RebateFlow::advance(PurchaseId id) {
  Entry& e = purchases_.at(id);
  POINTEX_ASSERT(!e.busy);
  const domain::PurchaseState& st = e.state;
  if (!st.decided) {
    if (st.started.points == 0) {
      domain::PurchaseDecided nothing;
      nothing.status = PurchaseStatus::nothing_earned;
      return decide(id, nothing);
    }
    if (!st.credited) {
      return submit(id, domain::purchase_credit(st.started), &RebateFlow::credit_answered);
    }
    if (st.points_due == 0 || domain::purchase_due(st, core_.now())) {
      return decide(id, domain::decide_window_end(st));
    }
    host_.wake_at(key(id), st.started.window_ends_at);
  } else if (!st.completed) {
    const bool post = st.decision.status == PurchaseStatus::available;
    if (post || st.decision.status == PurchaseStatus::refunded) {
      return submit(id, domain::purchase_resolution(st.started, post, st.decision.points_posted),
                    &RebateFlow::resolution_answered);
    }
    return append(id, domain::PurchaseStep::completed, domain::encode_empty_purchase_step(),
                  "purchase:completed");
  } else if (st.clawbacks_open != 0) {
    for (const RefundInfo& r : st.refunds) {
      if (r.done) continue;
      const std::uint64_t position =
          r.clawback_transfer_id & ~(workflow_transfer_id_min | domain::clawback_id_bit);
      return submit(id, domain::purchase_clawback(st.started, r.clawback_points, position),
                    &RebateFlow::clawback_answered);
    }
  }
  // Idle: the next queued refund, else answer who waits.
  while (!e.refunds.empty()) {
    QueuedRefund q = std::move(e.refunds.front());
    e.refunds.pop_front();
    const domain::RefundDecision d = domain::decide_refund(st, q.refund);
    if (d.result != PurchaseResult::ok) {
      q.callback(Status::ok(), PurchaseOutcome{d.result, info(id)});
      continue;
    }
    e.waiters.push_back({PurchaseResult::ok, std::move(q.callback)});
    return append(id, domain::PurchaseStep::refunded, domain::encode_step(d.step),
                  "purchase:refunded");
  }
  answer_waiters(id);
}

void RebateFlow::credit_answered(PurchaseId id, const Status& status, TransferResult result) {
  if (!status.is_ok()) return stall(id, status);
  if (const std::optional<domain::PurchaseDecided> failed = domain::decide_after_credit(result)) {
    log().warn("purchase {}: its credit was refused: {}", id, to_string(result));
    return decide(id, *failed);
  }
  append(id, domain::PurchaseStep::credited, domain::encode_empty_purchase_step(),
         "purchase:credited");
}

void RebateFlow::decide(PurchaseId id, const domain::PurchaseDecided& decided) {
  append(id, domain::PurchaseStep::decided, domain::encode_step(decided), "purchase:decided");
}

void RebateFlow::resolution_answered(PurchaseId id, const Status& status, TransferResult result) {
  if (!status.is_ok()) return stall(id, status);
  const bool post = purchases_.at(id).state.decision.status == PurchaseStatus::available;
  if (!domain::purchase_resolution_done(post, result)) {
    // Cannot happen: only this purchase may post or void its credit (code_reserved).
    log().critical("purchase {}: resolving its points answered {}; left open", id,
                   to_string(result));
    return stall(id, Status::corruption("purchase points could not be resolved"));
  }
  host_.crash_point("purchase:resolved");
  append(id, domain::PurchaseStep::completed, domain::encode_empty_purchase_step(),
         "purchase:completed");
}

void RebateFlow::clawback_answered(PurchaseId id, const Status& status, TransferResult result) {
  if (!status.is_ok()) return stall(id, status);
  const domain::PurchaseState& st = purchases_.at(id).state;
  const RefundInfo* open = nullptr;
  for (const RefundInfo& r : st.refunds) {
    if (!r.done) {
      open = &r;
      break;
    }
  }
  POINTEX_ASSERT(open != nullptr);
  domain::PurchaseClawedBack c;
  c.refund_id = open->id;
  if (result == TransferResult::ok || result == TransferResult::exists) {
    // A balancing debit: what it moved is the committed transfer's amount.
    std::optional<TransferInfo> moved;
    const Status s = core_.lookup_transfer(st.started.request.member_account,
                                           open->clawback_transfer_id, &moved);
    if (!s.is_ok()) return stall(id, s);
    if (!moved) return stall(id, Status::corruption("purchase clawback not found after ok"));
    c.taken = moved->amount;
  } else {
    log().warn("purchase {}: clawback of {} points refused: {}; recorded as a shortfall", id,
               open->clawback_points, to_string(result));
  }
  c.shortfall = open->clawback_points - c.taken;
  host_.crash_point("purchase:clawback_transfer");
  append(id, domain::PurchaseStep::clawed_back, domain::encode_step(c), "purchase:clawed_back");
}

void RebateFlow::stall(PurchaseId id, const Status& status) {
  host_.stall(key(id), status);
  step_failed(id, /*abandoned=*/false, status);
}

void RebateFlow::answer_waiters(PurchaseId id) {
  Entry& e = purchases_.at(id);
  std::vector<Waiter> waiters = std::move(e.waiters);
  e.waiters.clear();
  for (Waiter& w : waiters) w.callback(Status::ok(), PurchaseOutcome{w.result, info(id)});
}

PurchaseInfo RebateFlow::info(PurchaseId id) const {
  return domain::purchase_info(purchases_.at(id).state);
}

}  // namespace pointex::engine

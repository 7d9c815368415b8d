// Points + cash orders on the process host (docs/workflows.md, "Orders"). Every rule is in
// src/domain/order.cpp; this file sequences the steps, makes each durable before acting on it
// (Workflows::append_step), talks to the payment providers and resumes open orders.

#include "engine/order_flow.hpp"

#include <set>

#include "domain/assert.hpp"
#include "engine/log.hpp"

namespace pointex::engine {
namespace {

constexpr std::uint64_t ns_per_s = 1'000'000'000ULL;

std::string cut(std::string text, std::size_t bytes_max) {
  if (text.size() > bytes_max) text.resize(bytes_max);
  return text;
}

}  // namespace

void OrderFlow::Gate::post(std::function<void(OrderFlow&)> task) {
  std::lock_guard<std::mutex> lock(mutex);
  if (flow == nullptr) return;
  OrderFlow* f = flow;
  f->host_.post([f, task = std::move(task)] { task(*f); });
}

OrderFlow::OrderFlow(Workflows& host)
    : host_(host), core_(host.core()), gate_(std::make_shared<Gate>()) {
  for (const std::shared_ptr<PaymentProvider>& p : core_.options.payment_providers) {
    if (default_provider_.empty()) default_provider_ = p->name();
    providers_[p->name()] = p;
  }
  gate_->flow = this;
  // Results a provider learns itself: queued for the flows thread (run once it starts).
  for (const auto& [name, provider] : providers_) {
    provider->attach(
        [gate = gate_, name = name](const std::string& payment_id, PaymentStatus status) {
          gate->post([name, payment_id, status](OrderFlow& flow) {
            flow.take_result(name, payment_id, status, [](const Status&, PaymentResultAnswer) {});
          });
        });
  }
}

OrderFlow::~OrderFlow() {
  stop(Status::shutting_down("engine is closing"));
}

Status OrderFlow::validate_options(const EngineOptions& o) {
  if (o.order_timeout_s_default == 0 || o.order_timeout_s_default > o.order_timeout_s_max) {
    return Status::invalid_argument(
        "order_timeout_s_default must be at least 1 and at most order_timeout_s_max");
  }
  std::set<std::string> names;
  for (const std::shared_ptr<PaymentProvider>& p : o.payment_providers) {
    if (!p) return Status::invalid_argument("payment_providers: a provider is null");
    if (!valid_payment_provider_name(p->name())) {
      return Status::invalid_argument("payment provider name '" + p->name() +
                                      "': 1-64 of a-z, 0-9, _ and -");
    }
    if (!names.insert(p->name()).second) {
      return Status::invalid_argument("payment provider '" + p->name() + "' given twice");
    }
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// The Flow interface.

bool OrderFlow::fold(const domain::ProcessRecord& record) {
  POINTEX_ASSERT(record.kind == kind());
  return domain::fold_order(record, &orders_[record.id].order) == domain::DecodeError::none;
}

void OrderFlow::stop(const Status& status) {
  {
    std::lock_guard<std::mutex> lock(gate_->mutex);
    if (gate_->flow == nullptr) return;
    gate_->flow = nullptr;
  }
  for (const auto& [name, provider] : providers_) provider->attach({});
  for (auto& [id, e] : orders_) step_failed(id, /*abandoned=*/false, status);
}

void OrderFlow::step_failed(OrderId id, bool abandoned, const Status& status) {
  const auto it = orders_.find(id);
  if (it == orders_.end()) return;
  std::vector<Waiter> waiters = std::move(it->second.waiters);
  it->second.waiters.clear();
  // Abandoned: it never started, a retry is decided afresh.
  if (abandoned) orders_.erase(it);
  for (Waiter& w : waiters) {
    if (w.kind == Waiter::Kind::payment) {
      w.payment(status, {});
    } else {
      w.order(status, {});
    }
  }
}

bool OrderFlow::may_leave(OrderId id) const {
  const auto it = orders_.find(id);
  if (it == orders_.end()) return true;
  const Entry& e = it->second;
  return e.waiters.empty() && !e.deciding && !e.creating && e.late_in_flight == 0;
}

void OrderFlow::forget(OrderId id) {
  orders_.erase(id);
}

void OrderFlow::resume(OrderId id) {
  switch (orders_.at(id).order.step) {
    case OrderStep::started:
      return reserve(id);  // the same transfer again: `exists` if it was made
    case OrderStep::reserved:
      return after_reserved(id);  // the payment again: the provider answers as the first time
    case OrderStep::payment_created:
      return host_.wake_at(key(id), orders_.at(id).order.started.deadline);
    case OrderStep::decided:
      return resolve(id);
    default:
      POINTEX_ASSERT(false);  // a completed order is not open
  }
}

void OrderFlow::wake(OrderId id, std::uint64_t) {
  Entry& e = orders_.at(id);
  if (!e.deciding && domain::order_due(e.order, core_.now())) decide(id, domain::expired());
}

void OrderFlow::stall(OrderId id, const Status& status) {
  host_.stall(key(id), status);
  step_failed(id, /*abandoned=*/false, status);
}

OrderInfo OrderFlow::info(OrderId id) {
  Status s;
  const domain::ProcessRecord* record = host_.find(key(id), &s);
  POINTEX_ASSERT(record != nullptr);  // asked only of orders in memory
  return domain::order_info(*record, orders_.at(id).order);
}

// ---------------------------------------------------------------------------------------------
// The facade's calls.

void OrderFlow::create(const Order& order, ResultCallback<OrderOutcome> callback) {
  auto shared = std::make_shared<ResultCallback<OrderOutcome>>(std::move(callback));
  if (core_.stopping.load() ||
      !host_.post([this, order, shared] { start_order(order, std::move(*shared)); })) {
    (*shared)(Status::shutting_down("engine is closing"), {});
  }
}

void OrderFlow::cancel(OrderId id, ResultCallback<OrderOutcome> callback) {
  auto shared = std::make_shared<ResultCallback<OrderOutcome>>(std::move(callback));
  if (core_.stopping.load() ||
      !host_.post([this, id, shared] { cancel_order(id, std::move(*shared)); })) {
    (*shared)(Status::shutting_down("engine is closing"), {});
  }
}

void OrderFlow::lookup(OrderId id, ResultCallback<std::optional<OrderInfo>> callback) {
  auto shared = std::make_shared<ResultCallback<std::optional<OrderInfo>>>(std::move(callback));
  const bool posted = host_.post([this, id, shared] {
    Status s;
    std::optional<OrderInfo> found;
    if (host_.find(key(id), &s) != nullptr) found = info(id);
    (*shared)(s, std::move(found));
  });
  if (!posted) (*shared)(Status::shutting_down("engine is closing"), std::nullopt);
}

void OrderFlow::payment_result(const std::string& provider, const std::string& payment_id,
                               PaymentStatus status, ResultCallback<PaymentResultAnswer> callback) {
  auto shared = std::make_shared<ResultCallback<PaymentResultAnswer>>(std::move(callback));
  if (core_.stopping.load() || !host_.post([this, provider, payment_id, status, shared] {
        take_result(provider, payment_id, status, std::move(*shared));
      })) {
    (*shared)(Status::shutting_down("engine is closing"), {});
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points, on the flows thread.

OrderResult OrderFlow::prepare(const Order& order, domain::OrderStarted* started, Status* status) {
  std::optional<AccountSpec> accounts[2];
  const AccountId ids[2] = {order.member_account, order.merchant_account};
  for (int i = 0; i < 2; ++i) {
    AccountEntry* entry = nullptr;
    *status = core_.directory.lookup(ids[i], &entry);
    if (!status->is_ok()) return OrderResult::ok;
    if (entry != nullptr) {
      accounts[i] = entry->spec;
      entry->unpin();
    }
  }
  const OrderResult r = domain::check_order_accounts(accounts[0] ? &*accounts[0] : nullptr,
                                                     accounts[1] ? &*accounts[1] : nullptr);
  if (r != OrderResult::ok) return r;
  started->request = order;
  started->ledger = accounts[0]->ledger;
  if (order.cash.amount != 0) {
    started->provider = order.provider.empty() ? default_provider_ : order.provider;
    if (providers_.count(started->provider) == 0) return OrderResult::provider_not_found;
  }
  const EngineOptions& o = core_.options;
  started->timeout_s = order.timeout_s != 0 ? order.timeout_s : o.order_timeout_s_default;
  started->deadline = core_.now() + started->timeout_s * ns_per_s;
  return OrderResult::ok;
}

void OrderFlow::start_order(const Order& order, ResultCallback<OrderOutcome> callback) {
  const auto refuse = [&](OrderResult r) { callback(Status::ok(), OrderOutcome{r, {}}); };
  const OrderResult r = domain::validate_order(order, core_.options.order_timeout_s_max);
  if (r != OrderResult::ok) return refuse(r);
  Status s;
  if (host_.find(key(order.id), &s) != nullptr) {
    Entry& e = orders_.at(order.id);
    if (e.order.started.request != order) return refuse(OrderResult::exists_with_different_fields);
    const Status stalled = host_.stalled(key(order.id));
    if (!stalled.is_ok()) return callback(stalled, {});
    e.waiters.push_back({Waiter::Kind::create, false, {}, std::move(callback), {}});
    return settle(order.id);
  }
  if (!s.is_ok()) return callback(s, {});
  if (!host_.may_open()) {
    return callback(Status::overloaded("too many processes in flight; retry with the same id"), {});
  }
  domain::OrderStarted started;
  const OrderResult checked = prepare(order, &started, &s);
  if (!s.is_ok()) return callback(s, {});
  if (checked != OrderResult::ok) return refuse(checked);
  Entry& e = orders_[order.id];
  e.order.started = started;  // read by retries before it is durable
  e.waiters.push_back({Waiter::Kind::create, true, {}, std::move(callback), {}});
  const OrderId id = order.id;
  host_.open({kind(), id, domain::order_step(OrderStep::started), domain::encode_step(started), 0},
             [this, id] {
               host_.crash_point("order:started");
               reserve(id);
             });
}

void OrderFlow::cancel_order(OrderId id, ResultCallback<OrderOutcome> callback) {
  Status s;
  if (host_.find(key(id), &s) == nullptr) {
    if (!s.is_ok()) return callback(s, {});
    return callback(Status::ok(), OrderOutcome{OrderResult::not_found, {}});
  }
  const Status stalled = host_.stalled(key(id));
  if (!stalled.is_ok()) return callback(stalled, {});
  Entry& e = orders_.at(id);
  // The first cancel of an order that nothing decided yet decides it; every cancel is answered
  // once the order completed (its points are back).
  const bool first = !e.order.decided && !e.deciding && !e.cancel_requested;
  e.waiters.push_back({Waiter::Kind::cancel, first, {}, std::move(callback), {}});
  if (!first) return settle(id);
  if (!e.order.reserved) {
    e.cancel_requested = true;  // decided once the points are reserved
    return;
  }
  decide(id, domain::cancelled());
}

void OrderFlow::take_result(const std::string& provider, const std::string& payment_id,
                            PaymentStatus status, ResultCallback<PaymentResultAnswer> callback) {
  if (providers_.count(provider) == 0) {
    return callback(Status::ok(), {PaymentResultOutcome::provider_not_found, {}});
  }
  OrderId id = 0;
  Status s;
  const bool found = domain::parse_payment_id(payment_id, &id) && host_.find(key(id), &s);
  if (!s.is_ok()) return callback(s, {});
  // A payment of this order at this provider exists once the order asked for it, which it
  // does only after the points are reserved.
  if (!found || orders_.at(id).order.payment_id != payment_id ||
      orders_.at(id).order.started.provider != provider || !orders_.at(id).order.reserved) {
    return unknown_payment(provider, payment_id, callback);
  }
  const Status stalled = host_.stalled(key(id));
  if (!stalled.is_ok()) return callback(stalled, {});
  Entry& e = orders_.at(id);
  const bool first = domain::awaits_payment(e.order) && !e.deciding;
  e.waiters.push_back({Waiter::Kind::payment, first, status, {}, std::move(callback)});
  if (!first) return settle(id);
  decide(id, domain::decide_payment(e.order, status).decided);
}

void OrderFlow::unknown_payment(const std::string& provider, const std::string& payment_id,
                                const ResultCallback<PaymentResultAnswer>& callback) {
  unknown_results_.fetch_add(1, std::memory_order_relaxed);
  log().warn("payment result for unknown payment '{}' of provider {}: ignored",
             cut(payment_id, payment_id_bytes_max), provider);
  callback(Status::ok(), {PaymentResultOutcome::payment_not_found, {}});
}

// ---------------------------------------------------------------------------------------------
// Steps.

void OrderFlow::submit(OrderId id, const Transfer& transfer, Answered then) {
  core_.submit(
      {transfer},
      [this, id, then](const Status& s, std::vector<TransferOutcome> o) {
        const TransferResult r = o.empty() ? TransferResult::ok : o[0].result;
        host_.post([this, id, then, s, r] { (this->*then)(id, s, r); });
      },
      /*workflow=*/true);
}

void OrderFlow::reserve(OrderId id) {
  submit(id, domain::order_reservation(orders_.at(id).order.started),
         &OrderFlow::reservation_answered);
}

void OrderFlow::reservation_answered(OrderId id, const Status& status, TransferResult result) {
  if (!status.is_ok()) return stall(id, status);
  if (const std::optional<domain::OrderDecided> failed = domain::decide_after_reservation(result)) {
    return decide(id, *failed);
  }
  host_.append_step(key(id), domain::order_step(OrderStep::reserved),
                    domain::encode_empty_order_step(), [this, id] {
                      host_.crash_point("order:reserved");
                      after_reserved(id);
                    });
}

void OrderFlow::after_reserved(OrderId id) {
  Entry& e = orders_.at(id);
  if (e.cancel_requested) return decide(id, domain::cancelled());
  host_.wake_at(key(id), e.order.started.deadline);
  if (e.order.started.request.cash.amount != 0) return create_payment(id);
  domain::OrderDecided paid;
  paid.status = OrderStatus::completed;  // points alone: nothing to wait for
  decide(id, paid);
}

void OrderFlow::create_payment(OrderId id) {
  Entry& e = orders_.at(id);
  const domain::OrderStarted& started = e.order.started;
  const auto it = providers_.find(started.provider);
  if (it == providers_.end()) {
    // Only after a restart with another configuration: the order cannot be paid.
    domain::OrderDecided failed;
    failed.status = OrderStatus::failed;
    failed.failure = OrderFailure::payment_not_created;
    failed.payment_error = "provider " + started.provider + " is not configured";
    return decide(id, failed);
  }
  PaymentRequest request;
  request.payment_id = e.order.payment_id;
  request.order_id = id;
  request.amount = started.request.cash.amount;
  request.currency = started.request.cash.currency;
  e.creating = true;
  it->second->create_payment(request, [gate = gate_, id](PaymentCreation c) {
    gate->post([id, c = std::move(c)](OrderFlow& flow) { flow.payment_answered(id, c); });
  });
}

void OrderFlow::payment_answered(OrderId id, const PaymentCreation& creation) {
  const auto it = orders_.find(id);
  if (it == orders_.end()) return;  // cannot happen: a creation under way keeps it in memory
  Entry& e = it->second;
  e.creating = false;
  // Decided meanwhile (the deadline, a cancel, a result that came first) or answered before.
  if (!host_.stalled(key(id)).is_ok() || e.order.decided || e.deciding || e.order.payment_created) {
    return;
  }
  if (!creation.created) {
    domain::OrderDecided failed;
    failed.status = OrderStatus::failed;
    failed.failure = OrderFailure::payment_not_created;
    failed.payment_error = cut(creation.error, payment_error_bytes_max);
    log().warn("order {}: payment not created: {}", id, failed.payment_error);
    return decide(id, failed);
  }
  const domain::OrderPaymentCreated created{cut(creation.reference, payment_reference_bytes_max)};
  host_.append_step(key(id), domain::order_step(OrderStep::payment_created),
                    domain::encode_step(created), [this, id] {
                      host_.crash_point("order:payment_created");
                      settle(id);
                    });
}

void OrderFlow::decide(OrderId id, const domain::OrderDecided& decided) {
  orders_.at(id).deciding = true;
  host_.append_step(key(id), domain::order_step(OrderStep::decided), domain::encode_step(decided),
                    [this, id] {
                      orders_.at(id).deciding = false;
                      host_.crash_point("order:decided");
                      settle(id);
                      resolve(id);
                    });
}

void OrderFlow::resolve(OrderId id) {
  const domain::OrderState& o = orders_.at(id).order;
  if (!o.reserved) return complete(id);  // nothing was reserved: nothing to post or void
  submit(id, domain::order_resolution(o.started, o.decision.status == OrderStatus::completed),
         &OrderFlow::resolution_answered);
}

void OrderFlow::resolution_answered(OrderId id, const Status& status, TransferResult result) {
  if (!status.is_ok()) return stall(id, status);
  const bool post = orders_.at(id).order.decision.status == OrderStatus::completed;
  if (!domain::order_resolution_done(post, result)) {
    // Cannot happen: only this order may post or void its points (code_reserved).
    log().critical("order {}: resolving its points answered {}; left open", id, to_string(result));
    return stall(id, Status::corruption("order points could not be resolved"));
  }
  host_.crash_point("order:resolved");
  complete(id);
}

void OrderFlow::complete(OrderId id) {
  host_.append_step(key(id), domain::order_step(OrderStep::completed),
                    domain::encode_empty_order_step(), [this, id] {
                      host_.crash_point("order:completed");
                      settle(id);
                    });
}

void OrderFlow::record_late(OrderId id, PaymentStatus status) {
  const std::uint8_t bit = status == PaymentStatus::succeeded ? 1 : 2;
  Entry& e = orders_.at(id);
  if ((e.late_in_flight & bit) != 0) return;
  e.late_in_flight |= bit;
  late_results_.fetch_add(1, std::memory_order_relaxed);
  if (status == PaymentStatus::succeeded) {
    log().warn("order {}: payment {} succeeded after the order was {}: refund the cash", id,
               e.order.payment_id, to_string(e.order.decision.status));
  }
  host_.append_step(key(id), domain::order_step(OrderStep::late_result),
                    domain::encode_step(domain::OrderLateResult{status}), [this, id, bit] {
                      orders_.at(id).late_in_flight &= static_cast<std::uint8_t>(~bit);
                      host_.crash_point("order:late_result");
                      settle(id);
                    });
}

// ---------------------------------------------------------------------------------------------
// Answers.

void OrderFlow::settle(OrderId id) {
  // Answers may add waiters (a callback calling in again is posted, never run here), so the
  // list is taken first.
  std::vector<Waiter> all = std::move(orders_.at(id).waiters);
  orders_.at(id).waiters.clear();
  std::vector<Waiter> kept;
  for (Waiter& w : all) {
    if (!answer(id, w)) kept.push_back(std::move(w));
  }
  std::vector<Waiter>& waiters = orders_.at(id).waiters;
  for (Waiter& w : kept) waiters.push_back(std::move(w));
}

bool OrderFlow::answer(OrderId id, Waiter& w) {
  Entry& e = orders_.at(id);
  const domain::OrderState& o = e.order;
  switch (w.kind) {
    case Waiter::Kind::create: {
      const bool presentable = o.completed || (o.payment_created && !o.decided && !e.deciding);
      if (!presentable) return false;
      w.order(Status::ok(), {w.first ? OrderResult::ok : OrderResult::exists, info(id)});
      return true;
    }
    case Waiter::Kind::cancel: {
      if (!o.completed) return false;
      OrderResult r = domain::decide_cancel(o);
      if (w.first && r == OrderResult::exists) r = OrderResult::ok;
      w.order(Status::ok(), {r, info(id)});
      return true;
    }
    case Waiter::Kind::payment: {
      if (!o.decided || e.deciding) return false;
      const domain::PaymentDecision d = domain::decide_payment(o, w.status);
      if (d.outcome == PaymentResultOutcome::late && d.record_late) {
        record_late(id, w.status);  // answered once it is durable
        return false;
      }
      PaymentResultOutcome outcome = d.outcome;
      if (w.first && outcome == PaymentResultOutcome::replayed) {
        outcome = PaymentResultOutcome::applied;
      }
      w.payment(Status::ok(), {outcome, info(id)});
      return true;
    }
  }
  return false;
}

}  // namespace pointex::engine

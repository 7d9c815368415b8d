// The engine facade's points + cash orders: they forward to the order flow
// (engine/order_flow.cpp).

#include "engine/blocking.hpp"
#include "engine/engine_impl.hpp"
#include "engine/order_flow.hpp"
#include "engine/workflows.hpp"
#include "pointex/engine.hpp"

namespace pointex {

using engine::blocking;

void Engine::create_order(const Order& order, ResultCallback<OrderOutcome> callback) {
  impl_->workflows->orders().create(order, std::move(callback));
}

Status Engine::create_order(const Order& order, OrderOutcome* outcome) {
  return blocking(outcome,
                  [&](ResultCallback<OrderOutcome> cb) { create_order(order, std::move(cb)); });
}

void Engine::cancel_order(OrderId id, ResultCallback<OrderOutcome> callback) {
  impl_->workflows->orders().cancel(id, std::move(callback));
}

Status Engine::cancel_order(OrderId id, OrderOutcome* outcome) {
  return blocking(outcome,
                  [&](ResultCallback<OrderOutcome> cb) { cancel_order(id, std::move(cb)); });
}

void Engine::lookup_order(OrderId id, ResultCallback<std::optional<OrderInfo>> callback) {
  impl_->workflows->orders().lookup(id, std::move(callback));
}

Status Engine::lookup_order(OrderId id, std::optional<OrderInfo>* order) {
  return blocking(
      order, [&](ResultCallback<std::optional<OrderInfo>> cb) { lookup_order(id, std::move(cb)); });
}

void Engine::payment_result(const std::string& provider, const std::string& payment_id,
                            PaymentStatus status, ResultCallback<PaymentResultAnswer> callback) {
  impl_->workflows->orders().payment_result(provider, payment_id, status, std::move(callback));
}

Status Engine::payment_result(const std::string& provider, const std::string& payment_id,
                              PaymentStatus status, PaymentResultAnswer* answer) {
  return blocking(answer, [&](ResultCallback<PaymentResultAnswer> cb) {
    payment_result(provider, payment_id, status, std::move(cb));
  });
}

}  // namespace pointex

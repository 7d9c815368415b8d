// The engine facade's rates and exchanges: they forward to the process manager
// (engine/exchange_flow.cpp, hosted by engine/workflows.cpp).

#include "engine/blocking.hpp"
#include "engine/engine_impl.hpp"
#include "engine/exchange_flow.hpp"
#include "pointex/engine.hpp"

namespace pointex {

using engine::blocking;

Status Engine::set_rate(const Rate& rate, RateResult* result) {
  return blocking(result, [&](ResultCallback<RateResult> cb) { set_rate(rate, std::move(cb)); });
}

void Engine::set_rate(const Rate& rate, ResultCallback<RateResult> callback) {
  impl_->workflows->exchanges().set_rate(rate, std::move(callback));
}

std::optional<Rate> Engine::rate(LedgerId from_ledger, LedgerId to_ledger) const {
  return impl_->workflows->exchanges().rate(from_ledger, to_ledger);
}

std::vector<Rate> Engine::rates() const {
  return impl_->workflows->exchanges().rates();
}

void Engine::exchange(const Exchange& exchange, ResultCallback<ExchangeOutcome> callback) {
  impl_->workflows->exchanges().exchange(exchange, std::move(callback));
}

Status Engine::exchange(const Exchange& request, ExchangeOutcome* outcome) {
  return blocking(outcome,
                  [&](ResultCallback<ExchangeOutcome> cb) { exchange(request, std::move(cb)); });
}

void Engine::lookup_exchange(ExchangeId id, ResultCallback<std::optional<ExchangeInfo>> callback) {
  impl_->workflows->exchanges().lookup_exchange(id, std::move(callback));
}

Status Engine::lookup_exchange(ExchangeId id, std::optional<ExchangeInfo>* exchange) {
  return blocking(exchange, [&](ResultCallback<std::optional<ExchangeInfo>> cb) {
    lookup_exchange(id, std::move(cb));
  });
}

}  // namespace pointex

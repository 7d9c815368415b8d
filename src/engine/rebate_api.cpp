// The engine facade's shopping rebates: they forward to the rebate flow
// (engine/rebate_flow.cpp).

#include "engine/blocking.hpp"
#include "engine/engine_impl.hpp"
#include "engine/rebate_flow.hpp"
#include "engine/workflows.hpp"
#include "pointex/engine.hpp"

namespace pointex {

using engine::blocking;

void Engine::set_rules(const EarningRules& rules, ResultCallback<RulesResult> callback) {
  impl_->workflows->rebates().set_rules(rules, std::move(callback));
}

Status Engine::set_rules(const EarningRules& rules, RulesResult* result) {
  return blocking(result, [&](ResultCallback<RulesResult> cb) { set_rules(rules, std::move(cb)); });
}

std::optional<EarningRules> Engine::rules(LedgerId ledger) const {
  return impl_->workflows->rebates().rules(ledger);
}

std::vector<EarningRules> Engine::all_rules() const {
  return impl_->workflows->rebates().all_rules();
}

void Engine::purchase(const Purchase& purchase, ResultCallback<PurchaseOutcome> callback) {
  impl_->workflows->rebates().purchase(purchase, std::move(callback));
}

Status Engine::purchase(const Purchase& p, PurchaseOutcome* outcome) {
  return blocking(outcome, [&](ResultCallback<PurchaseOutcome> cb) { purchase(p, std::move(cb)); });
}

void Engine::refund_purchase(const Refund& refund, ResultCallback<PurchaseOutcome> callback) {
  impl_->workflows->rebates().refund(refund, std::move(callback));
}

Status Engine::refund_purchase(const Refund& refund, PurchaseOutcome* outcome) {
  return blocking(
      outcome, [&](ResultCallback<PurchaseOutcome> cb) { refund_purchase(refund, std::move(cb)); });
}

void Engine::lookup_purchase(PurchaseId id, ResultCallback<std::optional<PurchaseInfo>> callback) {
  impl_->workflows->rebates().lookup(id, std::move(callback));
}

Status Engine::lookup_purchase(PurchaseId id, std::optional<PurchaseInfo>* purchase) {
  return blocking(purchase, [&](ResultCallback<std::optional<PurchaseInfo>> cb) {
    lookup_purchase(id, std::move(cb));
  });
}

}  // namespace pointex

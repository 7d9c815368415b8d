// The engine facade's check-backs: they forward to the check-back flow
// (engine/checkback_flow.cpp).

#include "engine/blocking.hpp"
#include "engine/checkback_flow.hpp"
#include "engine/engine_impl.hpp"
#include "engine/workflows.hpp"
#include "pointex/engine.hpp"

namespace pointex {

using engine::blocking;

void Engine::create_checked_transfer(const CheckedTransfer& request,
                                     ResultCallback<CheckBackOutcome> callback) {
  impl_->workflows->check_backs().create(request, std::move(callback));
}

Status Engine::create_checked_transfer(const CheckedTransfer& request, CheckBackOutcome* outcome) {
  return blocking(outcome, [&](ResultCallback<CheckBackOutcome> cb) {
    create_checked_transfer(request, std::move(cb));
  });
}

void Engine::lookup_check_back(TransferId id,
                               ResultCallback<std::optional<CheckBackInfo>> callback) {
  impl_->workflows->check_backs().lookup(id, std::move(callback));
}

Status Engine::lookup_check_back(TransferId id, std::optional<CheckBackInfo>* info) {
  return blocking(info, [&](ResultCallback<std::optional<CheckBackInfo>> cb) {
    lookup_check_back(id, std::move(cb));
  });
}

void Engine::parked_check_backs(ResultCallback<std::vector<CheckBackInfo>> callback) {
  impl_->workflows->check_backs().parked(std::move(callback));
}

Status Engine::parked_check_backs(std::vector<CheckBackInfo>* parked) {
  return blocking(parked, [&](ResultCallback<std::vector<CheckBackInfo>> cb) {
    parked_check_backs(std::move(cb));
  });
}

void Engine::resolve_check_back(TransferId id, const std::string& note,
                                ResultCallback<CheckBackOutcome> callback) {
  impl_->workflows->check_backs().resolve(id, note, std::move(callback));
}

Status Engine::resolve_check_back(TransferId id, const std::string& note,
                                  CheckBackOutcome* outcome) {
  return blocking(outcome, [&](ResultCallback<CheckBackOutcome> cb) {
    resolve_check_back(id, note, std::move(cb));
  });
}

}  // namespace pointex

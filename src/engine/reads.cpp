// The read side of the Engine facade: reads from the read models (waiting for min_position)
// and feed subscriptions.

#include <chrono>

#include "engine/engine_impl.hpp"

namespace pointex {

Status Engine::Impl::wait_for_read_models(std::uint64_t min_position) {
  if (stopping.load()) return Status::shutting_down("engine is closing");
  if (min_position == 0 || projector->checkpoint() >= min_position) return Status::ok();
  if (projector->wait_for(min_position, std::chrono::milliseconds(options.read_wait_ms_max))) {
    return Status::ok();
  }
  const Status failure = projector->failure();
  if (!failure.is_ok()) return failure;
  return Status::timed_out("read models are at position " +
                           std::to_string(projector->checkpoint()) + ", not yet at " +
                           std::to_string(min_position));
}

Status Engine::read_account(AccountId id, std::uint64_t min_position,
                            std::optional<Account>* account) {
  const Status s = impl_->wait_for_read_models(min_position);
  if (!s.is_ok()) return s;
  return impl_->read_model->account(id, account);
}

Status Engine::read_transfer(AccountId debit_account, TransferId id, std::uint64_t min_position,
                             std::optional<TransferInfo>* transfer) {
  const Status s = impl_->wait_for_read_models(min_position);
  if (!s.is_ok()) return s;
  return impl_->read_model->transfer(debit_account, id, transfer);
}

Status Engine::find_transfers(TransferId id, std::uint64_t min_position,
                              std::vector<TransferInfo>* transfers) {
  const Status s = impl_->wait_for_read_models(min_position);
  if (!s.is_ok()) return s;
  return impl_->read_model->transfers_by_id(id, transfers);
}

Status Engine::account_history(const HistoryQuery& query, HistoryPage* page) {
  if (query.limit == 0 || query.limit > impl_->options.history_page_max) {
    return Status::invalid_argument("limit must be 1-" +
                                    std::to_string(impl_->options.history_page_max));
  }
  if (query.to_ns != 0 && query.to_ns <= query.from_ns) {
    return Status::invalid_argument("to must be after from");
  }
  Status s = impl_->wait_for_read_models(query.min_position);
  if (!s.is_ok()) return s;
  store::HistoryFilter filter{query.before_position, query.code, query.from_ns, query.to_ns};
  std::vector<store::HistoryEntry> entries;
  page->events.clear();
  s = impl_->read_model->history(query.account, filter, query.limit, &entries,
                                 &page->next_before_position);
  if (!s.is_ok()) return s;
  for (const store::HistoryEntry& h : entries) {
    AccountEvent e;
    e.position = h.position;
    e.timestamp = h.timestamp;
    e.kind = h.kind;
    e.code = h.code;
    e.amount = h.amount;
    e.debits_posted = h.after.debits_posted;
    e.credits_posted = h.after.credits_posted;
    e.debits_pending = h.after.debits_pending;
    e.credits_pending = h.after.credits_pending;
    std::optional<TransferInfo> t;
    s = impl_->read_model->transfer(h.debit_account, h.transfer_id, &t);
    if (!s.is_ok()) return s;
    if (!t) return Status::corruption("history names a transfer the read models lack");
    e.transfer = *t;
    page->events.push_back(e);
  }
  return Status::ok();
}

Status Engine::ledger_stats(LedgerId ledger, std::uint32_t from_day, std::uint32_t to_day,
                            std::uint64_t min_position, std::vector<LedgerDayStats>* days) {
  if (to_day < from_day) return Status::invalid_argument("to_day is before from_day");
  Status s = impl_->wait_for_read_models(min_position);
  if (!s.is_ok()) return s;
  return impl_->read_model->stats(ledger, from_day, to_day, days);
}

Status Engine::read_events(std::uint64_t after_position, std::uint32_t limit,
                           std::vector<FeedEvent>* events) {
  events->clear();
  if (limit == 0 || limit > impl_->options.history_page_max) {
    return Status::invalid_argument("limit must be 1-" +
                                    std::to_string(impl_->options.history_page_max));
  }
  if (impl_->stopping.load()) return Status::shutting_down("engine is closing");
  const std::uint64_t checkpoint = impl_->projector->checkpoint();
  if (after_position >= checkpoint) return Status::ok();
  return impl_->feed->read_log(after_position + 1, checkpoint, events, limit);
}

Status Engine::subscribe(std::uint64_t after_position, FeedCallback callback,
                         std::unique_ptr<Subscription>* subscription) {
  if (impl_->stopping.load()) return Status::shutting_down("engine is closing");
  if (!callback) return Status::invalid_argument("subscribe needs a callback");
  *subscription = impl_->feed->subscribe(after_position, std::move(callback));
  return Status::ok();
}

}  // namespace pointex

// The read side of the Engine facade: reads from the read models (waiting for min_position)
// and feed subscriptions.

#include <algorithm>
#include <chrono>

#include "engine/engine_impl.hpp"

namespace pointex {
namespace {

/// Runs `read` on a reader thread once the read models include `min_position`, and answers
/// `callback` with what it read (or with why it did not read).
template <typename Result, typename Read>
void read_async(Engine::Impl& core, std::uint64_t min_position, Read read,
                ResultCallback<Result> callback) {
  if (core.stopping.load()) return callback(Status::shutting_down("engine is closing"), Result{});
  core.reads->submit(
      min_position, [read = std::move(read), callback = std::move(callback)](const Status& waited) {
        Result result{};
        const Status s = waited.is_ok() ? read(&result) : waited;
        callback(s, std::move(result));
      });
}

Status check_history_query(const Engine::Impl& core, const HistoryQuery& query) {
  if (query.limit == 0 || query.limit > core.options.history_page_max) {
    return Status::invalid_argument("limit must be 1-" +
                                    std::to_string(core.options.history_page_max));
  }
  if (query.to_ns != 0 && query.to_ns <= query.from_ns) {
    return Status::invalid_argument("to must be after from");
  }
  return Status::ok();
}

/// A page of history from the read models as they are (no wait).
Status history_page(const store::ReadModel& read_model, const HistoryQuery& query,
                    HistoryPage* page) {
  store::HistoryFilter filter{query.before_position, query.code, query.from_ns, query.to_ns};
  std::vector<store::HistoryEntry> entries;
  page->events.clear();
  Status s =
      read_model.history(query.account, filter, query.limit, &entries, &page->next_before_position);
  if (!s.is_ok()) return s;
  page->events.reserve(entries.size());
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
    s = read_model.transfer(h.debit_account, h.transfer_id, &t);
    if (!s.is_ok()) return s;
    if (!t) return Status::corruption("history names a transfer the read models lack");
    e.transfer = *t;
    page->events.push_back(e);
  }
  return Status::ok();
}

Status check_event_query(const Engine::Impl& core, const EventQuery& query) {
  if (query.limit == 0 || query.limit > core.options.history_page_max) {
    return Status::invalid_argument("limit must be 1-" +
                                    std::to_string(core.options.history_page_max));
  }
  return Status::ok();
}

/// A page of the feed from the log, up to the read models' checkpoint (no wait).
Status event_page(const Engine::Impl& core, EventQuery query, EventPage* page) {
  page->events.clear();
  page->next_after_position = query.after_position;
  const std::uint64_t checkpoint = core.projector->checkpoint();
  if (query.after_position >= checkpoint) return Status::ok();
  std::sort(query.ledgers.begin(), query.ledgers.end());
  return core.feed->read_log_page(query.after_position + 1, checkpoint, query.ledgers, query.limit,
                                  query.scan_max, page);
}

}  // namespace

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
  Status s = check_history_query(*impl_, query);
  if (!s.is_ok()) return s;
  s = impl_->wait_for_read_models(query.min_position);
  if (!s.is_ok()) return s;
  return history_page(*impl_->read_model, query, page);
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
  EventQuery query;
  query.after_position = after_position;
  query.limit = limit;
  EventPage page;
  const Status s = read_events(query, &page);
  *events = std::move(page.events);
  return s;
}

Status Engine::read_events(const EventQuery& query, EventPage* page) {
  page->events.clear();
  page->next_after_position = query.after_position;
  const Status s = check_event_query(*impl_, query);
  if (!s.is_ok()) return s;
  if (impl_->stopping.load()) return Status::shutting_down("engine is closing");
  return event_page(*impl_, query, page);
}

void Engine::read_account(AccountId id, std::uint64_t min_position,
                          ResultCallback<std::optional<Account>> callback) {
  const store::ReadModel* rm = impl_->read_model.get();
  read_async(
      *impl_, min_position, [rm, id](std::optional<Account>* out) { return rm->account(id, out); },
      std::move(callback));
}

void Engine::read_transfer(AccountId debit_account, TransferId id, std::uint64_t min_position,
                           ResultCallback<std::optional<TransferInfo>> callback) {
  const store::ReadModel* rm = impl_->read_model.get();
  read_async(
      *impl_, min_position,
      [rm, debit_account, id](std::optional<TransferInfo>* out) {
        return rm->transfer(debit_account, id, out);
      },
      std::move(callback));
}

void Engine::find_transfers(TransferId id, std::uint64_t min_position,
                            ResultCallback<std::vector<TransferInfo>> callback) {
  const store::ReadModel* rm = impl_->read_model.get();
  read_async(
      *impl_, min_position,
      [rm, id](std::vector<TransferInfo>* out) { return rm->transfers_by_id(id, out); },
      std::move(callback));
}

void Engine::account_history(const HistoryQuery& query, ResultCallback<HistoryPage> callback) {
  const Status s = check_history_query(*impl_, query);
  if (!s.is_ok()) return callback(s, {});
  const store::ReadModel* rm = impl_->read_model.get();
  read_async(
      *impl_, query.min_position,
      [rm, query](HistoryPage* out) { return history_page(*rm, query, out); }, std::move(callback));
}

void Engine::ledger_stats(LedgerId ledger, std::uint32_t from_day, std::uint32_t to_day,
                          std::uint64_t min_position,
                          ResultCallback<std::vector<LedgerDayStats>> callback) {
  if (to_day < from_day) return callback(Status::invalid_argument("to_day is before from_day"), {});
  const store::ReadModel* rm = impl_->read_model.get();
  read_async(
      *impl_, min_position,
      [rm, ledger, from_day, to_day](std::vector<LedgerDayStats>* out) {
        return rm->stats(ledger, from_day, to_day, out);
      },
      std::move(callback));
}

void Engine::read_events(EventQuery query, ResultCallback<EventPage> callback) {
  const Status s = check_event_query(*impl_, query);
  if (!s.is_ok()) return callback(s, {});
  const Impl* core = impl_.get();
  const std::uint64_t after = query.after_position;
  read_async(
      *impl_, 0,
      [core, query = std::move(query)](EventPage* out) { return event_page(*core, query, out); },
      ResultCallback<EventPage>(
          [after, callback = std::move(callback)](const Status& s, EventPage page) {
            if (!s.is_ok()) page.next_after_position = after;
            callback(s, std::move(page));
          }));
}

void Engine::account_ledgers(std::vector<AccountId> ids,
                             ResultCallback<std::vector<LedgerId>> callback) {
  Impl& core = *impl_;
  if (core.stopping.load()) return callback(Status::shutting_down("engine is closing"), {});
  std::vector<LedgerId> ledgers(ids.size(), 0);
  bool all_in_memory = true;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!core.directory.ledger_of(ids[i], &ledgers[i])) all_in_memory = false;
  }
  if (all_in_memory) return callback(Status::ok(), std::move(ledgers));
  // An account not in memory is in the read models as of its last event (it left memory only
  // then), and its ledger never changes: a read of them is exact, whatever their checkpoint.
  const store::ReadModel* rm = impl_->read_model.get();
  const engine::Directory* directory = &core.directory;
  read_async(
      core, 0,
      [rm, directory, ids = std::move(ids),
       known = std::move(ledgers)](std::vector<LedgerId>* out) {
        *out = known;
        for (std::size_t i = 0; i < ids.size(); ++i) {
          if ((*out)[i] != 0 || directory->ledger_of(ids[i], &(*out)[i])) continue;
          std::optional<Account> a;
          const Status s = rm->account(ids[i], &a);
          if (!s.is_ok()) return s;
          if (a) (*out)[i] = a->spec.ledger;
        }
        return Status::ok();
      },
      std::move(callback));
}

Status Engine::subscribe(std::uint64_t after_position, FeedCallback callback,
                         std::unique_ptr<Subscription>* subscription) {
  if (impl_->stopping.load()) return Status::shutting_down("engine is closing");
  if (!callback) return Status::invalid_argument("subscribe needs a callback");
  *subscription = impl_->feed->subscribe(after_position, std::move(callback));
  return Status::ok();
}

}  // namespace pointex

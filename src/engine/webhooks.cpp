#include "engine/webhooks.hpp"

#include <algorithm>

#include "engine/engine_impl.hpp"
#include "store/journal.hpp"

namespace pointex::engine {
namespace {

class WebhookChunk final : public store::JournalChunk {
 public:
  WebhookOutcome outcome;
  /// A creation: the id, cursor and timestamp are the event's own.
  bool creation = false;
  ResultCallback<WebhookOutcome> callback;

  void on_durable() override {
    if (creation) {
      outcome.webhook.id = first_position;
      outcome.webhook.cursor = first_position;
      outcome.webhook.timestamp = first_timestamp;
    }
    callback(Status::ok(), std::move(outcome));
  }
  void on_failed(const Status& status) override { callback(status, WebhookOutcome{}); }
};

WebhookOutcome refusal(WebhookResult result) {
  WebhookOutcome o;
  o.result = result;
  return o;
}

}  // namespace

Status Webhooks::load(const store::ReadModel& read_model) {
  std::lock_guard<std::mutex> lock(mutex_);
  return read_model.webhooks(&table_);
}

void Webhooks::recover(std::uint64_t position, const domain::Event& event) {
  std::lock_guard<std::mutex> lock(mutex_);
  domain::apply_webhook_event(table_, position, event);
}

bool Webhooks::refused(const ResultCallback<WebhookOutcome>& callback) const {
  if (core_.stopping.load()) {
    callback(Status::shutting_down("engine is closing"), WebhookOutcome{});
    return true;
  }
  if (core_.journal->failed()) {
    callback(Status::io_error("the event log failed; reopen the data dir"), WebhookOutcome{});
    return true;
  }
  return false;
}

void Webhooks::append(domain::Event event, WebhookOutcome outcome,
                      ResultCallback<WebhookOutcome> callback) {
  auto chunk = std::make_unique<WebhookChunk>();
  chunk->creation = std::holds_alternative<domain::WebhookCreated>(event);
  chunk->outcome = std::move(outcome);
  chunk->callback = std::move(callback);
  chunk->events.push_back(event);
  // Under mutex_ (held by the caller): the table changes in the order of the log.
  const store::Journal::Appended appended = core_.journal->append(std::move(chunk));
  if (appended.first_position == 0) return;  // refused: on_failed answered
  domain::set_event_timestamp(event, appended.first_timestamp);
  domain::apply_webhook_event(table_, appended.first_position, event);
  if (std::holds_alternative<domain::WebhookCreated>(event)) {
    table_[appended.first_position].webhook.timestamp = appended.first_timestamp;
  }
}

void Webhooks::create(const WebhookSpec& spec, ResultCallback<WebhookOutcome> callback) {
  if (refused(callback)) return;
  if (!domain::valid_spec(spec)) return callback(Status::ok(), refusal(WebhookResult::invalid));
  {
    std::lock_guard<std::mutex> lock(core_.ledgers_mutex);
    for (LedgerId l : spec.ledgers) {
      if (core_.ledgers.count(l) == 0)
        return callback(Status::ok(), refusal(WebhookResult::invalid));
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (table_.size() >= core_.options.webhooks_max) {
    return callback(Status::ok(), refusal(WebhookResult::too_many_webhooks));
  }
  WebhookOutcome outcome;
  outcome.webhook.spec = spec;
  append(domain::WebhookCreated{spec, 0}, std::move(outcome), std::move(callback));
}

void Webhooks::remove(WebhookId id, ResultCallback<WebhookOutcome> callback) {
  if (refused(callback)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = table_.find(id);
  if (it == table_.end()) return callback(Status::ok(), refusal(WebhookResult::not_found));
  WebhookOutcome outcome;
  outcome.webhook = it->second.webhook;
  append(domain::WebhookDeleted{id, 0}, std::move(outcome), std::move(callback));
}

void Webhooks::record(const WebhookProgress& progress, ResultCallback<WebhookOutcome> callback) {
  if (refused(callback)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = table_.find(progress.id);
  if (it == table_.end()) return callback(Status::ok(), refusal(WebhookResult::not_found));
  WebhookResult r =
      domain::check_progress(it->second, progress, core_.options.webhook_dead_letters_max);
  if (r == WebhookResult::ok && progress.cursor > core_.projector->checkpoint()) {
    r = WebhookResult::invalid_cursor;  // past what the feed has shown anyone
  }
  if (r != WebhookResult::ok) return callback(Status::ok(), refusal(r));
  domain::WebhookTable after{{progress.id, it->second}};
  domain::apply_webhook_event(after, 0, domain::WebhookProgressed{progress, 0});
  WebhookOutcome outcome;
  outcome.webhook = after.at(progress.id).webhook;
  append(domain::WebhookProgressed{progress, 0}, std::move(outcome), std::move(callback));
}

std::vector<Webhook> Webhooks::list() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Webhook> out;
  out.reserve(table_.size());
  for (const auto& [id, record] : table_) out.push_back(record.webhook);
  return out;
}

std::optional<Webhook> Webhooks::get(WebhookId id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = table_.find(id);
  if (it == table_.end()) return std::nullopt;
  return it->second.webhook;
}

bool Webhooks::dead_letters(WebhookId id, std::uint64_t after, std::uint32_t limit,
                            DeadLetterPage* page) const {
  std::lock_guard<std::mutex> lock(mutex_);
  *page = DeadLetterPage{};
  const auto it = table_.find(id);
  if (it == table_.end()) return false;
  if (limit == 0) return true;
  const auto& letters = it->second.dead_letters;
  for (auto d = letters.upper_bound(after); d != letters.end(); ++d) {
    if (page->dead_letters.size() == limit) {
      page->next_after_position = page->dead_letters.back().position;
      break;
    }
    page->dead_letters.push_back(d->second);
  }
  return true;
}

}  // namespace pointex::engine

namespace pointex {

// The facade's webhook calls.

void Engine::create_webhook(const WebhookSpec& spec, ResultCallback<WebhookOutcome> callback) {
  impl_->webhooks->create(spec, std::move(callback));
}

void Engine::delete_webhook(WebhookId id, ResultCallback<WebhookOutcome> callback) {
  impl_->webhooks->remove(id, std::move(callback));
}

void Engine::record_webhook_progress(const WebhookProgress& progress,
                                     ResultCallback<WebhookOutcome> callback) {
  impl_->webhooks->record(progress, std::move(callback));
}

std::vector<Webhook> Engine::webhooks() const {
  return impl_->webhooks->list();
}

std::optional<Webhook> Engine::webhook(WebhookId id) const {
  return impl_->webhooks->get(id);
}

bool Engine::webhook_dead_letters(WebhookId id, std::uint64_t after_position, std::uint32_t limit,
                                  DeadLetterPage* page) const {
  return impl_->webhooks->dead_letters(id, after_position, limit, page);
}

}  // namespace pointex

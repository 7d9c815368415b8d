#include "server/webhooks.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <future>

#include "domain/assert.hpp"
#include "domain/webhook.hpp"
#include "server/hmac.hpp"
#include "server/http_client.hpp"
#include "server/json_map.hpp"

namespace pointex::server {

using SteadyClock = std::chrono::steady_clock;

namespace {

/// A cursor moved this far past events the subscription does not take is recorded even with
/// nothing delivered (bounds what a restart scans again).
constexpr std::uint64_t skipped_positions_recorded_min = 65536;

std::uint64_t unix_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

/// A blocking call of an asynchronous engine command, on a delivery thread.
Status record_blocking(Engine& engine, const WebhookProgress& progress, WebhookOutcome* outcome) {
  std::promise<Status> done;
  std::future<Status> f = done.get_future();
  engine.record_webhook_progress(progress, [&](const Status& s, WebhookOutcome o) {
    *outcome = std::move(o);
    done.set_value(s);
  });
  return f.get();
}

}  // namespace

/// A subscription as one delivery thread serves it.
struct WebhookDispatcher::Subscription {
  Webhook webhook;
  std::string host;
  std::uint16_t port = 0;
  std::string target;
  std::unique_ptr<client::HttpClient> http;
  /// Events read and not yet delivered or dead-lettered, in log order.
  std::deque<FeedEvent> pending;
  /// Everything up to `cursor` is delivered or dead-lettered; `scanned` is where the last read
  /// stopped looking (the cursor moves there once `pending` is empty).
  std::uint64_t cursor = 0;
  std::uint64_t scanned = 0;
  std::uint64_t recorded_cursor = 0;
  std::vector<DeadLetter> new_dead_letters;
  std::vector<std::uint64_t> redelivered;
  /// Events settled since the last record, and when that was.
  std::uint32_t unrecorded = 0;
  SteadyClock::time_point recorded_at = SteadyClock::now();
  /// Attempts of the event at the head, and when the next may run.
  std::uint32_t attempts = 0;
  SteadyClock::time_point next_attempt = SteadyClock::time_point::min();
  std::shared_ptr<Counters> counters;
};

WebhookDispatcher::WebhookDispatcher(Engine& engine, WebhookDelivery options)
    : engine_(engine), options_(options) {}

WebhookDispatcher::~WebhookDispatcher() {
  stop();
}

void WebhookDispatcher::start() {
  spdlog::info("webhooks: {} delivery thread(s), {} attempts per event, backoff {}-{} ms",
               options_.threads, options_.attempts_max, options_.backoff_base_ms,
               options_.backoff_max_ms);
  for (std::uint32_t t = 0; t < options_.threads; ++t) threads_.emplace_back([this, t] { run(t); });
}

void WebhookDispatcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool WebhookDispatcher::redeliver(WebhookId id, std::uint64_t position) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (redeliveries_.size() >= options_.redeliveries_queued_max) return false;
    redeliveries_.emplace_back(id, position);
  }
  wake_.notify_all();
  return true;
}

std::shared_ptr<WebhookDispatcher::Counters> WebhookDispatcher::counters_of(WebhookId id) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::shared_ptr<Counters>& c = counters_[id];
  if (!c) c = std::make_shared<Counters>();
  return c;
}

void WebhookDispatcher::sync(std::uint32_t thread,
                             std::map<WebhookId, std::unique_ptr<Subscription>>& subs) {
  std::map<WebhookId, Webhook> live;
  for (Webhook& w : engine_.webhooks()) {
    if (w.id % options_.threads == thread) live.emplace(w.id, std::move(w));
  }
  for (auto it = subs.begin(); it != subs.end();) {
    if (live.count(it->first) != 0) {
      it->second->webhook.dead_letters = live.at(it->first).dead_letters;
      ++it;
      continue;
    }
    spdlog::info("webhooks: subscription {} deleted: delivery stopped at position {}", it->first,
                 it->second->cursor);
    std::lock_guard<std::mutex> lock(mutex_);
    counters_.erase(it->first);
    it = subs.erase(it);
  }
  for (auto& [id, w] : live) {
    if (subs.count(id) != 0) continue;
    auto sub = std::make_unique<Subscription>();
    if (!domain::parse_http_url(w.spec.url, &sub->host, &sub->port, &sub->target)) {
      continue;  // refused at creation; a stored one always parses
    }
    sub->webhook = w;
    sub->cursor = sub->scanned = sub->recorded_cursor = w.cursor;
    sub->counters = counters_of(id);
    sub->counters->cursor.store(w.cursor);
    spdlog::info("webhooks: delivering subscription {} to {} from position {} ({} dead letters)",
                 id, w.spec.url, w.cursor, w.dead_letters);
    subs.emplace(id, std::move(sub));
  }
}

void WebhookDispatcher::run(std::uint32_t thread) {
  std::map<WebhookId, std::unique_ptr<Subscription>> subs;
  auto logged_at = SteadyClock::now();
  std::uint64_t delivered_before = 0;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) break;
    }
    sync(thread, subs);
    bool busy = false;
    for (auto& [id, sub] : subs) busy = step(*sub) || busy;
    std::vector<std::pair<WebhookId, std::uint64_t>> mine;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = redeliveries_.begin(); it != redeliveries_.end();) {
        if (it->first % options_.threads == thread) {
          mine.push_back(*it);
          it = redeliveries_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const auto& [id, position] : mine) {
      const auto it = subs.find(id);
      if (it != subs.end()) redeliver_now(*it->second, position);
    }
    for (auto it = subs.begin(); it != subs.end();) {
      it = flush(*it->second, false) ? std::next(it) : subs.erase(it);
    }
    if (SteadyClock::now() - logged_at >= std::chrono::seconds(10)) {
      std::uint64_t delivered = 0;
      for (auto& [id, sub] : subs) delivered += sub->counters->delivered.load();
      if (delivered != delivered_before) {
        spdlog::info("webhooks: thread {}: {} subscription(s), {} events delivered in 10 s", thread,
                     subs.size(), delivered - delivered_before);
      }
      delivered_before = delivered;
      logged_at = SteadyClock::now();
    }
    if (busy) continue;
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, std::chrono::milliseconds(options_.poll_interval_ms),
                   [&] { return stopping_ || !redeliveries_.empty(); });
  }
  for (auto& [id, sub] : subs) flush(*sub, true);
}

bool WebhookDispatcher::step(Subscription& sub) {
  const auto now = SteadyClock::now();
  if (now < sub.next_attempt) return false;
  bool worked = false;
  if (sub.pending.empty()) {
    EventQuery query;
    query.after_position = sub.scanned;
    query.limit = options_.events_per_read;
    query.ledgers = sub.webhook.spec.ledgers;
    query.scan_max = options_.scan_events_max;
    EventPage page;
    const Status s = engine_.read_events(query, &page);
    if (!s.is_ok()) {
      spdlog::warn("webhooks: subscription {}: reading events failed: {}", sub.webhook.id,
                   s.to_string());
      sub.next_attempt = now + std::chrono::milliseconds(options_.poll_interval_ms);
      return false;
    }
    for (FeedEvent& e : page.events) {
      if ((sub.webhook.spec.events & webhook_events::bit(e.type)) != 0) {
        sub.pending.push_back(std::move(e));
      }
    }
    worked = page.next_after_position > sub.scanned;
    sub.scanned = std::max(sub.scanned, page.next_after_position);
  }
  for (std::uint32_t n = 0; n < options_.events_per_read && !sub.pending.empty(); ++n) {
    const FeedEvent& event = sub.pending.front();
    const std::uint32_t attempt = ++sub.attempts;
    const int status = post(sub, event, attempt);
    worked = true;
    const domain::RetryPolicy policy{options_.attempts_max, options_.backoff_base_ms,
                                     options_.backoff_max_ms};
    domain::DeliveryDecision d = domain::decide_delivery(policy, attempt, status);
    const std::uint64_t dead_letters = sub.webhook.dead_letters + sub.new_dead_letters.size();
    if (d.step == domain::DeliveryStep::dead_letter &&
        dead_letters >= engine_.options().webhook_dead_letters_max) {
      // No room for another dead letter: hold this subscription (memory stays bounded) until
      // an operator redelivers some or deletes it.
      spdlog::error("webhooks: subscription {} has {} dead letters (the most): holding position {}",
                    sub.webhook.id, dead_letters, event.position);
      d = {domain::DeliveryStep::retry, options_.backoff_max_ms};
    }
    if (d.step == domain::DeliveryStep::retry) {
      sub.counters->retries.fetch_add(1);
      sub.next_attempt = SteadyClock::now() + std::chrono::milliseconds(d.retry_in_ms);
      spdlog::warn("webhooks: subscription {} position {}: attempt {} answered {}; retry in {} ms",
                   sub.webhook.id, event.position, attempt, status, d.retry_in_ms);
      return worked;
    }
    if (d.step == domain::DeliveryStep::dead_letter) {
      sub.new_dead_letters.push_back(
          {event.position, attempt, static_cast<std::uint32_t>(status), unix_ns()});
      sub.counters->dead_lettered.fetch_add(1);
      spdlog::warn("webhooks: subscription {} position {}: dead-lettered after {} attempts",
                   sub.webhook.id, event.position, attempt);
    } else {
      sub.counters->delivered.fetch_add(1);
    }
    sub.cursor = event.position;
    sub.attempts = 0;
    ++sub.unrecorded;
    sub.pending.pop_front();
    if (sub.new_dead_letters.size() >= webhook_progress_entries_max) flush(sub, true);
  }
  if (sub.pending.empty()) sub.cursor = std::max(sub.cursor, sub.scanned);
  sub.counters->cursor.store(sub.cursor);
  return worked;
}

int WebhookDispatcher::post(Subscription& sub, const FeedEvent& event, std::uint32_t attempt) {
  const std::string body = event_json(event).dump();
  if (!sub.http) {
    sub.http = std::make_unique<client::HttpClient>(sub.host, sub.port,
                                                    std::chrono::milliseconds(options_.timeout_ms));
  }
  const std::string id = std::to_string(sub.webhook.id);
  const std::string position = std::to_string(event.position);
  const client::Headers headers = {
      {"Content-Type", "application/json"},
      {webhook_signature_header, client::hmac_sha256_hex(sub.webhook.spec.secret, body)},
      {webhook_subscription_header, id},
      {webhook_position_header, position},
      {webhook_event_header, std::string(to_string(event.type))},
      {webhook_attempt_header, std::to_string(attempt)},
      {webhook_idempotency_header, id + "-" + position}};
  const client::HttpResult r = sub.http->request("POST", sub.target, body, headers);
  if (r.status == 0) {
    spdlog::debug("webhooks: subscription {}: no answer from {}: {}", sub.webhook.id,
                  sub.webhook.spec.url, r.error);
    sub.http.reset();  // a new connection next time
  }
  return r.status;
}

void WebhookDispatcher::redeliver_now(Subscription& sub, std::uint64_t position) {
  DeadLetterPage page;
  if (!engine_.webhook_dead_letters(sub.webhook.id, position - 1, 1, &page) ||
      page.dead_letters.empty() || page.dead_letters[0].position != position) {
    return;  // redelivered meanwhile
  }
  EventQuery query;
  query.after_position = position - 1;
  query.limit = 1;
  query.scan_max = 1;
  EventPage events;
  const Status s = engine_.read_events(query, &events);
  if (!s.is_ok() || events.events.empty() || events.events[0].position != position) {
    spdlog::error("webhooks: subscription {}: dead letter {} not readable: {}", sub.webhook.id,
                  position, s.to_string());
    return;
  }
  DeadLetter letter = page.dead_letters[0];
  const int status = post(sub, events.events[0], letter.attempts + 1);
  if (domain::delivered_status(status)) {
    sub.redelivered.push_back(position);
    sub.counters->redelivered.fetch_add(1);
    spdlog::info("webhooks: subscription {} position {}: redelivered", sub.webhook.id, position);
  } else {
    ++letter.attempts;
    letter.last_status = static_cast<std::uint32_t>(status);
    sub.new_dead_letters.push_back(letter);
    spdlog::warn("webhooks: subscription {} position {}: redelivery answered {}", sub.webhook.id,
                 position, status);
  }
  flush(sub, true);
}

bool WebhookDispatcher::flush(Subscription& sub, bool force) {
  // Records only what matters: events settled, dead letters, redeliveries, or a long stretch
  // of others' events skipped (a restart would scan it again). A cursor moved only past the
  // log's own records (progress events among them) is not worth one: recording it would make
  // another record to move past, for ever.
  const bool skipped_far = sub.cursor - sub.recorded_cursor >= skipped_positions_recorded_min;
  if (sub.unrecorded == 0 && sub.new_dead_letters.empty() && sub.redelivered.empty() &&
      !skipped_far) {
    return true;
  }
  const bool due =
      sub.unrecorded >= options_.flush_events_max ||
      SteadyClock::now() - sub.recorded_at >= std::chrono::milliseconds(options_.flush_interval_ms);
  if (!force && !due) return true;
  WebhookProgress progress{sub.webhook.id, sub.cursor, sub.new_dead_letters, sub.redelivered};
  WebhookOutcome outcome;
  const Status s = record_blocking(engine_, progress, &outcome);
  sub.recorded_at = SteadyClock::now();
  if (!s.is_ok()) {
    spdlog::error("webhooks: subscription {}: recording progress failed: {}", sub.webhook.id,
                  s.to_string());
    return true;  // kept; tried again at the next flush
  }
  if (outcome.result == WebhookResult::not_found) return false;  // deleted meanwhile
  if (outcome.result != WebhookResult::ok) {
    spdlog::error("webhooks: subscription {}: progress to {} refused: {}", sub.webhook.id,
                  sub.cursor, to_string(outcome.result));
    return true;
  }
  sub.webhook.dead_letters = outcome.webhook.dead_letters;
  sub.recorded_cursor = sub.cursor;
  sub.new_dead_letters.clear();
  sub.redelivered.clear();
  sub.unrecorded = 0;
  return true;
}

std::string WebhookDispatcher::render_metrics(std::uint64_t committed_position) const {
  fmt::memory_buffer out;
  const auto family = [&](const char* name, const char* type, const char* help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  std::map<WebhookId, std::shared_ptr<Counters>> counters;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    counters = counters_;
  }
  const struct {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t (*value)(const Counters&, std::uint64_t);
  } families[] = {
      {"pointex_webhook_delivered_total", "counter", "Events delivered (2xx) per subscription",
       [](const Counters& c, std::uint64_t) { return c.delivered.load(); }},
      {"pointex_webhook_retries_total", "counter", "Failed attempts that will be retried",
       [](const Counters& c, std::uint64_t) { return c.retries.load(); }},
      {"pointex_webhook_dead_letters_total", "counter", "Events dead-lettered",
       [](const Counters& c, std::uint64_t) { return c.dead_lettered.load(); }},
      {"pointex_webhook_redelivered_total", "counter", "Dead letters redelivered by an operator",
       [](const Counters& c, std::uint64_t) { return c.redelivered.load(); }},
      {"pointex_webhook_lag_positions", "gauge",
       "Committed position minus the subscription's delivery cursor",
       [](const Counters& c, std::uint64_t committed) {
         const std::uint64_t cursor = c.cursor.load();
         return committed > cursor ? committed - cursor : 0;
       }},
  };
  for (const auto& f : families) {
    family(f.name, f.type, f.help);
    for (const auto& [id, c] : counters) {
      fmt::format_to(std::back_inserter(out), "{}{{subscription=\"{}\"}} {}\n", f.name, id,
                     f.value(*c, committed_position));
    }
  }
  return fmt::to_string(out);
}

std::string generate_webhook_secret() {
  unsigned char bytes[32];
  const int ok = RAND_bytes(bytes, sizeof bytes);
  POINTEX_ASSERT(ok == 1);
  std::string hex;
  for (unsigned char b : bytes) fmt::format_to(std::back_inserter(hex), "{:02x}", b);
  return hex;
}

}  // namespace pointex::server

#pragma once
/// Webhook delivery of pointexd (docs/webhooks.md): threads of its own that read each
/// subscription's events from the engine's feed (read_events, up to what is committed and
/// projected), POST them one at a time, signed, and record the progress (cursor, dead letters)
/// as events in the log. At-least-once: the cursor recorded never passes an event that was
/// neither delivered nor dead-lettered, so a crash redelivers, never skips.
///
/// Threads: `threads` delivery threads, never the engine's or the HTTP server's; the HTTP
/// handlers only call redeliver() (which queues) and render_metrics().

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <pointex/engine.hpp>
#include <string>
#include <thread>
#include <vector>

#include "server/config.hpp"

namespace pointex::server {

/// Header names of a delivery.
inline constexpr const char* webhook_signature_header = "X-Signature";
inline constexpr const char* webhook_subscription_header = "X-PointEx-Subscription";
inline constexpr const char* webhook_position_header = "X-PointEx-Position";
inline constexpr const char* webhook_event_header = "X-PointEx-Event";
inline constexpr const char* webhook_attempt_header = "X-PointEx-Attempt";
inline constexpr const char* webhook_idempotency_header = "Idempotency-Key";

class WebhookDispatcher {
 public:
  WebhookDispatcher(Engine& engine, WebhookDelivery options);
  ~WebhookDispatcher();
  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  /// Starts the delivery threads.
  void start();
  /// Stops them: the attempt under way finishes (at most timeout_ms), progress is recorded.
  void stop();

  /// Queues one more attempt of a dead letter (the operator's redelivery); false when
  /// redeliveries_queued_max are queued already. Success removes the dead letter; failure
  /// keeps it with one more attempt counted.
  bool redeliver(WebhookId id, std::uint64_t position);

  /// Prometheus lines: delivered, retries, dead letters, redelivered and lag per subscription.
  std::string render_metrics(std::uint64_t committed_position) const;

  struct Counters {
    std::atomic<std::uint64_t> delivered{0};
    std::atomic<std::uint64_t> retries{0};
    std::atomic<std::uint64_t> dead_lettered{0};
    std::atomic<std::uint64_t> redelivered{0};
    std::atomic<std::uint64_t> cursor{0};
  };
  struct Subscription;

 private:
  void run(std::uint32_t thread);
  /// One pass over a subscription: read, deliver up to events_per_read; true if it did work.
  bool step(Subscription& sub);
  void redeliver_now(Subscription& sub, std::uint64_t position);
  /// Records progress when due (or `force`); false when the subscription is gone.
  bool flush(Subscription& sub, bool force);
  /// One POST of an event; the HTTP status (0: no answer).
  int post(Subscription& sub, const FeedEvent& event, std::uint32_t attempt);
  /// The thread's subscriptions, matched to the engine's list.
  void sync(std::uint32_t thread, std::map<WebhookId, std::unique_ptr<Subscription>>& subs);
  std::shared_ptr<Counters> counters_of(WebhookId id);

  Engine& engine_;
  const WebhookDelivery options_;
  std::vector<std::thread> threads_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::deque<std::pair<WebhookId, std::uint64_t>> redeliveries_;
  std::map<WebhookId, std::shared_ptr<Counters>> counters_;
};

/// A random secret for a subscription created without one: 32 bytes from OpenSSL's
/// generator, as 64 hex digits.
std::string generate_webhook_secret();

}  // namespace pointex::server

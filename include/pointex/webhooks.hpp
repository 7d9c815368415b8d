#pragma once
/// Webhook subscriptions of the embedding API (docs/webhooks.md): their definitions, delivery
/// cursors and dead letters are events in the event log, so they are durable and rebuilt like
/// everything else. The engine stores them; delivering them over HTTP is the host's job
/// (pointexd does it: src/server/webhooks.*). No CAF or RocksDB type appears here.

#include <cstdint>
#include <string>
#include <vector>

#include "pointex/types.hpp"

namespace pointex {

/// A subscription's id: the position of the event that created it (unique, increasing).
using WebhookId = std::uint64_t;

/// The feed event types a subscription may ask for, as bits (FeedEvent::Type n is bit 1 << n).
namespace webhook_events {
inline constexpr std::uint32_t ledger_created = 1U << 0;
inline constexpr std::uint32_t account_created = 1U << 1;
inline constexpr std::uint32_t account_closed = 1U << 2;
inline constexpr std::uint32_t transfer = 1U << 3;
inline constexpr std::uint32_t all = ledger_created | account_created | account_closed | transfer;
inline constexpr std::uint32_t bit(FeedEvent::Type type) {
  return 1U << static_cast<std::uint32_t>(type);
}
}  // namespace webhook_events

/// Longest URL and secret of a subscription.
inline constexpr std::size_t webhook_url_bytes_max = 2048;
inline constexpr std::size_t webhook_secret_bytes_max = 256;
/// Shortest secret a client may choose (pointexd generates 64 hex digits when none is given).
inline constexpr std::size_t webhook_secret_bytes_min = 16;
/// Most ledgers a subscription is scoped to.
inline constexpr std::size_t webhook_ledgers_max = 1024;
/// Most dead letters added or removed by one progress record.
inline constexpr std::size_t webhook_progress_entries_max = 1024;

/// What a subscription asks for.
struct WebhookSpec {
  /// `http://host:port/path`: where each event is POSTed.
  std::string url;
  /// The HMAC-SHA256 key of the deliveries' `X-Signature`.
  std::string secret;
  /// webhook_events bits; not 0.
  std::uint32_t events = 0;
  /// Only events of these ledgers (sorted, unique); empty: every ledger.
  std::vector<LedgerId> ledgers;

  bool operator==(const WebhookSpec& o) const {
    return url == o.url && secret == o.secret && events == o.events && ledgers == o.ledgers;
  }
};

/// An event whose deliveries all failed: delivery went on with the next one.
struct DeadLetter {
  /// The event's position.
  std::uint64_t position = 0;
  /// Attempts made, and the HTTP status of the last one (0: no answer).
  std::uint32_t attempts = 0;
  std::uint32_t last_status = 0;
  /// When it was dead-lettered (Unix ns, the delivery side's clock).
  std::uint64_t timestamp = 0;

  bool operator==(const DeadLetter& o) const {
    return position == o.position && attempts == o.attempts && last_status == o.last_status &&
           timestamp == o.timestamp;
  }
};

/// A subscription as stored.
struct Webhook {
  WebhookId id = 0;
  WebhookSpec spec;
  /// When it was created (Unix ns).
  std::uint64_t timestamp = 0;
  /// Every event up to this position was delivered or dead-lettered (durably recorded). It
  /// starts at the subscription's own position: events after the creation are delivered.
  std::uint64_t cursor = 0;
  /// Dead letters not redelivered.
  std::uint64_t dead_letters = 0;
};

/// Delivery progress of one subscription, recorded as one event: the new cursor, the events
/// dead-lettered up to it, and dead letters since redelivered.
struct WebhookProgress {
  WebhookId id = 0;
  std::uint64_t cursor = 0;
  std::vector<DeadLetter> dead_lettered;
  std::vector<std::uint64_t> redelivered;
};

/// Outcome of a subscription command. Stable numbers.
enum class WebhookResult : std::uint32_t {
  ok = 0,
  not_found = 1,
  /// webhooks_max subscriptions exist already.
  too_many_webhooks = 2,
  /// A field breaks a rule (empty url, no event type, a ledger that does not exist, ...).
  invalid = 3,
  /// The cursor would go backwards, or past the committed position.
  invalid_cursor = 4,
  /// The subscription has webhook_dead_letters_max dead letters.
  too_many_dead_letters = 5,
};
std::string_view to_string(WebhookResult result);

struct WebhookOutcome {
  WebhookResult result = WebhookResult::ok;
  /// For `ok`: the subscription after the command.
  Webhook webhook;
};

/// A page of a subscription's dead letters, oldest first.
struct DeadLetterPage {
  std::vector<DeadLetter> dead_letters;
  /// Pass as `after` for the next page; 0 at the end.
  std::uint64_t next_after_position = 0;
};

}  // namespace pointex

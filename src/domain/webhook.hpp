#pragma once
/// Webhook subscriptions, pure (docs/webhooks.md): the fold of their events (what the engine
/// keeps in memory and the projector stores), their read-model encoding, and the delivery
/// decisions (backoff, retry or dead letter) the delivery side applies. No I/O.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "domain/codec.hpp"
#include "domain/events.hpp"
#include "pointex/webhooks.hpp"

namespace pointex::domain {

/// A subscription as the fold of its events.
struct WebhookRecord {
  Webhook webhook;
  /// Dead letters not redelivered, by position.
  std::map<std::uint64_t, DeadLetter> dead_letters;

  bool operator==(const WebhookRecord& o) const;
};

/// The live subscriptions by id (deleted ones are gone).
using WebhookTable = std::map<WebhookId, WebhookRecord>;

/// Applies a webhook event committed at `position` (other events change nothing). A progress
/// or deletion of an unknown subscription changes nothing (it may have been deleted).
void apply_webhook_event(WebhookTable& table, std::uint64_t position, const Event& event);

/// Whether `progress` may be recorded on `record`: the cursor never goes backwards, a dead
/// letter lies after the old cursor and at or before the new one, a redelivered one exists,
/// and the dead letters stay within `dead_letters_max`.
WebhookResult check_progress(const WebhookRecord& record, const WebhookProgress& progress,
                             std::size_t dead_letters_max);

/// Whether a spec is well-formed: an http:// URL (parse_http_url), a secret of 1 to
/// webhook_secret_bytes_max bytes, event bits within webhook_events::all and not 0, ledgers
/// sorted and unique, at most webhook_ledgers_max.
bool valid_spec(const WebhookSpec& spec);

/// The encodings a subscription's event and its read-model record share.
class Reader;
void put_webhook_spec(std::string& out, const WebhookSpec& spec);
WebhookSpec read_webhook_spec(Reader& in);
void put_dead_letter(std::string& out, const DeadLetter& letter);
DeadLetter read_dead_letter(Reader& in);

/// The read-model encoding of a record (strict decoding, like events).
std::string encode_webhook_record(const WebhookRecord& record);
[[nodiscard]] DecodeError decode_webhook_record(std::string_view bytes, WebhookRecord* record);

/// Splits `http://host[:port][/path]` (port 80 if absent; path `/` if absent). No TLS, no
/// user info, no fragment; the host is a name, an IPv4 literal or a bracketed IPv6 literal.
[[nodiscard]] bool parse_http_url(std::string_view url, std::string* host, std::uint16_t* port,
                                  std::string* target);

// ---------------------------------------------------------------------------------------------
// Delivery decisions.

struct RetryPolicy {
  /// Attempts per event (the first included) before it is dead-lettered. At least 1.
  std::uint32_t attempts_max = 8;
  /// Wait after the first failed attempt; doubled after each further one, up to the cap.
  std::uint64_t backoff_base_ms = 500;
  std::uint64_t backoff_max_ms = 60'000;
};

/// The wait before the next attempt after `failed_attempts` (>= 1) failures in a row:
/// base * 2^(failed_attempts - 1), at most backoff_max_ms (no overflow for any count).
std::uint64_t backoff_ms(const RetryPolicy& policy, std::uint32_t failed_attempts);

/// Whether an HTTP status is a successful delivery (2xx; 0 means no answer).
inline bool delivered_status(int status) {
  return status >= 200 && status <= 299;
}

enum class DeliveryStep : std::uint8_t {
  /// The receiver took it: go on with the next event.
  delivered,
  /// Try the same event again after `retry_in_ms`.
  retry,
  /// Give up on it: record a dead letter and go on with the next event.
  dead_letter,
};

struct DeliveryDecision {
  DeliveryStep step = DeliveryStep::delivered;
  std::uint64_t retry_in_ms = 0;
};

/// What to do after attempt number `attempts` (1 for the first) of an event answered `status`.
DeliveryDecision decide_delivery(const RetryPolicy& policy, std::uint32_t attempts, int status);

}  // namespace pointex::domain

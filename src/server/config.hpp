#pragma once
/// pointexd configuration: a JSON file (config/pointexd.json), command-line flags override it.
/// Every field is optional; an unknown field or a value of the wrong type is a precise error.

#include <cstdint>
#include <pointex/engine.hpp>
#include <string>
#include <vector>

#include "server/checkback_http.hpp"

namespace pointex::server {

enum class Role : std::uint8_t { admin = 0, issuer = 1 };

struct ApiKey {
  std::string key;
  Role role = Role::admin;
  /// issuer keys: the ledgers they may touch (sorted, unique). Empty for admin keys.
  std::vector<LedgerId> ledgers;
};

/// A payment provider of points + cash orders (docs/workflows.md, "Payments").
struct PaymentProviderConfig {
  enum class Type : std::uint8_t { http = 0, simulated = 1 };
  /// 1-64 of a-z, 0-9, _ and -: the {provider} of POST /v1/payments/{provider}/callback.
  std::string name;
  Type type = Type::http;
  /// The key of the callbacks' X-Signature (HMAC-SHA256 of the body), at least 16 characters;
  /// also signs the creations pointexd sends (http). Required for http; a simulated provider
  /// without one refuses every callback (its results come from itself).
  std::string secret;
  /// http: where payments are created (POST), http://host[:port][/path]. Required.
  std::string url;
  /// http: the callback_url sent with each creation. Default: http://<listen address and
  /// port>/v1/payments/<name>/callback.
  std::string callback_url;
  /// http: connect, send and answer of one creation attempt. Default: 5000 ms.
  std::uint32_t timeout_ms = 5000;
  /// http: attempts of a creation that got no answer or a 5xx, 429 or 408 (backoff 100 ms,
  /// doubled), before the order fails with payment_not_created. Default: 3.
  std::uint32_t attempts_max = 3;
  /// http: creations sent at the same time, each on a thread of its own (a slow or retried
  /// creation holds one thread, not the others). Default: 4.
  std::uint32_t threads = 4;
  /// simulated: from a creation to its result; share of payments that fail (0 to 1); the
  /// seed that chooses them. Default: 10 ms, 0, 1.
  std::uint32_t latency_ms = 10;
  double failure_rate = 0;
  std::uint64_t seed = 1;
};

/// Limits and threads of the HTTP side. Every limit is enforced at the edge.
struct ServerLimits {
  /// Threads running the sockets (Boost.Asio io_context). Default: 1.
  std::uint32_t io_threads = 1;
  /// Open connections; more are accepted and closed at once. Default: 1024.
  std::uint32_t connections_max = 1024;
  /// Request body. Default: 4 MiB.
  std::uint64_t body_bytes_max = 4U << 20;
  /// Path plus query. Default: 2048.
  std::uint32_t target_bytes_max = 2048;
  /// Time to receive a request's header (also the keep-alive idle time). Default: 10 s.
  std::uint32_t header_timeout_ms = 10'000;
  /// Time to receive a request's body after its header. Default: 30 s.
  std::uint32_t body_timeout_ms = 30'000;
  /// Requests being processed across the daemon; past it a request gets 429. Default: 4096.
  std::uint32_t inflight_requests_max = 4096;
  /// Requests slower than this are logged at warn. Default: 1000 ms.
  std::uint32_t slow_request_ms = 1000;
  /// SSE: rendered events queued per stream before the feed waits for the client. Default: 4 MiB.
  std::uint64_t stream_buffer_bytes_max = 4U << 20;
};

/// Webhook delivery (src/server/webhooks.hpp, docs/webhooks.md).
struct WebhookDelivery {
  /// Delivery threads; subscription `id` is served by thread `id % threads`. Each sends one
  /// request at a time (a slow receiver delays the other subscriptions of its thread).
  /// Default: 1.
  std::uint32_t threads = 1;
  /// Attempts per event (the first included) before it is dead-lettered. Default: 8.
  std::uint32_t attempts_max = 8;
  /// Wait after the first failed attempt, doubled after each further one up to
  /// backoff_max_ms. Default: 500 ms, 60 s.
  std::uint32_t backoff_base_ms = 500;
  std::uint32_t backoff_max_ms = 60'000;
  /// Time to connect, send and get an answer; past it the attempt failed. Default: 5000 ms.
  std::uint32_t timeout_ms = 5000;
  /// Events read from the log per subscription at once (also the most delivered per
  /// subscription before the thread turns to the next one). Default: 100.
  std::uint32_t events_per_read = 100;
  /// Events (of other ledgers or types) a subscription's read looks at, at most. Default: 100k.
  std::uint32_t scan_events_max = 100'000;
  /// Progress (cursor, dead letters) is recorded in the log at least this often while there
  /// is some, and after flush_events_max events; a crash redelivers at most what came after
  /// the last record. Default: 1000 ms, 256.
  std::uint32_t flush_interval_ms = 1000;
  std::uint32_t flush_events_max = 256;
  /// An idle thread looks for new events (and subscriptions) this often. Default: 50 ms.
  std::uint32_t poll_interval_ms = 50;
  /// Redelivery requests of dead letters queued; past it 429. Default: 1024.
  std::uint32_t redeliveries_queued_max = 1024;
};

struct Config {
  /// `check_back`: how pointexd asks check-back URLs (server/checkback_http.hpp); its checks
  /// and backoff limits are engine options.
  CheckBackConfig check_back;
  std::string listen = "127.0.0.1:8420";
  std::string log_level = "info";
  /// Engine options: data_dir (default ./data), durability, threads and the engine limits.
  EngineOptions engine;
  ServerLimits server;
  std::vector<ApiKey> api_keys;
  std::vector<PaymentProviderConfig> payment_providers;
  WebhookDelivery webhooks;

  Config() { engine.data_dir = "./data"; }
};

/// Parses a configuration document over the defaults in `*config`. On error returns false and
/// `*error` says which field and why (e.g. `server.body_bytes_max: expected an unsigned
/// integer`); `*config` is then unspecified.
[[nodiscard]] bool parse_config(const std::string& text, Config* config, std::string* error);

/// Reads and parses a file. Same contract as parse_config; the error names the file.
[[nodiscard]] bool load_config(const std::string& path, Config* config, std::string* error);

/// Splits "host:port" (port 0-65535; host may be an IPv4 or [IPv6] literal or a name).
[[nodiscard]] bool split_host_port(const std::string& listen, std::string* host,
                                   std::uint16_t* port);

}  // namespace pointex::server

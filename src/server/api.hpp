#pragma once
/// The HTTP API of pointexd without sockets: routing, auth, validation, calls into the engine
/// and JSON answers. The socket side (http_server) hands it parsed requests and writes what it
/// answers; tests call it directly.
///
/// Threads: handle() runs on the caller's thread (an I/O thread) and never blocks there; every
/// engine call it makes is asynchronous. Reads run on the engine's reader threads once the read
/// models include their min_position (a read that waits holds no thread); writes answer on an
/// engine thread once durable. `Reply` may therefore run on any thread, exactly once per
/// request.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <pointex/engine.hpp>
#include <string>

#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/webhooks.hpp"

namespace pointex::server {

struct Request {
  std::string method;
  /// Path and query, as sent.
  std::string target;
  std::string authorization;
  std::optional<std::string> content_type;
  /// Declared Content-Length, if any (checked before the body is read).
  std::optional<std::uint64_t> content_length;
  /// Event streams: the `Last-Event-ID` header (a reconnecting SSE client's last position).
  std::string last_event_id;
  /// Payment callbacks: the `X-Signature` header (hex HMAC-SHA256 of the body).
  std::string signature;
  /// True when the body is chunked (its size is unknown from the header).
  bool chunked = false;
  /// Set by the server once check_head() passed on this head: handle() does not check again.
  bool head_checked = false;
  std::string body;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  /// For 405: the methods the path takes.
  std::string allow;
  Endpoint endpoint = Endpoint::unrouted;
  /// A 200 to GET /v1/events/stream: the server starts the stream with Api::open_stream.
  bool stream = false;
  std::uint64_t stream_after = 0;
  const ApiKey* key = nullptr;
};

using Reply = std::function<void(Response)>;

/// Receives rendered Server-Sent Events frames. May block (it runs on the feed subscription's
/// own thread); returns false when the stream is closed and nothing more should be sent.
using StreamSink = std::function<bool(std::string frames)>;

class Api {
 public:
  Api(Config config, Metrics* metrics);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  /// The engine is open: /healthz answers ok and /v1 requests are served. The engine must
  /// outlive every request and stream (see begin_shutdown).
  void set_engine(Engine* engine);
  /// Webhook delivery (redeliveries and its /metrics lines); null: redelivery answers 503.
  void set_webhooks(WebhookDispatcher* webhooks);
  /// From now on /v1 requests answer 503 shutting_down; requests already taken finish.
  void begin_shutdown();
  /// Requests taken and not yet answered.
  std::int64_t inflight() const { return metrics_->inflight_requests.load(); }

  /// The checks that need only the header, in the order of API.md: target length, routing
  /// (404, 405), auth (401, 403 where the path alone decides), content type (415), declared
  /// size (413). An answer means: refuse without reading the body.
  std::optional<Response> check_head(const Request& head) const;

  /// Handles a whole request; `reply` runs exactly once, on any thread.
  void handle(Request request, Reply reply);

  /// Starts the live feed for a stream that handle() accepted (`accepted.stream`): frames go
  /// to `sink` until it returns false or the subscription is destroyed (before the engine).
  [[nodiscard]] Status open_stream(const Response& accepted, StreamSink sink,
                                   std::unique_ptr<Subscription>* subscription);

  const Config& config() const { return config_; }
  Metrics& metrics() { return *metrics_; }

  struct Impl;

 private:
  Config config_;
  Metrics* metrics_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pointex::server

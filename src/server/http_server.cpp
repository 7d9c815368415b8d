#include "server/http_server.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "server/json_map.hpp"

namespace pointex::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

/// Header bytes of a request (request line included): the target limit plus room for headers.
constexpr std::uint32_t header_bytes_max = 16 * 1024;
/// An event stream sends a comment this often when it has nothing else to send, so that idle
/// streams survive proxies and a vanished client is noticed.
constexpr auto stream_heartbeat = std::chrono::seconds(15);
/// After a refusal, how long to drain what the client still sends before closing.
constexpr std::uint32_t linger_ms = 1000;

class Session;

/// The reason phrase of a status code (as Beast writes it).
std::string_view reason(int status) {
  const auto r = http::obsolete_reason(static_cast<http::status>(status));
  return {r.data(), r.size()};
}

/// The connections of a server, so that a graceful stop can reach them.
struct Registry {
  std::mutex mutex;
  std::condition_variable closed;
  std::unordered_set<Session*> sessions;
  bool stopping = false;
};

/// Flow control between the feed's thread (producer of SSE frames) and the connection.
struct StreamState {
  std::mutex mutex;
  std::condition_variable room;
  bool closed = false;
  std::uint64_t queued_bytes = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Api* api, Registry* registry)
      : stream_(std::move(socket)),
        heartbeat_(stream_.get_executor()),
        api_(api),
        metrics_(&api->metrics()),
        registry_(registry),
        limits_(api->config().server) {
    std::lock_guard<std::mutex> lock(registry_->mutex);
    registry_->sessions.insert(this);
    metrics_->connections.fetch_add(1);
  }

  /// May run after the Api is gone (pointexd destroys the server last): touches only the
  /// metrics and the registry, which outlive it.
  ~Session() {
    end_stream();
    subscription_.reset();
    if (counted_stream_) metrics_->streams.fetch_sub(1);
    metrics_->connections.fetch_sub(1);
    std::lock_guard<std::mutex> lock(registry_->mutex);
    registry_->sessions.erase(this);
    registry_->closed.notify_all();
  }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  /// Graceful stop: runs on the session's strand.
  void stop() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->stopping_ = true;
      if (self->state_ == State::reading) {
        beast::get_lowest_layer(self->stream_).cancel();
      } else if (self->state_ == State::streaming) {
        self->close();
      }
    });
  }

 private:
  enum class State { reading, busy, streaming, closed };

  void read_header() {
    if (stopping_) return close();
    state_ = State::reading;
    parser_.emplace();
    parser_->header_limit(header_bytes_max);
    // The declared size is checked by Api::check_head, after routing and auth (API.md's order);
    // the limit for the bytes actually read (chunked bodies) is set once the header passed.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(std::chrono::milliseconds(limits_.header_timeout_ms));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) {
      if (ec == http::error::header_limit) {
        return refuse(400, "header_too_large", "request header too large");
      }
      if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
          ec != net::error::operation_aborted && ec != net::error::connection_reset) {
        // Not an HTTP request (bad syntax): say so and close.
        return refuse(400, "bad_request", "malformed HTTP request: " + ec.message());
      }
      return close();
    }
    started_ = std::chrono::steady_clock::now();
    auto& h = parser_->get();
    head_ = Request{};
    head_.method = std::string(h.method_string());
    head_.target = std::string(h.target());
    head_.authorization = std::string(h[http::field::authorization]);
    if (h.find(http::field::content_type) != h.end()) {
      head_.content_type = std::string(h[http::field::content_type]);
    }
    if (parser_->content_length()) head_.content_length = *parser_->content_length();
    head_.chunked = parser_->chunked();
    head_.last_event_id = std::string(h["Last-Event-ID"]);
    head_.signature = std::string(h["X-Signature"]);
    keep_alive_ = h.keep_alive();
    if (std::optional<Response> refused = api_->check_head(head_)) {
      // The body is not read: answer, then close the connection.
      keep_alive_ = false;
      api_->metrics().request(refused->endpoint, refused->status, 0);
      return write(std::move(*refused));
    }
    head_.head_checked = true;
    if (parser_->is_done()) return on_body({});
    parser_->body_limit(limits_.body_bytes_max);
    stream_.expires_after(std::chrono::milliseconds(limits_.body_timeout_ms));
    if (beast::iequals(h[http::field::expect], "100-continue")) {
      // The client (curl, for bodies over 1 KiB) waits for this before sending the body.
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
                          if (ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return refuse(413, "body_too_large",
                    "body larger than " + std::to_string(limits_.body_bytes_max) + " bytes");
    }
    if (ec) return close();
    state_ = State::busy;
    stream_.expires_never();
    head_.body = std::move(parser_->get().body());
    auto self = shared_from_this();
    api_->handle(std::move(head_), [self](Response res) {
      net::post(self->stream_.get_executor(),
                [self, res = std::move(res)]() mutable { self->write(std::move(res)); });
    });
  }

  void refuse(int status, const char* code, const std::string& message) {
    keep_alive_ = false;
    Response res;
    res.status = status;
    res.body = error_body({status, code, message, ""});
    api_->metrics().request(Endpoint::unrouted, status, 0);
    write(std::move(res));
  }

  void write(Response res) {
    if (state_ == State::closed) return;
    if (res.stream) return start_stream(std::move(res));
    state_ = State::busy;
    const bool keep_alive = keep_alive_ && !stopping_;
    // The head is written by hand into one buffer (the same bytes Beast's serializer writes,
    // without a field container and serializer per answer), then head and body in one write.
    out_head_.clear();
    fmt::format_to(std::back_inserter(out_head_),
                   "HTTP/1.1 {} {}\r\nServer: pointexd\r\nContent-Type: {}\r\n", res.status,
                   reason(res.status), res.content_type);
    if (!res.allow.empty())
      fmt::format_to(std::back_inserter(out_head_), "Allow: {}\r\n", res.allow);
    if (!keep_alive) out_head_.append("Connection: close\r\n");
    fmt::format_to(std::back_inserter(out_head_), "Content-Length: {}\r\n\r\n", res.body.size());
    out_body_ = std::move(res.body);
    stream_.expires_after(std::chrono::milliseconds(limits_.body_timeout_ms));
    const std::array<net::const_buffer, 2> buffers{net::buffer(out_head_), net::buffer(out_body_)};
    net::async_write(stream_, buffers,
                     [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                       if (ec) return self->close();
                       if (!keep_alive) return self->linger_close();
                       self->read_header();
                     });
  }

  /// Closes after an answer, reading (and dropping) what the client still sends for a while:
  /// closing with unread bytes would reset the connection and could lose the answer (for a
  /// request refused before its body was read).
  void linger_close() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::milliseconds(linger_ms));
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec || self->state_ == State::closed) return self->close();
                              self->drain();
                            });
  }

  // ---- Server-Sent Events ----

  void start_stream(Response res) {
    state_ = State::streaming;
    api_->metrics().streams.fetch_add(1);
    counted_stream_ = true;
    http::response<http::empty_body> head{http::status::ok, 11};
    head.set(http::field::server, "pointexd");
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    head.keep_alive(false);  // the stream ends when either side closes the connection
    std::ostringstream text;
    text << head.base() << ": pointexd event stream\n\n";
    stream_state_ = std::make_shared<StreamState>();
    queue_frames(text.str(), /*counted=*/false);
    std::weak_ptr<Session> weak = shared_from_this();
    auto state = stream_state_;
    const std::uint64_t buffer_max = limits_.stream_buffer_bytes_max;
    StreamSink sink = [weak, state, buffer_max](std::string frames) {
      {
        std::unique_lock<std::mutex> lock(state->mutex);
        state->room.wait(lock, [&] { return state->closed || state->queued_bytes < buffer_max; });
        if (state->closed) return false;
        state->queued_bytes += frames.size();
      }
      std::shared_ptr<Session> self = weak.lock();
      if (!self) return false;
      net::post(self->stream_.get_executor(), [self, f = std::move(frames)]() mutable {
        self->queue_frames(std::move(f), /*counted=*/true);
      });
      return true;
    };
    const Status s = api_->open_stream(res, std::move(sink), &subscription_);
    if (!s.is_ok()) {
      spdlog::error("event stream: cannot subscribe: {}", s.to_string());
      return close();
    }
    schedule_heartbeat();
    // Any byte from the client, or its close, ends the stream.
    stream_.expires_never();
    beast::get_lowest_layer(stream_).socket().async_read_some(
        net::buffer(probe_),
        net::bind_executor(
            stream_.get_executor(),
            [self = shared_from_this()](beast::error_code, std::size_t) { self->close(); }));
  }

  void schedule_heartbeat() {
    heartbeat_.expires_after(stream_heartbeat);
    heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->state_ != State::streaming) return;
      if (self->outbox_.empty()) self->queue_frames(": keep-alive\n\n", /*counted=*/false);
      self->schedule_heartbeat();
    });
  }

  void queue_frames(std::string frames, bool counted) {
    if (state_ == State::closed) return;
    outbox_.push_back({std::move(frames), counted});
    if (outbox_.size() == 1) write_frames();
  }

  void write_frames() {
    net::async_write(
        beast::get_lowest_layer(stream_).socket(), net::buffer(outbox_.front().first),
        net::bind_executor(stream_.get_executor(),
                           [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             self->on_frames_written(ec);
                           }));
  }

  void on_frames_written(beast::error_code ec) {
    if (outbox_.empty()) return;
    if (outbox_.front().second) {
      std::lock_guard<std::mutex> lock(stream_state_->mutex);
      stream_state_->queued_bytes -= outbox_.front().first.size();
      stream_state_->room.notify_all();
    }
    outbox_.pop_front();
    if (ec) return close();
    if (state_ == State::closed) return outbox_.clear();
    if (!outbox_.empty()) write_frames();
  }

  void end_stream() {
    if (!stream_state_) return;
    std::lock_guard<std::mutex> lock(stream_state_->mutex);
    stream_state_->closed = true;
    stream_state_->room.notify_all();
  }

  void close() {
    if (state_ == State::closed) return;
    state_ = State::closed;
    if (counted_stream_) {
      api_->metrics().streams.fetch_sub(1);
      counted_stream_ = false;
    }
    end_stream();
    // The feed's callback sees `closed` and returns; destroying the subscription waits for it.
    subscription_.reset();
    // outbox_ stays: a write in progress still refers to its front; the session drops it.
    heartbeat_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  beast::tcp_stream stream_;
  net::steady_timer heartbeat_;
  Api* api_;
  Metrics* metrics_;
  Registry* registry_;
  const ServerLimits& limits_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // The answer being written (one at a time per connection).
  std::string out_head_;
  std::string out_body_;
  Request head_;
  bool keep_alive_ = true;
  bool stopping_ = false;
  State state_ = State::reading;
  std::chrono::steady_clock::time_point started_;
  // Streaming.
  bool counted_stream_ = false;
  std::shared_ptr<StreamState> stream_state_;
  std::unique_ptr<Subscription> subscription_;
  std::deque<std::pair<std::string, bool>> outbox_;
  std::array<char, 64> probe_{};
  std::array<char, 16384> discard_{};
};

}  // namespace

struct HttpServer::Impl {
  explicit Impl(Api* a) : api(a), ioc(static_cast<int>(a->config().server.io_threads)) {}

  void accept() {
    acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec == net::error::operation_aborted) return;
        spdlog::warn("accept: {}", ec.message());
      } else {
        Metrics& m = api->metrics();
        const bool full =
            m.connections.load() >= static_cast<std::int64_t>(api->config().server.connections_max);
        if (full) {
          m.connections_refused.fetch_add(1);
          beast::error_code ignored;
          s.close(ignored);
        } else {
          // Answers are written whole in one call: Nagle would only delay them.
          beast::error_code ignored;
          s.set_option(tcp::no_delay(true), ignored);
          std::make_shared<Session>(std::move(s), api, &registry)->start();
        }
      }
      if (acceptor && acceptor->is_open()) accept();
    });
  }

  Api* api;
  // Before ioc: sessions destroyed with the io_context's pending handlers unregister here.
  Registry registry;
  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::uint16_t port = 0;
  std::vector<std::thread> threads;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
};

HttpServer::HttpServer(Api* api) : impl_(std::make_unique<Impl>(api)) {}

HttpServer::~HttpServer() {
  stop();
  impl_->acceptor.reset();
}

bool HttpServer::start(const std::string& host, std::uint16_t port, std::string* error) {
  Impl& s = *impl_;
  beast::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) {
    *error = "listen: '" + host + "' is not an IP address";
    return false;
  }
  const tcp::endpoint endpoint{address, port};
  s.acceptor.emplace(net::make_strand(s.ioc));
  s.acceptor->open(endpoint.protocol(), ec);
  if (!ec) s.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(endpoint, ec);
  if (!ec) s.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "listen on " + host + ":" + std::to_string(port) + ": " + ec.message();
    return false;
  }
  s.port = s.acceptor->local_endpoint().port();
  s.work.emplace(s.ioc.get_executor());
  net::post(s.acceptor->get_executor(), [&s] { s.accept(); });
  for (std::uint32_t i = 0; i < s.api->config().server.io_threads; ++i) {
    s.threads.emplace_back([&s] {
      pthread_setname_np(pthread_self(), "pointexd-io");
      s.ioc.run();
    });
  }
  return true;
}

std::uint16_t HttpServer::port() const {
  return impl_->port;
}

void HttpServer::stop_accepting() {
  Impl& s = *impl_;
  net::post(s.acceptor->get_executor(), [&s] {
    beast::error_code ignored;
    s.acceptor->close(ignored);
  });
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> lock(s.registry.mutex);
    s.registry.stopping = true;
    for (Session* session : s.registry.sessions) {
      // A session being destroyed has no owner left: skip it.
      if (std::shared_ptr<Session> p = session->weak_from_this().lock()) sessions.push_back(p);
    }
  }
  for (const auto& p : sessions) p->stop();
}

bool HttpServer::wait_closed(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(impl_->registry.mutex);
  return impl_->registry.closed.wait_for(lock, timeout,
                                         [&] { return impl_->registry.sessions.empty(); });
}

void HttpServer::stop() {
  Impl& s = *impl_;
  s.work.reset();
  s.ioc.stop();
  for (std::thread& t : s.threads) {
    if (t.joinable()) t.join();
  }
  s.threads.clear();
}

}  // namespace pointex::server

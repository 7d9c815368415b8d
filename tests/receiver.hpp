#pragma once
// A small HTTP server for tests that receive from PointEx (webhooks, payment providers,
// check-backs): it records every request with its headers and body, answers scripted status
// codes (and, if asked, a JSON body made from the request), and can be stopped and started again
// on the same port (a receiver that goes down and comes back). One Boost.Beast io_context on
// its own thread; keep-alive connections.

#include <fcntl.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pointex::test {

/// One request as the receiver got it, and the status it answered.
struct Received {
  std::string method;
  std::string target;
  /// Header names in lower case.
  std::map<std::string, std::string> headers;
  std::string body;
  int status = 0;

  std::string header(const std::string& lower_case_name) const {
    const auto it = headers.find(lower_case_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class Receiver {
 public:
  /// Listens on 127.0.0.1:`port` (0: any free port).
  explicit Receiver(std::uint16_t port = 0) { start(port); }
  ~Receiver() { stop(); }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  /// Starts listening again, on the port of the last start unless `port` is given. Requests
  /// recorded so far stay.
  void start(std::uint16_t port = 0) {
    namespace net = boost::asio;
    using tcp = net::ip::tcp;
    stop();
    if (port == 0) port = port_;
    io_ = std::make_unique<net::io_context>(1);
    acceptor_ = std::make_unique<tcp::acceptor>(*io_);
    const tcp::endpoint at(net::ip::make_address("127.0.0.1"), port);
    boost::beast::error_code ec;
    acceptor_->open(at.protocol(), ec);
    if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
    // Not inherited by processes the test forks (pointexd): they would keep the port open.
    if (!ec) ::fcntl(acceptor_->native_handle(), F_SETFD, FD_CLOEXEC);
    if (!ec) acceptor_->bind(at, ec);
    if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      acceptor_.reset();
      io_.reset();
      throw std::runtime_error("receiver: cannot listen on 127.0.0.1:" + std::to_string(port) +
                               ": " + ec.message());
    }
    port_ = acceptor_->local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_->run(); });
  }

  /// Stops listening and closes every connection (a sender then gets no answer).
  void stop() {
    if (!io_) return;
    io_->stop();
    if (thread_.joinable()) thread_.join();
    boost::beast::error_code ignored;
    for (const std::weak_ptr<Connection>& weak : connections_) {
      if (const std::shared_ptr<Connection> c = weak.lock()) c->socket.close(ignored);
    }
    connections_.clear();
    acceptor_.reset();
    io_.reset();  // destroys the pending handlers, and with them the connections
  }

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/hooks") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  /// The next requests are answered with these statuses, in order; then `default_status`.
  void script(std::vector<int> statuses) {
    std::lock_guard<std::mutex> lock(mutex_);
    script_.assign(statuses.begin(), statuses.end());
  }
  void set_default_status(int status) {
    std::lock_guard<std::mutex> lock(mutex_);
    default_status_ = status;
  }

  /// Answers carry the body `body(request)` as application/json (default: "status N" as text).
  void set_body(std::function<std::string(const Received&)> body) {
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = std::move(body);
  }

  /// Each answer waits this long first (a slow receiver; requests on other connections are
  /// read and wait meanwhile, as at a server with many threads).
  void set_delay(std::chrono::milliseconds delay) {
    std::lock_guard<std::mutex> lock(mutex_);
    delay_ = delay;
  }

  /// The most requests that were read and not yet answered at one time.
  std::size_t max_in_flight() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return max_in_flight_;
  }

  std::vector<Received> received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }

  /// Waits until `done(received())` holds; false after `timeout`.
  bool wait_until(const std::function<bool(const std::vector<Received>&)>& done,
                  std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return done(received_); });
  }

 private:
  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(boost::asio::ip::tcp::socket s, Receiver* r) : socket(std::move(s)), owner(r) {}
    boost::asio::ip::tcp::socket socket;
    Receiver* owner;
    boost::beast::flat_buffer buffer;
    boost::beast::http::request<boost::beast::http::string_body> request;
    boost::beast::http::response<boost::beast::http::string_body> response;
    std::unique_ptr<boost::asio::steady_timer> timer;

    void read() {
      request = {};
      boost::beast::http::async_read(
          socket, buffer, request,
          [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
            if (!ec) self->wait();
          });
    }
    void wait() {
      const std::chrono::milliseconds delay = owner->arrived();
      if (delay.count() == 0) return answer();
      timer = std::make_unique<boost::asio::steady_timer>(socket.get_executor(), delay);
      timer->async_wait([self = shared_from_this()](boost::beast::error_code ec) {
        if (!ec) self->answer();
      });
    }
    void answer() {
      std::string body;
      const int status = owner->record(request, &body);
      response = {};
      response.version(request.version());
      response.result(static_cast<unsigned>(status));
      response.keep_alive(request.keep_alive());
      response.set(boost::beast::http::field::content_type,
                   body.empty() ? "text/plain" : "application/json");
      response.body() = body.empty() ? "status " + std::to_string(status) : body;
      response.prepare_payload();
      boost::beast::http::async_write(
          socket, response, [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
            if (ec) return;
            if (self->request.keep_alive()) return self->read();
            boost::beast::error_code ignored;
            self->socket.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
          });
    }
  };

  void accept() {
    acceptor_->async_accept(
        [this](boost::beast::error_code ec, boost::asio::ip::tcp::socket socket) {
          if (ec) return;
          ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
          auto connection = std::make_shared<Connection>(std::move(socket), this);
          connections_.push_back(connection);
          connection->read();
          accept();
        });
  }

  /// A request was read: counted in flight until recorded; how long to wait before answering.
  std::chrono::milliseconds arrived() {
    std::lock_guard<std::mutex> lock(mutex_);
    max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    return delay_;
  }

  int record(const boost::beast::http::request<boost::beast::http::string_body>& request,
             std::string* body) {
    Received r;
    r.method = std::string(request.method_string());
    r.target = std::string(request.target());
    for (const auto& field : request) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(field.value());
    }
    r.body = request.body();
    std::lock_guard<std::mutex> lock(mutex_);
    --in_flight_;
    if (script_.empty()) {
      r.status = default_status_;
    } else {
      r.status = script_.front();
      script_.pop_front();
    }
    if (body_) *body = body_(r);
    received_.push_back(r);
    changed_.notify_all();
    return r.status;
  }

  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::thread thread_;
  std::uint16_t port_ = 0;
  /// Open connections (io thread only while it runs), closed by stop().
  std::vector<std::weak_ptr<Connection>> connections_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<int> script_;
  int default_status_ = 200;
  std::chrono::milliseconds delay_{0};
  std::size_t in_flight_ = 0;
  std::size_t max_in_flight_ = 0;
  std::function<std::string(const Received&)> body_;
  std::vector<Received> received_;
};

}  // namespace pointex::test

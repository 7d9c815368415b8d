#pragma once
/// The socket side of pointexd: HTTP/1.1 keep-alive connections on Boost.Beast, handing parsed
/// requests to an Api and writing its answers. Beast stays inside http_server.cpp.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "server/api.hpp"

namespace pointex::server {

class HttpServer {
 public:
  /// `api` must outlive the server.
  explicit HttpServer(Api* api);
  /// Stops (as stop()) and closes every connection; live streams' subscriptions end here.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds `host:port` (port 0: any free port), listens and starts the I/O threads.
  [[nodiscard]] bool start(const std::string& host, std::uint16_t port, std::string* error);
  /// The bound port (after start).
  std::uint16_t port() const;

  /// Graceful stop, first half: no new connections; idle connections and event streams are
  /// closed; a connection busy with a request closes after answering it.
  void stop_accepting();
  /// Waits until every connection is closed, at most `timeout`; true if they all are.
  bool wait_closed(std::chrono::milliseconds timeout);
  /// Stops the I/O threads (idempotent).
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pointex::server

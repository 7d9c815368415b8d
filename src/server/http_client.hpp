#pragma once
/// A small blocking HTTP/1.1 client on Boost.Beast, for the `pointex` command line, the
/// end-to-end tests and the HTTP bench's setup. Keeps one keep-alive connection.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pointex::client {

struct HttpResult {
  /// 0 when no answer came (then `error` says why).
  int status = 0;
  std::string body;
  /// Header names in lower case.
  std::map<std::string, std::string> headers;
  std::string error;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

/// Splits `http://host:port` (or `host:port`); no TLS, no path.
[[nodiscard]] bool parse_url(const std::string& url, std::string* host, std::uint16_t* port,
                             std::string* error);

class HttpClient {
 public:
  HttpClient(std::string host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Sends one request (Content-Type: application/json when `body` is not empty, unless
  /// `headers` give one) and reads the answer. Reconnects once if a kept-alive connection
  /// was closed by the server before answering.
  HttpResult request(const std::string& method, const std::string& target,
                     const std::string& body = {}, const Headers& headers = {});

  /// Sends `bytes` as they are on a new connection and returns everything the server sends
  /// until it closes or `timeout` passes (for malformed-request tests).
  std::string raw(const std::string& bytes);

  /// GET `target` as an event stream: `on_data` gets the body as it arrives until it returns
  /// false, the server closes, or no byte comes for `idle`. Returns the status (0: failed).
  int stream(const std::string& target, const Headers& headers,
             const std::function<bool(std::string_view)>& on_data, std::chrono::milliseconds idle,
             std::string* error);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pointex::client

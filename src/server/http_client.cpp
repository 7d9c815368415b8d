#include "server/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace pointex::client {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

bool parse_url(const std::string& url, std::string* host, std::uint16_t* port, std::string* error) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  if (rest.rfind("https://", 0) == 0) {
    *error = "https is not supported: put a TLS proxy in front of pointexd";
    return false;
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  if (rest.empty() || rest.find('/') != std::string::npos) {
    *error = "expected http://HOST:PORT, got '" + url + "'";
    return false;
  }
  *host = colon == std::string::npos ? rest : rest.substr(0, colon);
  std::string p = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(p) > 65535) {
    *error = "bad port in '" + url + "'";
    return false;
  }
  *port = static_cast<std::uint16_t>(std::stoul(p));
  return true;
}

struct HttpClient::Impl {
  std::string host;
  std::uint16_t port;
  std::chrono::milliseconds timeout;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  beast::error_code connect() {
    stream.reset();
    buffer.clear();
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    const auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return ec;
    stream.emplace(ioc);
    stream->expires_after(timeout);
    ec = run([&](auto handler) { stream->async_connect(endpoints, handler); });
    if (ec) stream.reset();
    return ec;
  }

  /// Runs one asynchronous operation to its end on this thread. The stream's timeout
  /// (expires_after) applies to asynchronous operations only: a blocking read from a server
  /// that never answers would wait for ever.
  template <class Start>
  beast::error_code run(Start start) {
    beast::error_code result = net::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }
};

HttpClient::HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() = default;

HttpResult HttpClient::request(const std::string& method, const std::string& target,
                               const std::string& body, const Headers& headers) {
  Impl& s = *impl_;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  if (req.method() == http::verb::unknown) req.method_string(method);
  req.set(http::field::host, s.host);
  req.set(http::field::user_agent, "pointex");
  bool has_type = false;
  for (const auto& [name, value] : headers) {
    req.set(name, value);
    has_type = has_type || beast::iequals(name, "content-type");
  }
  if (!body.empty() && !has_type) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  HttpResult result;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = s.stream.has_value();
    beast::error_code ec;
    if (!s.stream) ec = s.connect();
    if (ec) {
      result.error =
          "cannot connect to " + s.host + ":" + std::to_string(s.port) + ": " + ec.message();
      return result;
    }
    s.stream->expires_after(s.timeout);
    ec = s.run([&](auto handler) { http::async_write(*s.stream, req, handler); });
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ULL << 30);
    if (!ec)
      ec = s.run([&](auto handler) { http::async_read(*s.stream, s.buffer, parser, handler); });
    if (ec) {
      s.stream.reset();
      if (reused && (ec == http::error::end_of_stream || ec == net::error::connection_reset ||
                     ec == net::error::broken_pipe)) {
        continue;  // the server closed a kept-alive connection: once more on a new one
      }
      result.error = "request failed: " + ec.message();
      return result;
    }
    auto& res = parser.get();
    result.status = static_cast<int>(res.result_int());
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      result.headers[name] = std::string(field.value());
    }
    result.body = std::move(res.body());
    if (!res.keep_alive()) s.stream.reset();
    return result;
  }
  result.error = "the server closed the connection";
  return result;
}

std::string HttpClient::raw(const std::string& bytes) {
  Impl s;
  s.host = impl_->host;
  s.port = impl_->port;
  s.timeout = impl_->timeout;
  if (s.connect()) return {};
  beast::error_code ec;
  net::write(*s.stream, net::buffer(bytes), ec);
  std::string out;
  char buf[4096];
  while (!ec) {
    s.stream->expires_after(s.timeout);
    const std::size_t n = s.stream->read_some(net::buffer(buf), ec);
    out.append(buf, n);
  }
  return out;
}

int HttpClient::stream(const std::string& target, const Headers& headers,
                       const std::function<bool(std::string_view)>& on_data,
                       std::chrono::milliseconds idle, std::string* error) {
  Impl s;
  s.host = impl_->host;
  s.port = impl_->port;
  s.timeout = impl_->timeout;
  beast::error_code ec = s.connect();
  if (ec) {
    *error = "cannot connect: " + ec.message();
    return 0;
  }
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, s.host);
  req.set(http::field::accept, "text/event-stream");
  for (const auto& [name, value] : headers) req.set(name, value);
  http::write(*s.stream, req, ec);
  http::response_parser<http::string_body> parser;
  if (!ec) http::read_header(*s.stream, s.buffer, parser, ec);
  if (ec) {
    *error = "request failed: " + ec.message();
    return 0;
  }
  const int status = static_cast<int>(parser.get().result_int());
  if (status != 200) {
    http::read(*s.stream, s.buffer, parser, ec);
    *error = parser.get().body();
    return status;
  }
  // The body is close-delimited: what follows the header in the buffer, then raw reads.
  if (s.buffer.size() > 0) {
    const std::string first = beast::buffers_to_string(s.buffer.data());
    s.buffer.consume(s.buffer.size());
    if (!on_data(first)) return status;
  }
  char buf[8192];
  for (;;) {
    s.stream->expires_after(idle);
    const std::size_t n = s.stream->read_some(net::buffer(buf), ec);
    if (n > 0 && !on_data(std::string_view(buf, n))) return status;
    if (ec) {
      if (ec != http::error::end_of_stream && ec != net::error::eof) *error = ec.message();
      return status;
    }
  }
}

}  // namespace pointex::client

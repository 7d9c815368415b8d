#pragma once
// A payment provider for end-to-end tests: a real local HTTP endpoint (receiver.hpp) where
// pointexd creates payments, and the provider's side of the callbacks. It records every
// creation, checks its signature, answers scripted statuses with a JSON `reference`, can go
// down and come back on the same port, and reports results to the callback_url a creation
// gave, signed with the provider's secret (or, for refusal tests, unsigned, with another
// secret, or with the body changed after signing).

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "receiver.hpp"
#include "server/hmac.hpp"
#include "server/http_client.hpp"

namespace pointex::test {

class ProviderServer {
 public:
  explicit ProviderServer(std::string secret) : secret_(std::move(secret)) {
    receiver_.set_default_status(201);
    receiver_.set_body([](const Received& r) {
      const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
      const std::string id = j.is_object() && j.contains("payment_id") ? j["payment_id"] : "";
      return nlohmann::json{{"reference", "https://pay.test/" + id}}.dump();
    });
  }

  /// Where pointexd creates payments.
  std::string url() const { return receiver_.url("/payments"); }
  /// Down (connections refused) and up again on the same port.
  void down() { receiver_.stop(); }
  void up() { receiver_.start(); }
  /// The next creations are answered with these statuses, then 201.
  void script(std::vector<int> statuses) { receiver_.script(std::move(statuses)); }
  /// Each creation is answered after `delay` (a slow provider).
  void set_delay(std::chrono::milliseconds delay) { receiver_.set_delay(delay); }
  /// The most creations it held unanswered at one time.
  std::size_t max_in_flight() const { return receiver_.max_in_flight(); }

  /// Every creation request as received (answered or not by a 2xx).
  std::vector<Received> requests() const { return receiver_.received(); }
  /// The bodies of the creations answered 2xx whose X-Signature is right.
  std::vector<nlohmann::json> payments() const {
    std::vector<nlohmann::json> out;
    for (const Received& r : receiver_.received()) {
      if (r.status < 200 || r.status >= 300) continue;
      if (!client::hmac_sha256_verify(secret_, r.body, r.header("x-signature"))) continue;
      out.push_back(nlohmann::json::parse(r.body));
    }
    return out;
  }
  /// Waits until `n` requests came; false after `timeout`.
  bool wait_for_requests(std::size_t n,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return receiver_.wait_until([n](const std::vector<Received>& r) { return r.size() >= n; },
                                timeout);
  }

  /// How a report is signed.
  enum class Signing { right, none, wrong_secret, body_changed };
  /// POSTs `{"payment_id","status"}` to the payment's callback_url; the HTTP answer.
  client::HttpResult report(const nlohmann::json& payment, const std::string& status,
                            Signing signing = Signing::right) const {
    std::string host;
    std::uint16_t port = 0;
    std::string error;
    const std::string url = payment["callback_url"];
    const auto path = url.find('/', url.find("//") + 2);
    if (!client::parse_url(url.substr(0, path), &host, &port, &error)) return {0, {}, {}, error};
    std::string body =
        nlohmann::json{{"payment_id", payment["payment_id"]}, {"status", status}}.dump();
    std::string signature = client::hmac_sha256_hex(secret_, body);
    if (signing == Signing::wrong_secret) {
      signature = client::hmac_sha256_hex("another-secret-0123456789", body);
    }
    if (signing == Signing::body_changed) body[body.size() - 2] = 'X';
    client::Headers headers = {{"Content-Type", "application/json"}};
    if (signing != Signing::none) headers.emplace_back("X-Signature", signature);
    client::HttpClient c(host, port);
    return c.request("POST", url.substr(path), body, headers);
  }

 private:
  std::string secret_;
  Receiver receiver_;
};

}  // namespace pointex::test

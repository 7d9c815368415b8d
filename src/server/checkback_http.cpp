#include "server/checkback_http.hpp"

#include <pthread.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "domain/webhook.hpp"
#include "server/hmac.hpp"
#include "server/http_client.hpp"

namespace pointex::server {

HttpCheckBackClient::HttpCheckBackClient(CheckBackConfig config) : config_(std::move(config)) {
  for (std::uint32_t i = 0; i < config_.threads; ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "pointex-check");
      run();
    });
  }
}

HttpCheckBackClient::~HttpCheckBackClient() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
  // Checks still queued: the engine has stopped and drops the answers; the next open checks
  // again.
  for (auto& [request, done] : queue_) done(CheckAnswer::unknown, "pointexd is stopping");
}

void HttpCheckBackClient::check(const CheckRequest& request, CheckCallback done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.emplace_back(request, std::move(done));
  }
  wake_.notify_one();
}

std::string HttpCheckBackClient::body(const CheckRequest& r) {
  const Transfer& t = r.transfer;
  return nlohmann::json{{"transfer_id", t.id},
                        {"debit_account", t.debit_account},
                        {"credit_account", t.credit_account},
                        {"amount", t.amount},
                        {"ledger", t.ledger},
                        {"code", t.code},
                        {"user_data", t.user_data},
                        {"attempt", r.attempt}}
      .dump();
}

CheckAnswer HttpCheckBackClient::answer_of(int status, const std::string& body,
                                           std::string* detail) {
  if (status < 200 || status >= 300) {
    *detail = "answered " + std::to_string(status);
    return CheckAnswer::unknown;
  }
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  const auto it = j.is_object() ? j.find("outcome") : j.end();
  if (it != j.end() && it->is_string()) {
    const std::string outcome = *it;
    if (outcome == "commit") return CheckAnswer::commit;
    if (outcome == "rollback") return CheckAnswer::rollback;
    if (outcome == "unknown") {
      *detail = "unknown";
      return CheckAnswer::unknown;
    }
  }
  *detail = "invalid answer (expected {\"outcome\":\"commit\"|\"rollback\"|\"unknown\"})";
  return CheckAnswer::unknown;
}

void HttpCheckBackClient::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    auto [request, done] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    std::string host;
    std::uint16_t port = 0;
    std::string target;
    std::string detail;
    CheckAnswer answer = CheckAnswer::unknown;
    if (!domain::parse_http_url(request.url, &host, &port, &target)) {
      detail = "bad url";
    } else {
      const std::string b = body(request);
      client::Headers headers = {{"Content-Type", "application/json"}};
      if (!config_.secret.empty()) {
        headers.emplace_back("X-Signature", client::hmac_sha256_hex(config_.secret, b));
      }
      client::HttpClient http(host, port, std::chrono::milliseconds(config_.timeout_ms));
      const client::HttpResult r = http.request("POST", target, b, headers);
      answer = r.status == 0 ? CheckAnswer::unknown : answer_of(r.status, r.body, &detail);
      if (r.status == 0) detail = "no answer: " + r.error;
    }
    done(answer, std::move(detail));
    lock.lock();
  }
}

}  // namespace pointex::server

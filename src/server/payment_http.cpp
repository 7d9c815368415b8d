#include "server/payment_http.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "domain/webhook.hpp"
#include "server/hmac.hpp"
#include "server/http_client.hpp"

namespace pointex::server {
namespace {

constexpr auto backoff_base = std::chrono::milliseconds(100);

bool retried(int status) {
  return status == 0 || status >= 500 || status == 408 || status == 429;
}

std::string cut(std::string text, std::size_t bytes_max) {
  if (text.size() > bytes_max) text.resize(bytes_max);
  return text;
}

}  // namespace

HttpPaymentProvider::HttpPaymentProvider(server::PaymentProviderConfig config)
    : config_(std::move(config)) {
  const bool parsed = domain::parse_http_url(config_.url, &host_, &port_, &target_);
  if (!parsed) spdlog::error("payment provider {}: bad url {}", config_.name, config_.url);
  for (std::uint32_t i = 0; i < std::max<std::uint32_t>(config_.threads, 1); ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "pointex-payhttp");
      run();
    });
  }
}

HttpPaymentProvider::~HttpPaymentProvider() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  stopped_.notify_all();
  for (std::thread& t : threads_) t.join();
  // Creations still queued are answered: the engine has stopped and drops the answers.
  for (auto& [request, done] : queue_) done({false, {}, "pointexd is stopping"});
}

void HttpPaymentProvider::create_payment(const PaymentRequest& request,
                                         PaymentCreationCallback done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.emplace_back(request, std::move(done));
  }
  wake_.notify_one();
}

std::string HttpPaymentProvider::creation_body(const PaymentRequest& r,
                                               const std::string& callback_url) {
  return nlohmann::json{{"payment_id", r.payment_id},
                        {"order_id", r.order_id},
                        {"amount", r.amount},
                        {"currency", r.currency},
                        {"callback_url", callback_url}}
      .dump();
}

void HttpPaymentProvider::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    auto [request, done] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    done(create(request));
    lock.lock();
  }
}

PaymentCreation HttpPaymentProvider::create(const PaymentRequest& request) {
  const std::string body = creation_body(request, config_.callback_url);
  const client::Headers headers = {{"Content-Type", "application/json"},
                                   {"X-Signature", client::hmac_sha256_hex(config_.secret, body)},
                                   {"Idempotency-Key", request.payment_id}};
  client::HttpResult r;
  auto backoff = backoff_base;
  for (std::uint32_t attempt = 1; attempt <= config_.attempts_max; ++attempt) {
    {
      // A new connection per attempt: a provider that went away and came back is found again.
      client::HttpClient http(host_, port_, std::chrono::milliseconds(config_.timeout_ms));
      r = http.request("POST", target_, body, headers);
    }
    if (!retried(r.status) || attempt == config_.attempts_max) break;
    spdlog::warn("payment provider {}: creating {} answered {}{}; trying again", config_.name,
                 request.payment_id, r.status, r.status == 0 ? " (" + r.error + ")" : "");
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopped_.wait_for(lock, backoff, [this] { return stopping_; })) break;
    backoff *= 2;
  }
  if (r.status >= 200 && r.status < 300) {
    const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    std::string reference;
    if (j.is_object() && j.contains("reference") && j["reference"].is_string()) {
      reference = j["reference"].get<std::string>();
    }
    return {true, cut(std::move(reference), payment_reference_bytes_max), {}};
  }
  const std::string why = r.status == 0 ? "no answer: " + r.error
                                        : "answered " + std::to_string(r.status) + ": " + r.body;
  return {false, {}, cut("provider " + config_.name + " " + why, payment_error_bytes_max)};
}

std::vector<std::shared_ptr<pointex::PaymentProvider>> make_payment_providers(
    const std::vector<PaymentProviderConfig>& configs, const std::string& listen) {
  std::vector<std::shared_ptr<pointex::PaymentProvider>> out;
  for (PaymentProviderConfig c : configs) {
    if (c.type == PaymentProviderConfig::Type::simulated) {
      SimulatedProviderOptions o;
      o.name = c.name;
      o.latency_ms = c.latency_ms;
      o.failure_rate = c.failure_rate;
      o.seed = c.seed;
      out.push_back(make_simulated_provider(o));
      continue;
    }
    if (c.callback_url.empty()) {
      c.callback_url = "http://" + listen + "/v1/payments/" + c.name + "/callback";
    }
    out.push_back(std::make_shared<HttpPaymentProvider>(std::move(c)));
  }
  return out;
}

}  // namespace pointex::server

#pragma once
/// The `http` payment provider of pointexd (docs/workflows.md, "Payments"): creates each payment
/// with a signed POST to the provider's URL, on threads of its own (`threads` of them, never
/// the engine's flows thread: a slow creation holds one of them only), and learns results from the
/// provider's callback, POST /v1/payments/{provider}/callback (server/api.cpp), which calls
/// Engine::payment_result.
///
/// A creation is `POST <url>` with `{"payment_id","order_id","amount","currency",
/// "callback_url"}`, `X-Signature: <hex HMAC-SHA256 of the body with the secret>` and
/// `Idempotency-Key: <payment_id>`. A 2xx answer creates it (its JSON `reference`, if any, is
/// kept with the order); another 4xx refuses it; no answer, 5xx, 408 or 429 is tried again
/// (attempts_max, backoff 100 ms doubled), then the creation fails.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <pointex/payments.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "server/config.hpp"

namespace pointex::server {

class HttpPaymentProvider final : public pointex::PaymentProvider {
 public:
  /// REQUIRES: `config` was validated (parse_config) and its callback_url is set.
  explicit HttpPaymentProvider(server::PaymentProviderConfig config);
  ~HttpPaymentProvider() override;
  HttpPaymentProvider(const HttpPaymentProvider&) = delete;
  HttpPaymentProvider& operator=(const HttpPaymentProvider&) = delete;

  const std::string& name() const override { return config_.name; }
  void create_payment(const PaymentRequest& request, PaymentCreationCallback done) override;

  /// The body of a creation (also what the test provider checks).
  static std::string creation_body(const PaymentRequest& request, const std::string& callback_url);

 private:
  void run();
  PaymentCreation create(const PaymentRequest& request);

  const server::PaymentProviderConfig config_;
  std::string host_;
  std::uint16_t port_ = 0;
  std::string target_;
  std::mutex mutex_;
  /// A creation queued, or stopping (idle threads wait on it).
  std::condition_variable wake_;
  /// Stopping (threads waiting out a retry's backoff wait on it, so that a creation's
  /// notify_one always reaches an idle thread).
  std::condition_variable stopped_;
  std::deque<std::pair<PaymentRequest, PaymentCreationCallback>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

/// The providers of a configuration, as the engine takes them. `listen` is the address
/// pointexd listens on (with the bound port): the default of each callback_url.
std::vector<std::shared_ptr<pointex::PaymentProvider>> make_payment_providers(
    const std::vector<PaymentProviderConfig>& configs, const std::string& listen);

}  // namespace pointex::server

#pragma once
/// pointex-bench's W6: points + cash orders with the simulated payment provider
/// (docs/workflows.md, "Orders"), one definition for the embedded bench and the HTTP mode.
///
///   W6 orders   a member (random among the first `active`) pays the bench merchant `points`
///               points and `cash` cents (EUR) through the simulated provider `sim`: the points
///               are reserved, the payment created, and `latency_ms` later the provider's
///               result posts them or, for the share `failure_rate` of payments it fails
///               (chosen by its seed and the payment id), voids them. `clients` orders in
///               flight, each waiting for its creation's answer (awaiting_payment); results
///               come meanwhile, on their own.
///
/// Every creation must answer awaiting_payment, or, when the provider's result came before the
/// creation's answer (its latency is shorter than three group commits under load), completed or
/// failed with payment_failed. After the run the bench waits until no order
/// is open, then checks: the merchant received `points` x (payments the provider's rule does
/// not fail) exactly, balances sum to zero, nothing is pending. Over HTTP, pointexd's config
/// must have a simulated provider named `sim` with the same failure rate and seed
/// (config/pointexd.json has it with the bench's defaults).

#include <cstdint>
#include <mutex>
#include <pointex/engine.hpp>
#include <random>
#include <string>

#include "histogram.hpp"

namespace pointex::bench {

/// The merchant of W6, on the bench ledger.
inline constexpr AccountId merchant_id = 4;
inline constexpr const char* order_provider = "sim";

struct OrderLoadOptions {
  /// Members of the bench ledger (all are summed for conservation).
  std::uint32_t accounts = 100'000;
  /// Members that order (the first `active`).
  std::uint32_t active = 100'000;
  /// Orders in flight (over HTTP: connections, one thread each).
  std::uint32_t clients = 64;
  std::uint64_t points = 10;
  std::uint64_t cash = 1'000;
  double duration_s = 10;
  double warmup_s = 2;
  std::uint64_t seed = 42;
  /// The simulated provider: result latency, share of failed payments, its seed.
  std::uint32_t latency_ms = 10;
  double failure_rate = 0.1;
  std::uint64_t payment_seed = 42;
  /// Order ids start here (fresh per run).
  std::uint64_t first_id = 1;
  /// HTTP mode: HOST:PORT of pointexd and an admin key (empty: embedded).
  std::string address;
  std::string key;
};

struct OrderLoadResult {
  double seconds = 0;
  /// Creations answered awaiting_payment inside the measured window, and orders that
  /// completed (paid or failed) inside it.
  std::uint64_t created = 0;
  std::uint64_t completed = 0;
  /// Every creation of the run: awaiting_payment (or already paid or failed by its payment),
  /// and anything else (a failure of the run).
  std::uint64_t awaiting = 0;
  std::uint64_t refused = 0;
  std::string first_refusal;
  /// Payments the provider's rule succeeds among the awaiting ones.
  std::uint64_t expected_paid = 0;
  /// From the end of the window until no order was open.
  double drain_s = 0;
  /// Creation latency: from the request to awaiting_payment.
  Histogram latency;
  bool conserved = false;
  std::string conservation_message;
};

/// W6's orders and the count of what their creations answered (thread-safe).
class OrderPlan {
 public:
  explicit OrderPlan(const OrderLoadOptions& options);
  Order next();
  /// One creation answered: its status, failure and payment id (`refusal` says what went
  /// wrong when it is not one of W6's outcomes).
  void answered(const std::string& status, const std::string& failure,
                const std::string& payment_id, const std::string& refusal);
  void fill(OrderLoadResult* result) const;

 private:
  const OrderLoadOptions& o_;
  mutable std::mutex mutex_;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<std::uint32_t> member_;
  std::uint64_t next_id_;
  std::uint64_t awaiting_ = 0;
  std::uint64_t refused_ = 0;
  std::uint64_t expected_paid_ = 0;
  std::string first_refusal_;
};

/// The merchant account (idempotent). REQUIRES: the bench ledger exists.
[[nodiscard]] Status setup_orders(Engine& engine);
/// The simulated provider the embedded bench opens the engine with.
std::shared_ptr<PaymentProvider> bench_provider(const OrderLoadOptions& options);
/// Runs W6 embedded and checks it (after every order completed and the read models caught up).
OrderLoadResult run_order_load(Engine& engine, const OrderLoadOptions& options);
/// The same against pointexd (setup, load, drain, checks over HTTP).
OrderLoadResult run_order_load_http(const OrderLoadOptions& options);

}  // namespace pointex::bench

#pragma once
/// Counters of the daemon, rendered in the Prometheus text format by GET /metrics. Lock-free:
/// every counter is an atomic, updated on the request path.

#include <array>
#include <atomic>
#include <cstdint>
#include <pointex/engine.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace pointex::server {

enum class Endpoint : std::uint8_t {
  healthz,
  metrics,
  ledgers_create,
  ledgers_list,
  ledger_get,
  accounts_create,
  account_get,
  account_close,
  account_transfers,
  account_balances,
  transfers_create,
  transfer_get,
  events,
  events_stream,
  rates_list,
  rate_get,
  rate_put,
  exchanges_create,
  exchange_get,
  subscriptions_create,
  subscriptions_list,
  subscription_get,
  subscription_delete,
  dead_letters_list,
  dead_letter_retry,
  orders_create,
  order_get,
  order_cancel,
  payment_callback,
  rules_get,
  rules_put,
  purchases_create,
  purchase_get,
  purchase_refund,
  check_backs_create,
  check_backs_list,
  check_back_get,
  check_back_resolve,
  unrouted,
  count,
};
std::string_view to_string(Endpoint e);

class Metrics {
 public:
  static constexpr std::array<int, 15> statuses = {200, 201, 202, 400, 401, 403, 404, 405,
                                                   409, 413, 415, 429, 500, 503, 0};
  /// Latency bucket upper bounds in seconds (then +Inf).
  static constexpr std::array<double, 16> latency_buckets_s = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  static constexpr std::array<std::uint64_t, 11> batch_buckets = {1,   2,    5,    10,   50,  100,
                                                                  500, 1000, 2000, 5000, 8190};

  void request(Endpoint endpoint, int status, std::uint64_t latency_ns);
  void transfers(const std::vector<TransferOutcome>& outcomes);
  void batch(Endpoint endpoint, std::size_t items);
  /// A payment callback: what the engine did with it, or refused before (a bad signature).
  void payment_callback(PaymentResultOutcome outcome);
  void payment_callback_refused();

  std::atomic<std::int64_t> inflight_requests{0};
  std::atomic<std::int64_t> connections{0};
  std::atomic<std::int64_t> streams{0};
  std::atomic<std::uint64_t> connections_refused{0};

  /// The whole exposition; `stats` is null before the engine is open.
  std::string render(const EngineStats* stats) const;

 private:
  static constexpr std::size_t endpoints = static_cast<std::size_t>(Endpoint::count);
  using Counter = std::atomic<std::uint64_t>;
  std::array<std::array<Counter, statuses.size()>, endpoints> requests_{};
  std::array<std::array<Counter, latency_buckets_s.size() + 1>, endpoints> latency_{};
  std::array<Counter, endpoints> latency_sum_ns_{};
  std::array<Counter, transfer_result_count> transfer_results_{};
  std::array<std::array<Counter, batch_buckets.size() + 1>, 2> batch_{};
  std::array<Counter, 2> batch_sum_{};
  /// By PaymentResultOutcome, then one for callbacks refused for their signature.
  std::array<Counter, 6> payment_callbacks_{};
};

}  // namespace pointex::server

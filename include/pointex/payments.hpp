#pragma once
/// Payment providers (docs/workflows.md, "Payments"): what the engine asks of a third-party
/// payment service to take the cash part of an order. An embedder plugs its own provider by
/// implementing PaymentProvider and listing it in EngineOptions::payment_providers; the library
/// has a simulated one (tests, demos, the bench) and pointexd adds an HTTP one. No CAF or
/// RocksDB type appears here.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace pointex {

/// A payment's result as the provider reports it. Stable numbers.
enum class PaymentStatus : std::uint32_t {
  succeeded = 0,
  failed = 1,
};
std::string_view to_string(PaymentStatus status);
/// "succeeded" or "failed"; false for anything else.
[[nodiscard]] bool payment_status_from_string(std::string_view text, PaymentStatus* status);

/// A provider's name: 1 to this many of a-z, 0-9, `_` and `-`.
inline constexpr std::size_t payment_provider_name_bytes_max = 64;
/// What a provider's creation answer may carry: a reference (or a URL to pay at), an error.
inline constexpr std::size_t payment_reference_bytes_max = 512;
inline constexpr std::size_t payment_error_bytes_max = 256;
/// A payment id is at most this long (the engine makes them: `po-<order id>-<timestamp>`).
inline constexpr std::size_t payment_id_bytes_max = 64;

/// Whether `name` is a valid provider name.
bool valid_payment_provider_name(std::string_view name);

/// A payment to create: the cash part of an order.
struct PaymentRequest {
  /// Made by the engine, unique and the same across restarts: the provider's idempotency key
  /// (creating it again must not take the cash twice) and the id its results name.
  std::string payment_id;
  std::uint64_t order_id = 0;
  /// Minor units of `currency` (cents).
  std::uint64_t amount = 0;
  /// ISO 4217 code: three of A-Z.
  std::string currency;
};

/// A provider's answer to a creation.
struct PaymentCreation {
  /// The payment exists at the provider and its result will come later.
  bool created = false;
  /// created: what the payer or an operator needs (the provider's reference, a URL to pay at);
  /// shown with the order. Cut to payment_reference_bytes_max.
  std::string reference;
  /// Not created: why (kept with the failed order). Cut to payment_error_bytes_max.
  std::string error;
};
using PaymentCreationCallback = std::function<void(PaymentCreation creation)>;

/// Where a provider that learns results by itself reports them (the engine passes one to
/// attach(); it calls Engine::payment_result).
using PaymentResultSink = std::function<void(const std::string& payment_id, PaymentStatus status)>;

/// A payment service. The engine calls it from its flows thread: no call may block.
class PaymentProvider {
 public:
  virtual ~PaymentProvider() = default;

  /// The name orders and callbacks use (valid_payment_provider_name), never changing.
  virtual const std::string& name() const = 0;

  /// Creates a payment. Must not block: `done` runs exactly once, later, on any thread, never
  /// inside this call. After a restart the engine may create the same payment_id again when it
  /// had not recorded the answer: answer as the first time (idempotent by payment_id). The
  /// result (succeeded or failed) comes later through Engine::payment_result, from the
  /// provider's callback (pointexd: POST /v1/payments/{provider}/callback) or from the sink.
  virtual void create_payment(const PaymentRequest& request, PaymentCreationCallback done) = 0;

  /// The engine gives the provider a sink for results it learns by itself when it opens, and
  /// takes it back (an empty function) when it closes: a result reported without a sink is
  /// dropped (the engine expires the order, or takes the result again from a retry). Default:
  /// ignored, for providers whose results come through their callback.
  virtual void attach(PaymentResultSink sink) { (void)sink; }
};

/// The simulated provider: every creation succeeds; each payment's result comes `latency_ms`
/// later, failed for a share `failure_rate` of payments chosen by a hash of (seed, payment id),
/// so the same seed gives the same results in any order and across restarts.
struct SimulatedProviderOptions {
  /// Default: "simulated".
  std::string name = "simulated";
  /// From a creation to its result. Default: 10 ms.
  std::uint32_t latency_ms = 10;
  /// Share of payments that fail, 0 to 1. Default: 0.
  double failure_rate = 0;
  /// Default: 1.
  std::uint64_t seed = 1;
  /// false: results are never reported (a test or demo reports them through
  /// Engine::payment_result itself). Default: true.
  bool report_results = true;
};

/// A simulated provider with its own timer thread (stopped when the last reference goes).
std::shared_ptr<PaymentProvider> make_simulated_provider(SimulatedProviderOptions options);

/// Whether the simulated provider with `seed` and `failure_rate` fails `payment_id` (its rule,
/// for tests and the bench).
bool simulated_payment_fails(std::uint64_t seed, double failure_rate, std::string_view payment_id);

}  // namespace pointex

// Names of the order and payment enums, as they appear in the HTTP API and in logs, and the
// simulated payment provider's rule (pure, so the domain tests and the bench can use it).
#include <array>

#include "domain/enum_names.hpp"
#include "pointex/orders.hpp"

namespace pointex {

using domain::name_of;
namespace {

constexpr std::array<std::string_view, order_result_count> order_result_names = {
    "ok",
    "exists",
    "exists_with_different_fields",
    "id_must_not_be_zero",
    "id_reserved",
    "points_must_not_be_zero",
    "accounts_must_be_different",
    "member_account_not_found",
    "merchant_account_not_found",
    "ledger_mismatch",
    "currency_invalid",
    "timeout_too_long",
    "provider_not_found",
    "not_found",
    "already_completed",
    "already_finished",
};

std::uint64_t mix(std::uint64_t x) {
  // splitmix64's finalizer: every input bit changes about half the output bits.
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

std::string_view to_string(OrderResult result) {
  return name_of(order_result_names, result);
}

std::string_view to_string(OrderStatus status) {
  static constexpr std::array<std::string_view, 6> names = {
      "pending", "awaiting_payment", "completed", "failed", "expired", "cancelled"};
  return name_of(names, status);
}

std::string_view to_string(OrderStep step) {
  static constexpr std::array<std::string_view, 6> names = {
      "started", "reserved", "payment_created", "decided", "completed", "late_result"};
  return name_of(names, step);
}

std::string_view to_string(OrderFailure failure) {
  static constexpr std::array<std::string_view, 4> names = {
      "none", "reservation_refused", "payment_not_created", "payment_failed"};
  return name_of(names, failure);
}

std::string_view to_string(PaymentResultOutcome outcome) {
  static constexpr std::array<std::string_view, 5> names = {
      "applied", "replayed", "late", "provider_not_found", "payment_not_found"};
  return name_of(names, outcome);
}

std::string_view to_string(PaymentStatus status) {
  static constexpr std::array<std::string_view, 2> names = {"succeeded", "failed"};
  return name_of(names, status);
}

bool payment_status_from_string(std::string_view text, PaymentStatus* status) {
  for (const PaymentStatus s : {PaymentStatus::succeeded, PaymentStatus::failed}) {
    if (text == to_string(s)) {
      *status = s;
      return true;
    }
  }
  return false;
}

bool valid_payment_provider_name(std::string_view name) {
  return !name.empty() && name.size() <= payment_provider_name_bytes_max &&
         name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
}

bool simulated_payment_fails(std::uint64_t seed, double failure_rate, std::string_view payment_id) {
  std::uint64_t h = 0xCBF29CE484222325ULL;  // FNV-1a of the id, then mixed with the seed
  for (const char c : payment_id) {
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ULL;
  }
  const double u = static_cast<double>(mix(h ^ mix(seed)) >> 11) * 0x1.0p-53;
  return u < failure_rate;
}

}  // namespace pointex

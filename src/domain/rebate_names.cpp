// Names of the rebate enums, as they appear in the HTTP API and in logs.
#include <array>

#include "domain/enum_names.hpp"
#include "pointex/rebates.hpp"

namespace pointex {

using domain::name_of;
namespace {

constexpr std::array<std::string_view, rules_result_count> rules_result_names = {
    "ok",
    "ledger_not_found",
    "issuer_account_not_found",
    "issuer_account_invalid",
    "currency_invalid",
    "categories_invalid",
    "category_rate_invalid",
    "return_window_too_long",
    "campaigns_invalid",
    "expiry_account_not_found",
    "expiry_account_invalid",
};

constexpr std::array<std::string_view, purchase_result_count> purchase_result_names = {
    "ok",
    "exists",
    "exists_with_different_fields",
    "id_must_not_be_zero",
    "id_reserved",
    "amount_must_not_be_zero",
    "member_account_not_found",
    "rules_not_found",
    "currency_mismatch",
    "category_not_found",
    "purchase_not_found",
    "refund_exceeds_purchase",
    "too_many_refunds",
    "member_account_invalid",
};

constexpr std::array<std::string_view, 5> purchase_status_names = {
    "pending", "available", "refunded", "failed", "nothing_earned",
};

}  // namespace

std::string_view to_string(RulesResult result) {
  return name_of(rules_result_names, result);
}
std::string_view to_string(PurchaseResult result) {
  return name_of(purchase_result_names, result);
}
std::string_view to_string(PurchaseStatus status) {
  return name_of(purchase_status_names, status);
}

}  // namespace pointex

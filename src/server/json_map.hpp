#pragma once
/// The JSON side of the HTTP API: request bodies and queries checked and mapped to engine types,
/// engine types rendered as JSON. Pure functions: no sockets, no engine; unit-tested alone.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <pointex/engine.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace pointex::server {

/// Nesting of a request body beyond any endpoint's shape; deeper is 400 before parsing.
inline constexpr std::size_t json_depth_max = 8;

/// A rejected request: HTTP status, error code, human message and the field at fault (if any).
struct ApiError {
  int status = 400;
  std::string error;
  std::string message;
  std::string field;
};

/// `{"error":..,"message":..[,"field":..]}`.
std::string error_body(const ApiError& e);

/// Parses a body (syntax, nesting). 400 invalid_json on failure.
[[nodiscard]] bool parse_body(std::string_view body, nlohmann::json* out, ApiError* err);

/// POST /v1/ledgers.
[[nodiscard]] bool map_ledger(const nlohmann::json& j, Ledger* out, ApiError* err);
/// POST /v1/accounts: one object or an array of at most `items_max`.
[[nodiscard]] bool map_accounts(const nlohmann::json& j, std::size_t items_max,
                                std::vector<AccountSpec>* out, ApiError* err);
/// POST /v1/transfers: one object or an array of at most `items_max`.
[[nodiscard]] bool map_transfers(const nlohmann::json& j, std::size_t items_max,
                                 std::vector<Transfer>* out, ApiError* err);

/// POST /v1/transfers from the raw body: the same as parse_body then map_transfers, in one
/// pass that builds no JSON tree for a plainly valid body (the common case). Any body that
/// pass does not accept goes through parse_body and map_transfers, so the answer, errors
/// included, is always theirs.
[[nodiscard]] bool parse_transfers(std::string_view body, std::size_t items_max,
                                   std::vector<Transfer>* out, ApiError* err);

/// PUT /v1/rates/{from}/{to}: the body (the ledgers come from the path).
[[nodiscard]] bool map_rate(const nlohmann::json& j, Rate* out, ApiError* err);
/// POST /v1/exchanges.
[[nodiscard]] bool map_exchange(const nlohmann::json& j, Exchange* out, ApiError* err);

/// POST /v1/orders: `{"id","member_account","merchant_account","points","cash":{"amount",
/// "currency"},"timeout_s","provider"}` (cash, timeout_s and provider optional).
[[nodiscard]] bool map_order(const nlohmann::json& j, Order* out, ApiError* err);
/// PUT /v1/ledgers/{id}/rules: the body (the ledger comes from the path). `categories`
/// `[{"category","rate_bps"}]` and `issuer_account` required; `campaigns`
/// `[{"starts_at","ends_at","multiplier_bps","categories"}]` optional.
[[nodiscard]] bool map_rules(const nlohmann::json& j, EarningRules* out, ApiError* err);
/// POST /v1/purchases: `{"id","member_account","amount","currency","category"}`.
[[nodiscard]] bool map_purchase(const nlohmann::json& j, Purchase* out, ApiError* err);
/// POST /v1/purchases/{id}/refund: `{"id","amount"}` (the purchase comes from the path).
[[nodiscard]] bool map_refund(const nlohmann::json& j, Refund* out, ApiError* err);
/// POST /v1/checked-transfers: `{"transfer":{a pending transfer},"url","check_after_s",
/// "checks_max"}` (check_after_s and checks_max optional).
[[nodiscard]] bool map_checked_transfer(const nlohmann::json& j, CheckedTransfer* out,
                                        ApiError* err);
/// POST /v1/checked-transfers/{id}/resolve: `{"note"}`.
[[nodiscard]] bool map_check_back_note(const nlohmann::json& j, std::string* note, ApiError* err);
/// POST /v1/payments/{provider}/callback: `{"payment_id","status":"succeeded"|"failed"}`.
[[nodiscard]] bool map_payment_result(const nlohmann::json& j, std::string* payment_id,
                                      PaymentStatus* status, ApiError* err);

/// The query string as name -> value (no percent-decoding: every value the API takes is a
/// number or a cursor). A name not in `allowed`, or given twice, is 400.
[[nodiscard]] bool parse_query(std::string_view query, std::initializer_list<const char*> allowed,
                               std::map<std::string, std::string>* out, ApiError* err);
/// An unsigned decimal query value in [min, max]; absent leaves `*out` as is.
[[nodiscard]] bool query_uint(const std::map<std::string, std::string>& q, const char* name,
                              std::uint64_t min, std::uint64_t max, std::uint64_t* out,
                              ApiError* err);
/// A path segment of decimal digits as u64 (false if not digits or too large).
[[nodiscard]] bool parse_id(std::string_view s, std::uint64_t* out);

nlohmann::json ledger_json(const Ledger& l);
nlohmann::json account_json(const Account& a);
nlohmann::json transfer_json(const TransferInfo& t);
/// An account's history entry: the transfer, its state, and what this event was.
nlohmann::json history_transfer_json(const AccountEvent& e);
nlohmann::json history_balance_json(const AccountEvent& e);
nlohmann::json event_json(const FeedEvent& e);
nlohmann::json account_flags_json(std::uint32_t flags);
nlohmann::json rate_json(const Rate& r);
/// An exchange's answer: id, result, amounts; the failing leg when result is leg_failed.
nlohmann::json exchange_outcome_json(ExchangeId id, const ExchangeOutcome& o);
nlohmann::json exchange_info_json(const ExchangeInfo& x);
/// An order: its request, state, payment, failure, steps and their times (docs/workflows.md).
nlohmann::json order_json(const OrderInfo& o);
nlohmann::json rules_json(const EarningRules& r);
/// A check-back case: its transfer, URL, status, checks, note.
nlohmann::json check_back_json(const CheckBackInfo& c);
/// A purchase: its request, what it earns, its refunds and clawbacks (docs/workflows.md).
nlohmann::json purchase_json(const PurchaseInfo& p);

/// POST /v1/subscriptions: `{"url","events":[types],"secret"?}` (docs/webhooks.md). The url
/// must be http://host[:port][/path]; events non-empty, each a feed event type (repeats are
/// one); secret 16 to webhook_secret_bytes_max bytes, or absent (`*secret_given` false: the
/// caller generates one). `out->ledgers` is left to the caller (the key's scope).
[[nodiscard]] bool map_subscription(const nlohmann::json& j, WebhookSpec* out, bool* secret_given,
                                    ApiError* err);
/// A subscription; its secret only when `with_secret` (the answer to its creation).
nlohmann::json subscription_json(const Webhook& w, bool with_secret);
nlohmann::json dead_letter_json(const DeadLetter& d);

}  // namespace pointex::server

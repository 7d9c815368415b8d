// Names of the public enums, as they appear in the HTTP API and in logs.
#include <array>

#include "pointex/status.hpp"
#include "pointex/types.hpp"

namespace pointex {
namespace {

constexpr std::array<std::string_view, transfer_result_count> transfer_result_names = {
    "ok",
    "exists",
    "exists_with_different_fields",
    "id_must_not_be_zero",
    "amount_must_not_be_zero",
    "accounts_must_be_different",
    "debit_account_not_found",
    "credit_account_not_found",
    "ledger_mismatch",
    "exceeds_credits",
    "exceeds_debits",
    "account_closed",
    "pending_transfer_not_found",
    "pending_transfer_already_posted",
    "pending_transfer_already_voided",
    "pending_transfer_expired",
    "exceeds_pending_amount",
    "pending_transfer_has_different_fields",
    "not_a_pending_transfer",
    "overflow",
    "flags_are_mutually_exclusive",
    "pending_id_must_not_be_zero",
    "pending_id_must_be_zero",
    "pending_id_must_be_different",
    "timeout_reserved_for_pending_transfer",
    "code_must_not_be_zero",
    "ledger_must_not_be_zero",
    "credit_account_must_not_be_zero",
    "debit_account_must_not_be_zero",
    "unknown_flags",
    "code_reserved",
    "id_reserved",
};

constexpr std::array<std::string_view, rate_result_count> rate_result_names = {
    "ok",
    "from_ledger_not_found",
    "to_ledger_not_found",
    "ledgers_must_be_different",
    "numerator_must_not_be_zero",
    "denominator_must_not_be_zero",
    "fee_bps_too_high",
    "from_exchange_account_not_found",
    "to_exchange_account_not_found",
    "from_exchange_account_ledger_mismatch",
    "to_exchange_account_ledger_mismatch",
};

constexpr std::array<std::string_view, exchange_result_count> exchange_result_names = {
    "ok",
    "exists",
    "exists_with_different_fields",
    "id_must_not_be_zero",
    "amount_must_not_be_zero",
    "accounts_must_be_different",
    "from_account_not_found",
    "to_account_not_found",
    "rate_not_found",
    "amount_too_small",
    "member_daily_cap_exceeded",
    "pair_daily_cap_exceeded",
    "overflow",
    "id_reserved",
    "leg_failed",
    "interrupted",
};

constexpr std::array<std::string_view, account_result_count> account_result_names = {
    "ok",
    "exists",
    "exists_with_different_fields",
    "id_must_not_be_zero",
    "ledger_not_found",
    "flags_are_mutually_exclusive",
    "owner_too_long",
    "flags_invalid",
};

}  // namespace

std::string_view to_string(TransferResult result) {
  const auto i = static_cast<std::size_t>(result);
  return i < transfer_result_names.size() ? transfer_result_names[i] : "unknown";
}

std::optional<TransferResult> transfer_result_from_string(std::string_view name) {
  for (std::size_t i = 0; i < transfer_result_names.size(); ++i) {
    if (transfer_result_names[i] == name) return static_cast<TransferResult>(i);
  }
  return std::nullopt;
}

std::string_view to_string(RateResult result) {
  const auto i = static_cast<std::size_t>(result);
  return i < rate_result_names.size() ? rate_result_names[i] : "unknown";
}

std::string_view to_string(ExchangeResult result) {
  const auto i = static_cast<std::size_t>(result);
  return i < exchange_result_names.size() ? exchange_result_names[i] : "unknown";
}

std::string_view to_string(ExchangeStep step) {
  switch (step) {
    case ExchangeStep::started:
      return "started";
    case ExchangeStep::decided:
      return "decided";
    case ExchangeStep::completed:
      return "completed";
  }
  return "unknown";
}

std::string_view to_string(AccountResult result) {
  const auto i = static_cast<std::size_t>(result);
  return i < account_result_names.size() ? account_result_names[i] : "unknown";
}

std::string_view to_string(LedgerResult result) {
  switch (result) {
    case LedgerResult::ok:
      return "ok";
    case LedgerResult::exists:
      return "exists";
    case LedgerResult::exists_with_different_fields:
      return "exists_with_different_fields";
    case LedgerResult::id_must_not_be_zero:
      return "id_must_not_be_zero";
    case LedgerResult::code_invalid:
      return "code_invalid";
    case LedgerResult::name_too_long:
      return "name_too_long";
    case LedgerResult::code_taken:
      return "code_taken";
  }
  return "unknown";
}

std::string_view to_string(CloseResult result) {
  switch (result) {
    case CloseResult::ok:
      return "ok";
    case CloseResult::account_not_found:
      return "account_not_found";
    case CloseResult::account_not_empty:
      return "account_not_empty";
  }
  return "unknown";
}

std::string_view to_string(AccountKind kind) {
  switch (kind) {
    case AccountKind::member:
      return "member";
    case AccountKind::issuer:
      return "issuer";
    case AccountKind::system:
      return "system";
  }
  return "unknown";
}

std::optional<AccountKind> account_kind_from_string(std::string_view name) {
  if (name == "member") return AccountKind::member;
  if (name == "issuer") return AccountKind::issuer;
  if (name == "system") return AccountKind::system;
  return std::nullopt;
}

std::string_view to_string(TransferState state) {
  switch (state) {
    case TransferState::pending:
      return "pending";
    case TransferState::posted:
      return "posted";
    case TransferState::voided:
      return "voided";
    case TransferState::expired:
      return "expired";
  }
  return "unknown";
}

std::string_view to_string(TransferKind kind) {
  switch (kind) {
    case TransferKind::single:
      return "single";
    case TransferKind::pending:
      return "pending";
    case TransferKind::post:
      return "post";
    case TransferKind::void_pending:
      return "void";
    case TransferKind::expire:
      return "expire";
  }
  return "unknown";
}

std::string_view to_string(FeedEvent::Type type) {
  switch (type) {
    case FeedEvent::Type::ledger_created:
      return "ledger_created";
    case FeedEvent::Type::account_created:
      return "account_created";
    case FeedEvent::Type::account_closed:
      return "account_closed";
    case FeedEvent::Type::transfer:
      return "transfer";
  }
  return "unknown";
}

std::string Status::to_string() const {
  static constexpr std::array<std::string_view, 7> names = {
      "ok",         "invalid_argument", "overloaded", "io_error",
      "corruption", "shutting_down",    "timed_out"};
  std::string s(names[static_cast<std::size_t>(code_)]);
  if (!message_.empty()) s += ": " + message_;
  return s;
}

}  // namespace pointex

#include "domain/codec.hpp"

#include "domain/rebate.hpp"
#include "domain/varint.hpp"
#include "domain/webhook.hpp"

namespace pointex::domain {
namespace {

constexpr std::uint8_t resolved_differs = 1;

void encode(const LedgerCreated& e, std::string& out) {
  put_u8(out, static_cast<std::uint8_t>(EventType::ledger_created));
  put_u8(out, ledger_created_version);
  put_varint(out, e.ledger.timestamp);
  put_varint(out, e.ledger.id);
  put_bytes(out, e.ledger.code);
  put_bytes(out, e.ledger.name);
  put_varint(out, e.ledger.expiry_days);
}

void encode(const AccountCreated& e, std::string& out) {
  put_u8(out, static_cast<std::uint8_t>(EventType::account_created));
  put_u8(out, account_created_version);
  put_varint(out, e.timestamp);
  put_varint(out, e.spec.id);
  put_varint(out, e.spec.ledger);
  put_u8(out, static_cast<std::uint8_t>(e.spec.kind));
  put_varint(out, e.spec.flags);
  put_varint(out, e.spec.user_data);
  put_bytes(out, e.spec.owner);
}

void encode(const AccountClosed& e, std::string& out) {
  put_u8(out, static_cast<std::uint8_t>(EventType::account_closed));
  put_u8(out, account_closed_version);
  put_varint(out, e.timestamp);
  put_varint(out, e.id);
}

bool resolved_equals_request(const TransferEvent& e) {
  const Transfer& r = e.request;
  return e.debit_account == r.debit_account && e.credit_account == r.credit_account &&
         e.ledger == r.ledger && e.code == r.code && e.amount == r.amount;
}

void encode(const TransferEvent& e, std::string& out) {
  put_u8(out, static_cast<std::uint8_t>(EventType::transfer));
  put_u8(out, transfer_version);
  put_varint(out, e.timestamp);
  put_u8(out, static_cast<std::uint8_t>(e.kind));
  put_transfer_request(out, e.request);
  const bool differs = !resolved_equals_request(e);
  put_u8(out, differs ? resolved_differs : 0);
  if (differs) {
    put_varint(out, e.debit_account);
    put_varint(out, e.credit_account);
    put_varint(out, e.ledger);
    put_varint(out, e.code);
    put_varint(out, e.amount);
  }
  put_varint(out, e.pending_amount);
  put_varint(out, e.expires_at);
}

void encode(const RulesSet& e, std::string& out) {
  put_u8(out, static_cast<std::uint8_t>(EventType::rules_set));
  put_u8(out, rules_set_version);
  put_bytes(out, encode_rules(e.rules));
}

void encode(const RateSet& e, std::string& out) {
  const Rate& r = e.rate;
  put_u8(out, static_cast<std::uint8_t>(EventType::rate_set));
  put_u8(out, rate_set_version);
  for (std::uint64_t x : {r.timestamp, r.from_ledger, r.to_ledger, r.numerator, r.denominator,
                          std::uint64_t{r.fee_bps}, r.member_daily_cap, r.pair_daily_cap,
                          r.from_exchange_account, r.to_exchange_account}) {
    put_varint(out, x);
  }
}

void encode(const ProcessStepped& e, std::string& out) {
  put_u8(out, static_cast<std::uint8_t>(EventType::process_stepped));
  put_u8(out, process_stepped_version);
  put_varint(out, e.timestamp);
  put_u8(out, static_cast<std::uint8_t>(e.kind));
  put_varint(out, e.id);
  put_u8(out, e.step);
  put_bytes(out, e.data);
}

void encode(const WebhookCreated& e, std::string& out) {
  put_u8(out, static_cast<std::uint8_t>(EventType::webhook_created));
  put_u8(out, webhook_created_version);
  put_varint(out, e.timestamp);
  put_webhook_spec(out, e.spec);
}

void encode(const WebhookDeleted& e, std::string& out) {
  put_u8(out, static_cast<std::uint8_t>(EventType::webhook_deleted));
  put_u8(out, webhook_deleted_version);
  put_varint(out, e.timestamp);
  put_varint(out, e.id);
}

void encode(const WebhookProgressed& e, std::string& out) {
  const WebhookProgress& p = e.progress;
  put_u8(out, static_cast<std::uint8_t>(EventType::webhook_progressed));
  put_u8(out, webhook_progressed_version);
  put_varint(out, e.timestamp);
  put_varint(out, p.id);
  put_varint(out, p.cursor);
  put_varint(out, p.dead_lettered.size());
  for (const DeadLetter& d : p.dead_lettered) put_dead_letter(out, d);
  put_varint(out, p.redelivered.size());
  for (std::uint64_t position : p.redelivered) put_varint(out, position);
}

DecodeError decode_ledger_created(Reader& in, std::uint8_t version, Event* out) {
  if (version != 1) return DecodeError::unknown_version;
  LedgerCreated e;
  e.ledger.timestamp = in.varint();
  e.ledger.id = in.varint();
  e.ledger.code = in.bytes(ledger_code_bytes_max);
  e.ledger.name = in.bytes(ledger_name_bytes_max);
  e.ledger.expiry_days = in.bounded<std::uint32_t>(UINT32_MAX);
  *out = std::move(e);
  return in.finish();
}

DecodeError decode_account_created(Reader& in, std::uint8_t version, Event* out) {
  if (version != 1) return DecodeError::unknown_version;
  AccountCreated e;
  e.timestamp = in.varint();
  e.spec.id = in.varint();
  e.spec.ledger = in.varint();
  const std::uint8_t kind = in.u8();
  if (kind > static_cast<std::uint8_t>(AccountKind::system)) in.fail(DecodeError::invalid_field);
  e.spec.kind = static_cast<AccountKind>(kind);
  e.spec.flags = in.bounded<std::uint32_t>(account_flags::all);
  e.spec.user_data = in.varint();
  e.spec.owner = in.bytes(owner_bytes_max);
  *out = std::move(e);
  return in.finish();
}

DecodeError decode_account_closed(Reader& in, std::uint8_t version, Event* out) {
  if (version != 1) return DecodeError::unknown_version;
  AccountClosed e;
  e.timestamp = in.varint();
  e.id = in.varint();
  *out = e;
  return in.finish();
}

DecodeError decode_transfer(Reader& in, std::uint8_t version, Event* out) {
  if (version != 1) return DecodeError::unknown_version;
  TransferEvent e;
  e.timestamp = in.varint();
  const std::uint8_t kind = in.u8();
  if (kind > static_cast<std::uint8_t>(TransferKind::expire)) in.fail(DecodeError::invalid_field);
  e.kind = static_cast<TransferKind>(kind);
  e.request = read_transfer_request(in);
  const Transfer& r = e.request;
  const std::uint8_t differs = in.u8();
  if (differs > resolved_differs) in.fail(DecodeError::invalid_field);
  if (differs != 0) {
    e.debit_account = in.varint();
    e.credit_account = in.varint();
    e.ledger = in.varint();
    e.code = in.bounded<std::uint16_t>(UINT16_MAX);
    e.amount = in.varint();
  } else {
    e.debit_account = r.debit_account;
    e.credit_account = r.credit_account;
    e.ledger = r.ledger;
    e.code = r.code;
    e.amount = r.amount;
  }
  e.pending_amount = in.varint();
  e.expires_at = in.varint();
  *out = e;
  return in.finish();
}

DecodeError decode_rate_set(Reader& in, std::uint8_t version, Event* out) {
  if (version != 1) return DecodeError::unknown_version;
  RateSet e;
  Rate& r = e.rate;
  r.timestamp = in.varint();
  r.from_ledger = in.varint();
  r.to_ledger = in.varint();
  r.numerator = in.varint();
  r.denominator = in.varint();
  r.fee_bps = in.bounded<std::uint32_t>(UINT32_MAX);
  r.member_daily_cap = in.varint();
  r.pair_daily_cap = in.varint();
  r.from_exchange_account = in.varint();
  r.to_exchange_account = in.varint();
  *out = e;
  return in.finish();
}

DecodeError decode_rules_set(Reader& in, std::uint8_t version, Event* out) {
  if (version != 1) return DecodeError::unknown_version;
  const std::string data = in.bytes(process_data_bytes_max * 16);
  const DecodeError err = in.finish();
  if (err != DecodeError::none) return err;
  RulesSet e;
  const DecodeError rules = decode_rules(data, &e.rules);
  if (rules != DecodeError::none) return rules;
  *out = std::move(e);
  return DecodeError::none;
}

DecodeError decode_process_stepped(Reader& in, std::uint8_t version, Event* out) {
  if (version != 1) return DecodeError::unknown_version;
  ProcessStepped e;
  e.timestamp = in.varint();
  const std::uint8_t kind = in.u8();
  if (!process_kind_known(kind)) in.fail(DecodeError::invalid_field);
  e.kind = static_cast<ProcessKind>(kind);
  e.id = in.varint();
  e.step = in.u8();
  e.data = in.bytes(process_data_bytes_max);
  *out = std::move(e);
  return in.finish();
}

DecodeError decode_webhook_created(Reader& in, std::uint8_t version, Event* out) {
  if (version != 1) return DecodeError::unknown_version;
  WebhookCreated e;
  e.timestamp = in.varint();
  e.spec = read_webhook_spec(in);
  *out = std::move(e);
  return in.finish();
}

DecodeError decode_webhook_deleted(Reader& in, std::uint8_t version, Event* out) {
  if (version != 1) return DecodeError::unknown_version;
  WebhookDeleted e;
  e.timestamp = in.varint();
  e.id = in.varint();
  *out = e;
  return in.finish();
}

DecodeError decode_webhook_progressed(Reader& in, std::uint8_t version, Event* out) {
  if (version != 1) return DecodeError::unknown_version;
  WebhookProgressed e;
  WebhookProgress& p = e.progress;
  e.timestamp = in.varint();
  p.id = in.varint();
  p.cursor = in.varint();
  auto n = in.bounded<std::size_t>(webhook_progress_entries_max);
  for (std::size_t i = 0; i < n && in.error() == DecodeError::none; ++i) {
    p.dead_lettered.push_back(read_dead_letter(in));
  }
  n = in.bounded<std::size_t>(webhook_progress_entries_max);
  for (std::size_t i = 0; i < n && in.error() == DecodeError::none; ++i) {
    p.redelivered.push_back(in.varint());
  }
  *out = std::move(e);
  return in.finish();
}

}  // namespace

void encode_event(const Event& event, std::string& out) {
  std::visit([&out](const auto& e) { encode(e, out); }, event);
}

DecodeError decode_event(std::string_view bytes, Event* event) {
  Reader in(bytes);
  const std::uint8_t type = in.u8();
  const std::uint8_t version = in.u8();
  if (in.error() != DecodeError::none) return in.error();
  switch (static_cast<EventType>(type)) {
    case EventType::ledger_created:
      return decode_ledger_created(in, version, event);
    case EventType::account_created:
      return decode_account_created(in, version, event);
    case EventType::account_closed:
      return decode_account_closed(in, version, event);
    case EventType::transfer:
      return decode_transfer(in, version, event);
    case EventType::rate_set:
      return decode_rate_set(in, version, event);
    case EventType::process_stepped:
      return decode_process_stepped(in, version, event);
    case EventType::webhook_created:
      return decode_webhook_created(in, version, event);
    case EventType::webhook_deleted:
      return decode_webhook_deleted(in, version, event);
    case EventType::webhook_progressed:
      return decode_webhook_progressed(in, version, event);
    case EventType::rules_set:
      return decode_rules_set(in, version, event);
  }
  return DecodeError::unknown_type;
}

std::string_view to_string(DecodeError error) {
  switch (error) {
    case DecodeError::none:
      return "none";
    case DecodeError::truncated:
      return "truncated";
    case DecodeError::trailing_bytes:
      return "trailing_bytes";
    case DecodeError::unknown_type:
      return "unknown_type";
    case DecodeError::unknown_version:
      return "unknown_version";
    case DecodeError::invalid_field:
      return "invalid_field";
  }
  return "unknown";
}

std::uint64_t event_timestamp(const Event& event) {
  return std::visit(
      [](const auto& e) -> std::uint64_t {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, LedgerCreated>) {
          return e.ledger.timestamp;
        } else if constexpr (std::is_same_v<T, RateSet>) {
          return e.rate.timestamp;
        } else if constexpr (std::is_same_v<T, RulesSet>) {
          return e.rules.timestamp;
        } else {
          return e.timestamp;
        }
      },
      event);
}

void set_event_timestamp(Event& event, std::uint64_t timestamp) {
  std::visit(
      [timestamp](auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, LedgerCreated>) {
          e.ledger.timestamp = timestamp;
        } else if constexpr (std::is_same_v<T, RateSet>) {
          e.rate.timestamp = timestamp;
        } else if constexpr (std::is_same_v<T, RulesSet>) {
          e.rules.timestamp = timestamp;
        } else {
          e.timestamp = timestamp;
        }
      },
      event);
}

}  // namespace pointex::domain

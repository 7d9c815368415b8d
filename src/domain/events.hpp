#pragma once
/// The events of the PointEx event log. Events are facts: they are never rejected when
/// applied. Business rejections are result codes and are never stored.

#include <cstdint>
#include <string>
#include <variant>

#include "pointex/rebates.hpp"
#include "pointex/types.hpp"
#include "pointex/webhooks.hpp"

namespace pointex::domain {

/// What a transfer event does to the two accounts' balances (public: include/pointex/types.hpp).
using TransferKind = pointex::TransferKind;

/// One committed transfer, written once to the log by the credit account's actor (the commit
/// point) and applied to both accounts.
struct TransferEvent {
  /// The transfer as submitted (for an expiry: id 0, debit_account and pending_id set, the
  /// rest zero).
  Transfer request;
  TransferKind kind = TransferKind::single;
  /// In memory only (not encoded; in the padding after `kind`): where the debit account put
  /// this event's record when it applied it (apply_debit), so that confirming it needs no
  /// lookup by id. A hint: 0 when unknown, and checked before use (the place changes when
  /// records are erased).
  std::uint32_t record_hint = 0;
  /// Resolved fields (for post/void/expire taken from the pending transfer).
  AccountId debit_account = 0;
  AccountId credit_account = 0;
  LedgerId ledger = 0;
  std::uint16_t code = 0;
  /// Moved amount: posted (single, post), reserved (pending) or released (void, expire).
  std::uint64_t amount = 0;
  /// post/void/expire: the pending transfer's full amount, released from pending.
  std::uint64_t pending_amount = 0;
  /// pending with a timeout: when it expires (Unix ns); else 0.
  std::uint64_t expires_at = 0;
  /// Assigned at commit; unique and increasing in log order.
  std::uint64_t timestamp = 0;

  /// Key of the pending transfer this event changes, or 0.
  TransferId pending_id() const { return request.pending_id; }
  bool is_two_phase_resolution() const {
    return kind == TransferKind::post || kind == TransferKind::void_pending ||
           kind == TransferKind::expire;
  }
};

struct LedgerCreated {
  Ledger ledger;  // ledger.timestamp is the event's timestamp
};

struct AccountCreated {
  AccountSpec spec;
  std::uint64_t timestamp = 0;
};

struct AccountClosed {
  AccountId id = 0;
  std::uint64_t timestamp = 0;
};

/// An exchange rate was set (or replaced) between two ledgers.
struct RateSet {
  Rate rate;  // rate.timestamp is the event's timestamp
};

/// A ledger's earning (rebate) rules were set (or replaced).
struct RulesSet {
  EarningRules rules;  // rules.timestamp is the event's timestamp
};

/// The kinds of durable processes (sagas, docs/workflows.md). Stable numbers: stored; 5 and up
/// are kept for workflows still to come.
enum class ProcessKind : std::uint8_t {
  exchange = 1,
  /// A points + cash order (src/domain/order.hpp).
  order = 2,
  /// A pending transfer with a check-back URL (src/domain/checkback.hpp).
  check_back = 3,
  /// A purchase's rebate (src/domain/rebate.hpp).
  rebate = 4,
};
/// Whether a stored kind byte names a kind this build knows.
inline bool process_kind_known(std::uint8_t kind) {
  return kind == static_cast<std::uint8_t>(ProcessKind::exchange) ||
         kind == static_cast<std::uint8_t>(ProcessKind::order) ||
         kind == static_cast<std::uint8_t>(ProcessKind::check_back) ||
         kind == static_cast<std::uint8_t>(ProcessKind::rebate);
}

/// One step of a durable process, generic over its kind: `data` is the kind's own encoding of
/// the step (src/domain/exchange.hpp for exchanges). A process is the fold of its steps.
struct ProcessStepped {
  ProcessKind kind = ProcessKind::exchange;
  std::uint64_t id = 0;
  std::uint8_t step = 0;
  std::string data;
  std::uint64_t timestamp = 0;
};

/// A webhook subscription was created; its id is this event's position (docs/webhooks.md).
struct WebhookCreated {
  WebhookSpec spec;
  std::uint64_t timestamp = 0;
};

/// A webhook subscription was deleted: nothing more is delivered to it.
struct WebhookDeleted {
  WebhookId id = 0;
  std::uint64_t timestamp = 0;
};

/// Delivery progress of a subscription: its new cursor, events dead-lettered, dead letters
/// redelivered. Recorded in batches by the delivery side (at-least-once: a crash before it
/// redelivers what came after the previous one).
struct WebhookProgressed {
  WebhookProgress progress;
  std::uint64_t timestamp = 0;
};

using Event =
    std::variant<LedgerCreated, AccountCreated, AccountClosed, TransferEvent, RateSet,
                 ProcessStepped, WebhookCreated, WebhookDeleted, WebhookProgressed, RulesSet>;

/// Whether an event is about webhook subscriptions (not in the feed).
inline bool is_webhook_event(const Event& event) {
  return std::holds_alternative<WebhookCreated>(event) ||
         std::holds_alternative<WebhookDeleted>(event) ||
         std::holds_alternative<WebhookProgressed>(event);
}

/// Whether the feed (subscriptions, read_events) carries this event: ledgers, accounts and
/// transfers do; rates, rules, process steps (the legs' transfers are) and webhook records are not.
inline bool in_feed(const Event& event) {
  return !std::holds_alternative<RateSet>(event) && !std::holds_alternative<RulesSet>(event) &&
         !std::holds_alternative<ProcessStepped>(event) && !is_webhook_event(event);
}

std::uint64_t event_timestamp(const Event& event);
void set_event_timestamp(Event& event, std::uint64_t timestamp);

}  // namespace pointex::domain

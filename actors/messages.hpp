#pragma once
/// Messages between the engine facade, account actors and the expiry actor. Batches travel as
/// batches: one message carries every item one actor gets from one step.

#include <caf/allowed_unsafe_message_type.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "domain/events.hpp"
#include "pointex/status.hpp"
#include "pointex/types.hpp"

namespace pointex::engine {
class TransferBatch;
struct AccountEntry;
}  // namespace pointex::engine

namespace pointex::actors {

/// A transfer routed to its debit account.
struct DebitItem {
  Transfer transfer;
  engine::TransferBatch* batch = nullptr;
  std::uint32_t index = 0;
  bool credit_closed = false;
  /// The credit account's directory entry when the transfer names it (null for a post or void
  /// that leaves it to the pending transfer). The item holds a pin on it.
  engine::AccountEntry* credit_entry = nullptr;
};
struct DebitBatch {
  std::vector<DebitItem> items;
};

/// A transfer accepted by its debit account, for its credit account to decide and commit.
/// `batch` is null for expiries (nobody waits for them).
struct CreditItem {
  domain::TransferEvent event;
  engine::TransferBatch* batch = nullptr;
  std::uint32_t index = 0;
};
struct CreditBatch {
  std::vector<CreditItem> items;
  /// The sender: where commits are acknowledged (its AckInbox) and refusals sent. The
  /// message holds a pin on it, which the credit actor hands on to its journal chunk.
  engine::AccountEntry* debit_entry = nullptr;
};

/// Credit account -> debit account: these were refused; undo them and answer.
struct Refusal {
  domain::TransferEvent event;
  TransferResult result = TransferResult::ok;
  engine::TransferBatch* batch = nullptr;
  std::uint32_t index = 0;
};
struct RefusalBatch {
  std::vector<Refusal> items;
};

/// Journal -> debit account: something arrived in your AckInbox while commands were parked.
struct Poke {};

/// Expiry actor -> debit account: these pending transfers' timeouts may have passed.
struct ExpireDue {
  std::vector<TransferId> pending_ids;
};
/// Account actor -> expiry actor: wake me for this pending transfer at `at_ns`.
struct ExpiryEntry {
  std::uint64_t at_ns = 0;
  AccountId account = 0;
  TransferId pending_id = 0;
};
struct ScheduleExpiry {
  std::vector<ExpiryEntry> entries;
};

struct CloseRequest {
  /// Called once the close is durable, or at once when refused (status ok both times), or
  /// with a failed status when the event log failed.
  std::function<void(const Status&, CloseResult, const Account&)> reply;
};
struct LookupAccount {
  std::function<void(const Account&)> reply;
};
struct LookupTransfer {
  TransferId id = 0;
  std::function<void(std::optional<TransferInfo>)> reply;
};
/// The event log failed: answer every parked command as failed.
struct FailParked {};
/// The sweeper: this account was idle. If nothing of it is in flight, stop: leave memory
/// altogether (`leave_memory`, when the read models include its last event) or leave the state
/// in the directory without an actor.
struct Passivate {
  bool leave_memory = false;
};

}  // namespace pointex::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::DebitBatch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::CreditBatch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::RefusalBatch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::Poke)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::ExpireDue)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::ScheduleExpiry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::CloseRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::LookupAccount)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::LookupTransfer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::FailParked)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pointex::actors::Passivate)

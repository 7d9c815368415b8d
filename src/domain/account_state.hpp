#pragma once
/// The state of one account, as its actor holds it: definition, balances, and the index of the
/// transfers it is the debit account of (transfer ids are unique per debit account).

#include <cstdint>
#include <unordered_map>

#include "domain/events.hpp"
#include "pointex/types.hpp"

namespace pointex::domain {

/// A transfer this account is the debit account of.
struct TransferRecord {
  TransferEvent event;
  TransferState state = TransferState::posted;
  std::uint64_t position = 0;
  /// False while the transfer is decided but not yet durable (its outcome may still change).
  bool committed = false;
  /// For a pending transfer: the id of an in-flight post or void changing it (or, for an
  /// expiry, the pending transfer's own id); 0 when none. Commands on it wait meanwhile.
  TransferId busy_with = 0;
};

struct AccountState {
  Account account;
  std::unordered_map<TransferId, TransferRecord> transfers;

  AccountId id() const { return account.spec.id; }
  bool closed() const { return account.closed(); }
  bool empty() const {
    return account.debits_posted == account.credits_posted && account.debits_pending == 0 &&
           account.credits_pending == 0;
  }
};

}  // namespace pointex::domain

#pragma once
/// The state of one account, as its actor holds it: definition, balances, and the index of the
/// transfers it is the debit account of (transfer ids are unique per debit account).

#include <cstdint>
#include <vector>

#include "domain/events.hpp"
#include "domain/id_map.hpp"
#include "pointex/types.hpp"

namespace pointex::domain {

/// A transfer this account is the debit account of.
struct TransferRecord {
  TransferEvent event;
  TransferState state = TransferState::posted;
  std::uint64_t position = 0;
  /// Position of the last committed event that changed the record (its own, or a post, void
  /// or expiry of it): once the read models include it, the record may leave memory.
  std::uint64_t changed_at = 0;
  /// False while the transfer is decided but not yet durable (its outcome may still change).
  bool committed = false;
  /// For a pending transfer: the id of an in-flight post or void changing it (or, for an
  /// expiry, the pending transfer's own id); 0 when none. Commands on it wait meanwhile.
  TransferId busy_with = 0;
};

/// An account's state. `transfers` holds every record when records_complete(); otherwise only
/// some (the others were evicted, or never loaded) and a record not in memory that may exist
/// (may_be_outside) is looked up in the read models, which then hold it with its current state
/// (see evictable()).
struct AccountState {
  Account account;
  IdMap<TransferRecord> transfers;
  /// Every transfer id of the account whose record is not in memory is at most this: 0 when
  /// memory holds them all (a new account, or one without debits in the read models), the
  /// largest id evicted once some were, UINT64_MAX when unknown (loaded from the read models
  /// with debits there). An id above it that is not in memory is new: no lookup. Clients that
  /// number an account's transfers in increasing order never pay for looking up a new id.
  TransferId outside_id_max = 0;
  /// Committed changes to records, oldest first: (id, changed_at). An entry whose record has
  /// changed since is stale and skipped. Eviction walks it from `changes_head`, so evicting
  /// costs O(1) per record however far the read models lag.
  struct Change {
    TransferId id;
    std::uint64_t at;
  };
  std::vector<Change> changes;
  std::size_t changes_head = 0;

  AccountId id() const { return account.spec.id; }
  bool records_complete() const { return outside_id_max == 0; }
  /// Whether a record of `id` may exist outside memory (in the read models).
  bool may_be_outside(TransferId id) const {
    return id != 0 && id <= outside_id_max && transfers.count(id) == 0;
  }
  bool closed() const { return account.closed(); }
  bool empty() const {
    return account.debits_posted == account.credits_posted && account.debits_pending == 0 &&
           account.credits_pending == 0;
  }
};

}  // namespace pointex::domain

// Recovery: from the read models' checkpoint, replays the tail of the event log into ledgers,
// the account directory and account states.

#include "engine/recovery.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "domain/assert.hpp"
#include "domain/codec.hpp"
#include "domain/decide.hpp"
#include "engine/account_loader.hpp"
#include "engine/log.hpp"
#include "engine/webhooks.hpp"
#include "engine/workflows.hpp"

namespace pointex::engine {
namespace {

/// Applies one recovered event to the in-memory state.
class Recovery {
 public:
  explicit Recovery(Engine::Impl& core) : core_(core) {}

  Status apply(std::uint64_t position, std::string_view bytes) {
    domain::Event event;
    const domain::DecodeError err = domain::decode_event(bytes, &event);
    if (err != domain::DecodeError::none) {
      return Status::corruption(
          "event at position " + std::to_string(position) + ": " +
          std::string(domain::to_string(err)) +
          (err == domain::DecodeError::unknown_version || err == domain::DecodeError::unknown_type
               ? " (written by a newer PointEx?)"
               : ""));
    }
    POINTEX_ASSERT(position > last_position);
    last_position = position;
    last_timestamp = std::max(last_timestamp, domain::event_timestamp(event));
    return std::visit([&](auto& e) { return apply_event(position, e); }, event);
  }

  /// The last event's timestamp alone (when there is no tail to replay).
  Status apply_timestamp_only(std::uint64_t position, std::string_view bytes) {
    domain::Event event;
    if (domain::decode_event(bytes, &event) != domain::DecodeError::none) {
      return at(position, "cannot be decoded");
    }
    last_timestamp = domain::event_timestamp(event);
    return Status::ok();
  }

  std::uint64_t last_position = 0;
  std::uint64_t last_timestamp = 0;

 private:
  Status apply_event(std::uint64_t, const domain::LedgerCreated& e) {
    std::lock_guard<std::mutex> lock(core_.ledgers_mutex);
    core_.ledgers[e.ledger.id] = e.ledger;
    core_.ledger_codes[e.ledger.code] = e.ledger.id;
    return Status::ok();
  }
  Status apply_event(std::uint64_t position, const domain::AccountCreated& e) {
    // Pair assertion: what was validated before it was written must still be valid.
    if (domain::validate_account(e.spec) != AccountResult::ok) {
      return at(position, "account definition fails validation");
    }
    if (core_.ledgers.count(e.spec.ledger) == 0) return at(position, "account of unknown ledger");
    engine::AccountEntry* existing = nullptr;
    Status s = core_.directory.lookup(e.spec.id, &existing);
    if (!s.is_ok()) return s;
    if (existing != nullptr) {
      existing->unpin();
      return at(position, "account " + std::to_string(e.spec.id) + " created twice");
    }
    auto state = std::make_unique<domain::AccountState>();
    state->account.spec = e.spec;
    state->account.timestamp = e.timestamp;
    bool inserted = false;
    engine::AccountEntry* entry = core_.directory.insert(std::move(state), &inserted);
    entry->committed_at(position);
    entry->unpin();
    core_.account_count.fetch_add(1);
    return Status::ok();
  }
  Status apply_event(std::uint64_t position, const domain::AccountClosed& e) {
    engine::AccountEntry* entry = nullptr;
    const Status s = core_.directory.lookup(e.id, &entry);
    if (!s.is_ok()) return s;
    if (entry == nullptr) return at(position, "closing unknown account");
    domain::apply_close(*entry->dormant);
    entry->closed.store(true);
    entry->committed_at(position);
    entry->unpin();
    return Status::ok();
  }
  Status apply_event(std::uint64_t position, const domain::TransferEvent& e) {
    if (e.kind != domain::TransferKind::expire &&
        domain::validate_transfer(e.request) != TransferResult::ok) {
      return at(position, "transfer fails validation");
    }
    engine::AccountEntry* debit = nullptr;
    engine::AccountEntry* credit = nullptr;
    Status s = core_.directory.lookup(e.debit_account, &debit);
    if (s.is_ok()) s = core_.directory.lookup(e.credit_account, &credit);
    // Recovery runs alone: nothing removes entries meanwhile, so the pins can go at once.
    if (debit != nullptr) debit->unpin();
    if (credit != nullptr) credit->unpin();
    if (!s.is_ok()) return s;
    if (debit == nullptr || credit == nullptr || debit == credit) {
      return at(position, "transfer names an unknown account");
    }
    if (debit->spec.ledger != e.ledger || credit->spec.ledger != e.ledger) {
      return at(position, "transfer across ledgers");
    }
    if (e.is_two_phase_resolution()) {
      s = load_records(*core_.read_model, *debit->dormant, {e.pending_id(), 0},
                       &core_.records_loaded);
      if (!s.is_ok()) return s;
      if (debit->dormant->transfers.count(e.pending_id()) == 0) {
        return at(position, "resolves a pending transfer that does not exist");
      }
    }
    domain::evolve(*debit->dormant, e, position);
    domain::evolve(*credit->dormant, e, position);
    debit->committed_at(position);
    credit->committed_at(position);
    return Status::ok();
  }
  Status apply_event(std::uint64_t position, const domain::RateSet& e) {
    const Status s = core_.workflows->recover(position, e);
    return s.is_ok() ? s : at(position, s.message());
  }
  Status apply_event(std::uint64_t position, const domain::RulesSet& e) {
    const Status s = core_.workflows->recover(position, e);
    return s.is_ok() ? s : at(position, s.message());
  }
  Status apply_event(std::uint64_t position, const domain::ProcessStepped& e) {
    const Status s = core_.workflows->recover(position, e);
    return s.is_ok() ? s : at(position, s.message());
  }
  Status apply_event(std::uint64_t position, const domain::WebhookCreated& e) {
    core_.webhooks->recover(position, domain::Event(e));
    return Status::ok();
  }
  Status apply_event(std::uint64_t position, const domain::WebhookDeleted& e) {
    core_.webhooks->recover(position, domain::Event(e));
    return Status::ok();
  }
  Status apply_event(std::uint64_t position, const domain::WebhookProgressed& e) {
    core_.webhooks->recover(position, domain::Event(e));
    return Status::ok();
  }
  static Status at(std::uint64_t position, const std::string& what) {
    return Status::corruption("event at position " + std::to_string(position) + ": " + what);
  }

  Engine::Impl& core_;
};

/// Loads every account the tail touches that exists at the checkpoint, in key order with
/// batched reads (one Get per account in event order made a 500k-event tail take seconds).
Status prefetch_tail_accounts(Engine::Impl& core, std::uint64_t checkpoint) {
  std::vector<AccountId> ids;
  std::unordered_set<AccountId> created;
  Status failure;
  const Status s = core.log->scan(checkpoint + 1, [&](std::uint64_t, std::string_view bytes) {
    domain::Event event;
    if (domain::decode_event(bytes, &event) != domain::DecodeError::none)
      return false;  // replay says where
    if (const auto* t = std::get_if<domain::TransferEvent>(&event)) {
      ids.push_back(t->debit_account);
      ids.push_back(t->credit_account);
    } else if (const auto* a = std::get_if<domain::AccountCreated>(&event)) {
      created.insert(a->spec.id);
    } else if (const auto* c = std::get_if<domain::AccountClosed>(&event)) {
      ids.push_back(c->id);
    }
    return true;
  });
  if (!s.is_ok()) return s;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  ids.erase(std::remove_if(ids.begin(), ids.end(), [&](AccountId id) { return created.count(id); }),
            ids.end());
  if (ids.empty()) return Status::ok();
  log().info("recovery: loading the {} accounts the log's tail touches", ids.size());
  return core.read_model->accounts(ids, [&](Account&& account, std::uint64_t debit_transfers) {
    auto state = std::make_unique<domain::AccountState>();
    state->account = std::move(account);
    state->account.expiring.clear();  // lots are the read models' (docs/expiry.md)
    state->outside_id_max = debit_transfers == 0 ? 0 : UINT64_MAX;
    bool inserted = false;
    core.directory.insert(std::move(state), &inserted)->unpin();
  });
}

}  // namespace

Status recover(Engine::Impl& core, std::uint64_t* next_position, std::uint64_t* last_timestamp) {
  const auto started = std::chrono::steady_clock::now();
  std::uint64_t total = 0;
  Status s = core.log->last_position(&total);
  if (!s.is_ok()) return s;
  std::uint64_t checkpoint = 0;
  s = core.read_model->checkpoint(&checkpoint);
  if (!s.is_ok()) return s;
  if (checkpoint > total) {
    // Only possible when a machine crash lost the end of an unsynced log (durability async):
    // the read models describe events that are gone, so they are rebuilt from the log.
    log().warn("read models are at position {}, the log ends at {}: rebuilding them", checkpoint,
               total);
    s = core.read_model->drop_all();
    if (!s.is_ok()) return s;
    checkpoint = 0;
  }
  std::vector<Ledger> ledgers;
  s = core.read_model->ledgers(&ledgers);
  if (!s.is_ok()) return s;
  for (const Ledger& l : ledgers) {
    core.ledgers[l.id] = l;
    core.ledger_codes[l.code] = l.id;
  }
  s = core.workflows->load(*core.read_model, core.now());  // rates, open processes, caps
  if (!s.is_ok()) return s;
  s = core.webhooks->load(*core.read_model);
  if (!s.is_ok()) return s;
  std::uint64_t accounts = 0;
  s = core.read_model->account_count(&accounts);
  if (!s.is_ok()) return s;
  core.account_count.store(accounts);
  const std::uint64_t tail = total - checkpoint;
  log().info("recovering {}: read models at position {}, replaying the log's {} events after it",
             core.options.data_dir, checkpoint, tail);
  s = prefetch_tail_accounts(core, checkpoint);
  if (!s.is_ok()) return s;
  Recovery recovery(core);
  recovery.last_position = checkpoint;
  Status failure;
  std::uint64_t count = 0;
  s = core.log->scan(checkpoint + 1, [&](std::uint64_t position, std::string_view bytes) {
    failure = recovery.apply(position, bytes);
    if (!failure.is_ok()) return false;
    if (++count % core.options.recovery_progress_events == 0) {
      log().info("recovery {}/{} events, position {}/{}", count, tail, position, total);
    }
    return true;
  });
  if (!s.is_ok()) return s;
  if (!failure.is_ok()) return failure;
  if (count == 0 && total > 0) {
    // Nothing after the checkpoint: the newest timestamp is the last event's.
    s = core.log->scan(total, [&](std::uint64_t position, std::string_view bytes) {
      failure = recovery.apply_timestamp_only(position, bytes);
      return false;
    });
    if (!s.is_ok()) return s;
    if (!failure.is_ok()) return failure;
  }
  core.recovered_events = count;
  core.recovery_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count());
  log().info(
      "recovered {} events after position {}: {} ledgers, {} accounts ({} in memory) in {} ms",
      count, checkpoint, core.ledgers.size(), core.account_count.load(), core.directory.size(),
      core.recovery_ms);
  *next_position = std::max(recovery.last_position, total) + 1;
  *last_timestamp = recovery.last_timestamp;
  return Status::ok();
}

}  // namespace pointex::engine

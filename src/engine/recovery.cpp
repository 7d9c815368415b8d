// Recovery: replays the event log into ledgers, the account directory and account states.

#include "engine/recovery.hpp"

#include <algorithm>
#include <chrono>

#include "domain/assert.hpp"
#include "domain/codec.hpp"
#include "domain/decide.hpp"
#include "engine/log.hpp"

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

  std::uint64_t last_position = 0;
  std::uint64_t last_timestamp = 0;

 private:
  Status apply_event(std::uint64_t, const domain::LedgerCreated& e) {
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
    auto state = std::make_unique<domain::AccountState>();
    state->account.spec = e.spec;
    state->account.timestamp = e.timestamp;
    bool inserted = false;
    core_.directory.insert(std::move(state), &inserted);
    if (!inserted) return at(position, "account " + std::to_string(e.spec.id) + " created twice");
    return Status::ok();
  }
  Status apply_event(std::uint64_t position, const domain::AccountClosed& e) {
    engine::AccountEntry* entry = core_.directory.find(e.id);
    if (entry == nullptr) return at(position, "closing unknown account");
    domain::apply_close(*entry->dormant);
    entry->closed.store(true);
    return Status::ok();
  }
  Status apply_event(std::uint64_t position, const domain::TransferEvent& e) {
    if (e.kind != domain::TransferKind::expire &&
        domain::validate_transfer(e.request) != TransferResult::ok) {
      return at(position, "transfer fails validation");
    }
    engine::AccountEntry* debit = core_.directory.find(e.debit_account);
    engine::AccountEntry* credit = core_.directory.find(e.credit_account);
    if (debit == nullptr || credit == nullptr || debit == credit) {
      return at(position, "transfer names an unknown account");
    }
    if (debit->spec.ledger != e.ledger || credit->spec.ledger != e.ledger) {
      return at(position, "transfer across ledgers");
    }
    domain::evolve(*debit->dormant, e, position);
    domain::evolve(*credit->dormant, e, position);
    return Status::ok();
  }
  static Status at(std::uint64_t position, const std::string& what) {
    return Status::corruption("event at position " + std::to_string(position) + ": " + what);
  }

  Engine::Impl& core_;
};

}  // namespace

Status recover(Engine::Impl& core, std::uint64_t* next_position, std::uint64_t* last_timestamp) {
  const auto started = std::chrono::steady_clock::now();
  std::uint64_t total = 0;
  Status s = core.log->last_position(&total);
  if (!s.is_ok()) return s;
  log().info("recovering from {} (log up to position {})", core.options.data_dir, total);
  Recovery recovery(core);
  Status failure;
  std::uint64_t count = 0;
  s = core.log->scan(1, [&](std::uint64_t position, std::string_view bytes) {
    failure = recovery.apply(position, bytes);
    if (!failure.is_ok()) return false;
    if (++count % core.options.recovery_progress_events == 0) {
      log().info("recovery {} events, position {}/{}", count, position, total);
    }
    return true;
  });
  if (!s.is_ok()) return s;
  if (!failure.is_ok()) return failure;
  core.recovered_events = count;
  core.recovery_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count());
  log().info("recovered {} events, {} ledgers, {} accounts in {} ms", count, core.ledgers.size(),
             core.directory.size(), core.recovery_ms);
  *next_position = recovery.last_position + 1;
  *last_timestamp = recovery.last_timestamp;
  return Status::ok();
}

}  // namespace pointex::engine

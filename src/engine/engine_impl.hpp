#pragma once
/// Engine::Impl: what the facade and the actors share. Private; includes CAF, so only the
/// engine's and actors' .cpp files include it.

#include <atomic>
#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/directory.hpp"
#include "engine/feed.hpp"
#include "engine/projector.hpp"
#include "engine/read_scheduler.hpp"
#include "pointex/engine.hpp"
#include "store/event_log.hpp"
#include "store/journal.hpp"
#include "store/read_model.hpp"

namespace pointex {
namespace engine {
class Workflows;
class Webhooks;
}  // namespace engine

struct Engine::Impl {
  EngineOptions options;
  std::unique_ptr<store::EventLog> log;
  std::unique_ptr<store::ReadModel> read_model;
  /// Asynchronous reads: run once the read models include their min_position. Declared before
  /// the projector, which calls it, so that it outlives the projector's thread.
  std::unique_ptr<engine::ReadScheduler> reads;
  std::unique_ptr<engine::Projector> projector;
  std::unique_ptr<engine::Feed> feed;
  std::unique_ptr<store::Journal> journal;
  engine::Directory directory;

  mutable std::mutex ledgers_mutex;
  std::map<LedgerId, Ledger> ledgers;
  std::unordered_map<std::string, LedgerId> ledger_codes;

  /// Serializes account creation (directory insert + append), which is off the hot path.
  std::mutex create_mutex;

  std::atomic<std::uint64_t> inflight{0};
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> live_actors{0};
  /// Accounts created, loaded or not.
  std::atomic<std::uint64_t> account_count{0};
  std::atomic<std::uint64_t> records_loaded{0};
  /// Transfer records each account keeps (domain::records_cap), set by the sweeper.
  std::atomic<std::uint32_t> records_cap{0};
  /// Credits committed through the credit fast path (EngineStats::direct_credits).
  std::atomic<std::uint64_t> direct_credits{0};
  /// Fault injection (tests/engine_test_access.hpp): a debit actor sleeps this long between
  /// appending fast credits and pushing them to their inboxes (the window a preemption opens).
  std::atomic<std::uint32_t> test_credit_push_delay_us{0};
  /// Fault injection: set_rate, set_rules and create_accounts sleep this long between appending
  /// and publishing.
  std::atomic<std::uint32_t> test_publish_delay_us{0};

  /// Passivation: a coarse clock (one tick per sweep interval) stamped into entries by their
  /// actors, and the sweeper thread that stops idle accounts (passivation.cpp).
  std::atomic<std::uint32_t> passivation_tick{1};
  std::atomic<std::uint64_t> passivated{0};
  std::mutex sweeper_mutex;
  std::condition_variable sweeper_wake;
  bool sweeper_stopping = false;
  std::thread sweeper;
  void start_sweeper();
  void stop_sweeper();
  /// One pass: asks idle accounts to leave memory (all that are idle past account_idle_s, and
  /// while over accounts_in_memory_max, any idle since the last tick).
  void sweep();

  std::uint64_t recovered_events = 0;
  std::uint64_t recovery_ms = 0;

  /// Durable processes: rates and exchanges (engine/workflows.hpp). Created before recovery,
  /// which replays their steps into it; started once the actors run.
  std::unique_ptr<engine::Workflows> workflows;
  /// Webhook subscriptions (engine/webhooks.hpp): created before recovery, which replays
  /// their events into it.
  std::unique_ptr<engine::Webhooks> webhooks;
  /// submit_transfers; `workflow`: submitted by the workflows (reserved ids and codes allowed,
  /// not bounded by inflight_transfers_max).
  void submit(std::vector<Transfer> transfers, TransferCallback callback, bool workflow,
              std::uint64_t lots_as_of = 0);
  /// lookup_transfer (blocking; it asks the debit account's actor).
  [[nodiscard]] Status lookup_transfer(AccountId debit_account, TransferId id,
                                       std::optional<TransferInfo>* transfer);

  caf::actor_system_config caf_config;
  std::unique_ptr<caf::actor_system> system;
  caf::actor expiry;

  std::uint64_t now() const { return options.clock_ns(); }

  /// The expiry sweep (expiry_sweep.cpp): ledgers already logged as skipped (no expiry
  /// account), so that each is logged once.
  std::mutex expiry_sweep_mutex;
  std::set<LedgerId> expiry_sweep_skipped;
  /// The expiry thread: sweeps every options.expiry_sweep_interval_s (none when 0).
  std::condition_variable expiry_sweep_wake;
  bool expiry_sweep_stopping = false;
  std::thread expiry_sweeper;
  Status sweep_expired_points(ExpirySweepReport* report);
  void start_expiry_sweeper();
  void stop_expiry_sweeper();

  /// Waits until the read models include `min_position` (bounded by read_wait_ms_max).
  Status wait_for_read_models(std::uint64_t min_position);

  /// The actor of an account, spawned from its dormant state on first use. REQUIRES: the
  /// caller holds a pin on `entry` until it has sent what it sends (the pin keeps the actor
  /// from stopping, so the reference stays valid; no copy: a handle copy is two atomic
  /// reference-count updates on a line every sender to that account shares).
  const caf::actor& actor_of(engine::AccountEntry& entry);
};

}  // namespace pointex

#pragma once
/// The projector: folds committed events into the read models (store/read_model.hpp).
///
/// The journal hands it every durable commit group as the bytes it wrote (no re-read of the
/// log). Its thread applies whatever has queued and writes the updates and the new checkpoint
/// in one atomic batch, so the read models are exactly the fold of the log up to the checkpoint.
/// At open it first catches up from the log from its checkpoint. Queries wait on the checkpoint
/// (wait_for) for read-your-writes.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "domain/events.hpp"
#include "domain/id_map.hpp"
#include "domain/process.hpp"
#include "domain/webhook.hpp"
#include "pointex/engine.hpp"
#include "pointex/status.hpp"
#include "store/event_log.hpp"
#include "store/read_model.hpp"

namespace pointex::engine {

class Feed;

/// One durable commit group, as encoded events.
struct CommittedGroup {
  std::uint64_t first_position = 0;
  std::string bytes;
  /// End offset of each event in `bytes`.
  std::vector<std::uint32_t> ends;
};

class Projector {
 public:
  /// Read models are written at least every this many updates (larger batches insert closer
  /// together in the memtables: 4x larger cut the rebuild CPU by 16%; and every flush writes
  /// each account it touched: 3x larger, 786k, took uniform from 0.95 to 0.59 account rows per
  /// transfer). Under light load the projector writes whenever it has caught up, sooner.
  static constexpr std::size_t flush_events_max = 786432;
  /// After this long without work the projector gives back its write buffers
  /// (store::ReadModel::Writer::trim).
  static constexpr std::chrono::milliseconds idle_trim_after{1000};

  Projector(store::ReadModel& read_model, const store::EventLog& log);
  ~Projector();

  /// Reads the read models' checkpoint (what queries see until the projector moves on).
  [[nodiscard]] Status load();
  /// Brings the read models from their checkpoint up to the end of the log.
  [[nodiscard]] Status catch_up(std::uint64_t progress_every);
  /// Live events go to `feed` (when it has subscribers) once the read models include them.
  void set_feed(Feed* feed) { feed_ = feed; }
  /// Called after each published checkpoint and after a failure, on the thread that published
  /// (asynchronous reads wait on it: engine/read_scheduler.hpp). Set before start(); cheap.
  void set_on_progress(std::function<void()> hook) { on_progress_ = std::move(hook); }
  /// Starts the thread: it catches up from the log, then applies submitted groups.
  void start(std::uint64_t progress_every);
  /// Called on the journal's writer thread, in position order.
  void submit(CommittedGroup group);
  /// Finishes the catch-up, applies what is queued, then stops the thread (a clean close
  /// leaves the read models at the end of the log, so the next open replays nothing).
  void stop();

  std::uint64_t checkpoint() const { return checkpoint_.load(std::memory_order_acquire); }
  /// Waits until the checkpoint reaches `position`; false on timeout or failure.
  bool wait_for(std::uint64_t position, std::chrono::milliseconds timeout);
  /// Not ok once a read-model write failed (the projector then stops).
  Status failure() const;

 private:
  struct Cached {
    Account account;
    std::uint64_t last_position = 0;
    std::uint64_t debit_transfers = 0;
    /// domain::account_lot_expiry_ns of the account (0: it has no lots).
    std::uint64_t lot_expiry_ns = 0;
    bool dirty = false;
  };
  struct StatsKey {
    LedgerId ledger;
    std::uint32_t day;
    bool operator==(const StatsKey& o) const { return ledger == o.ledger && day == o.day; }
  };
  struct TransferKey {
    AccountId debit;
    TransferId id;
    bool operator==(const TransferKey& o) const { return debit == o.debit && id == o.id; }
  };
  struct TransferKeyHash {
    std::size_t operator()(const TransferKey& k) const {
      return (k.debit * 0x9E3779B97F4A7C15ULL) ^ k.id;
    }
  };
  struct StatsKeyHash {
    std::size_t operator()(const StatsKey& k) const { return k.ledger * 1000003ULL ^ k.day; }
  };

  void run();
  /// Stops projecting after a failure (queries see it through failure()).
  void fail(const Status& status);
  [[nodiscard]] Status apply_group(const CommittedGroup& group);
  [[nodiscard]] Status apply(std::uint64_t position, std::string_view bytes);
  [[nodiscard]] Status apply_event(std::uint64_t position, const domain::Event& event);
  [[nodiscard]] Status apply_transfer(std::uint64_t position, const domain::TransferEvent& e);
  /// A process step: its record, the open-process index and its counters
  /// (projector_workflows.cpp).
  [[nodiscard]] Status apply_process_step(std::uint64_t position, const domain::ProcessStepped& e);
  /// A webhook event: the subscription's record (projector_webhooks.cpp).
  [[nodiscard]] Status apply_webhook(std::uint64_t position, const domain::Event& e);
  /// Writes the counters changed since the last flush (part of flush()).
  void flush_processes();
  [[nodiscard]] Status account(AccountId id, Cached** out);
  /// Brings the cached accounts `events` touch into the cache (apply_group's window).
  void prefetch_accounts(const std::vector<domain::Event>& events, std::size_t n);
  /// The lot expiry duration of an account (its ledger must be known).
  std::uint64_t lot_expiry_ns(const AccountSpec& spec) const;
  void mark_dirty(AccountId id, Cached& c);
  AccountBalances balances_of(AccountId id) const;
  [[nodiscard]] Status day_stats(LedgerId ledger, std::uint32_t day, store::DayStats** out);
  [[nodiscard]] Status find_transfer(AccountId debit, TransferId id, TransferInfo* out);
  void count_stats(const domain::TransferEvent& e, const Account& debit, const Account& credit,
                   store::DayStats& s);
  [[nodiscard]] Status flush();
  /// Flushes, then makes the new checkpoint and its feed events visible.
  [[nodiscard]] Status flush_and_publish();
  void publish(std::uint64_t position);

  store::ReadModel& read_model_;
  const store::EventLog& log_;
  Feed* feed_ = nullptr;
  std::function<void()> on_progress_;
  /// Feed events of the unflushed batch, published after the flush.
  std::vector<FeedEvent> feed_events_;

  // Projection state (projector thread only).
  /// Flat (two lookups per transfer): a load may move the others, so no pointer into it is held
  /// across account().
  domain::IdMap<Cached> accounts_;
  /// apply_group's window of decoded events and the ids to prefetch (reused).
  std::vector<domain::Event> window_;
  std::vector<AccountId> window_ids_;
  std::vector<domain::IdMap<Cached>::iterator> window_found_;
  /// Every ledger's expiry_days (ledgers are few and immutable): for the accounts' lots.
  std::unordered_map<LedgerId, Ledger> ledgers_;
  std::vector<AccountId> dirty_accounts_;
  std::unordered_map<StatsKey, store::DayStats, StatsKeyHash> stats_;
  std::unordered_set<StatsKey, StatsKeyHash> dirty_stats_;
  std::unordered_map<LedgerId, std::int64_t> outstanding_;
  /// Pending transfers written in the current, unflushed batch (not yet readable from
  /// RocksDB), and the ones it resolved.
  std::unordered_map<TransferKey, TransferInfo, TransferKeyHash> unflushed_transfers_;
  /// Process records of the unflushed batch (not yet readable from RocksDB), and counters read
  /// or changed (the changed ones are written at the flush).
  std::map<std::pair<domain::ProcessKind, std::uint64_t>, domain::ProcessRecord>
      unflushed_processes_;
  domain::CounterTable counters_;
  /// The days whose counters are kept (advanced by every process step).
  domain::CounterWindow counter_window_;
  std::vector<domain::CounterKey> dirty_counters_;
  /// Webhook subscriptions, read from the read models at the first webhook event (a few:
  /// bounded by EngineOptions::webhooks_max), then kept here.
  domain::WebhookTable webhooks_;
  bool webhooks_loaded_ = false;
  std::unique_ptr<store::ReadModel::Writer> writer_;
  std::uint64_t applied_position_ = 0;
  std::uint64_t account_count_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable progressed_;
  std::deque<CommittedGroup> queue_;
  bool stopping_ = false;
  Status failure_;
  std::atomic<std::uint64_t> checkpoint_{0};
  std::thread thread_;
};

}  // namespace pointex::engine

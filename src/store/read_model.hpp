#pragma once
/// The read models: what the projector derives from committed events, for queries.
///
/// Column families (keys big-endian, so that RocksDB's order is numeric order):
///   rm_accounts      account id(8)                -> the account with balances, last position
///   rm_transfers     id(8) + debit account(8)     -> the transfer and its state
///   rm_history       account(8) + ~position(8)    -> a group of the events that touched the
///                                                    account in one write (newest first, at
///                                                    most 128), each with its position and the
///                                                    account's balances after it; keyed by the
///                                                    oldest (inverted: newest first is a
///                                                    forward scan)
///   rm_stats         ledger(8) + day(4)           -> per-day ledger statistics
///   rm_ledgers       ledger id(8)                 -> the ledger
///   rm_expiries      debit account(8) + id(8)     -> expires_at: open pending transfers with a
///                                                    timeout (re-armed when the engine opens)
///   rm_rates         from ledger(8) + to ledger(8) -> the exchange rate
///   rm_processes     kind(1) + id(8)              -> a durable process: its steps
///   rm_open_processes kind(1) + id(8)             -> "": processes not completed (resumed at open)
///   rm_counters      day(4) + scope(1) + a(8) + b(8) -> a daily counter (exchange caps)
///   rm_webhooks      id(8)                        -> a webhook subscription: definition,
///                                                    cursor, dead letters
///   rm_rules         ledger id(8)                 -> the ledger's earning (rebate) rules
///   default          "checkpoint"                 -> position(8): every event up to it is in
///                    "accounts"                   -> number of accounts, at the checkpoint
///                    "format"                     -> "pointex-read-models-8"
/// They live in their own RocksDB database, `<data_dir>/read-models`, with its own write
/// queue, so projecting never delays the event log's commits.
/// Every update is written in one WriteBatch together with the new checkpoint, without a
/// write-ahead log, and the families are flushed atomically: after a crash the read models are
/// exactly the fold of the log up to the checkpoint of the last flush (no event applied twice
/// or skipped), and recovery replays the log after it.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/events.hpp"
#include "domain/process.hpp"
#include "domain/webhook.hpp"
#include "pointex/status.hpp"
#include "pointex/types.hpp"

namespace pointex::store {

struct Db;

struct Balances {
  std::uint64_t debits_posted = 0;
  std::uint64_t credits_posted = 0;
  std::uint64_t debits_pending = 0;
  std::uint64_t credits_pending = 0;
  bool operator==(const Balances& o) const {
    return debits_posted == o.debits_posted && credits_posted == o.credits_posted &&
           debits_pending == o.debits_pending && credits_pending == o.credits_pending;
  }
};

/// One event in an account's history.
struct HistoryEntry {
  std::uint64_t position = 0;
  std::uint64_t timestamp = 0;
  /// Where the transfer's state lives: (debit_account, transfer_id). For an expiry, the
  /// pending transfer's id.
  AccountId debit_account = 0;
  TransferId transfer_id = 0;
  domain::TransferKind kind = domain::TransferKind::single;
  std::uint16_t code = 0;
  std::uint64_t amount = 0;
  /// This account's balances after the event.
  Balances after;
};

struct HistoryFilter {
  /// Only entries with position < before (0: from the newest).
  std::uint64_t before_position = 0;
  /// 0: any code.
  std::uint16_t code = 0;
  /// Timestamps in [from_ns, to_ns); 0 means unbounded.
  std::uint64_t from_ns = 0;
  std::uint64_t to_ns = 0;
};

/// Per ledger and day: the public LedgerDayStats (docs/storage.md says what counts).
using DayStats = LedgerDayStats;

class ReadModel {
 public:
  /// Opens (creating if missing) the read models of the data dir `data_dir`, in
  /// `<data_dir>/read-models`.
  [[nodiscard]] static Status open(const std::string& data_dir, std::unique_ptr<ReadModel>* out);
  /// Opens existing read models without writing (audits): another format is `corruption`.
  [[nodiscard]] static Status open_read_only(const std::string& data_dir,
                                             std::unique_ptr<ReadModel>* out);
  explicit ReadModel(std::shared_ptr<Db> db);

  /// An atomic set of updates.
  class Writer {
   public:
    explicit Writer(const ReadModel& model);
    ~Writer();
    /// `debit_transfers`: how many transfers (with ids) the account is the debit account of.
    void put_account(const Account& account, std::uint64_t last_position,
                     std::uint64_t debit_transfers);
    void put_ledger(const Ledger& ledger);
    void put_expiry(AccountId debit, TransferId id, std::uint64_t expires_at);
    void delete_expiry(AccountId debit, TransferId id);
    void set_account_count(std::uint64_t count);
    void put_transfer(const TransferInfo& transfer);
    void put_history(AccountId account, const HistoryEntry& entry);
    void put_stats(LedgerId ledger, const DayStats& stats);
    void put_rate(const Rate& rate);
    void put_rules(const EarningRules& rules);
    void put_process(const domain::ProcessRecord& record);
    /// Marks a process open (`open`) or not.
    void set_process_open(domain::ProcessKind kind, std::uint64_t id, bool open);
    /// A counter of 0 is deleted.
    void put_counter(const domain::CounterKey& key, std::uint64_t value);
    /// Deletes the counters of every day before `day` (domain::CounterWindow).
    void delete_counters_before(std::uint32_t day);
    void put_webhook(const domain::WebhookRecord& record);
    void delete_webhook(WebhookId id);
    void set_checkpoint(std::uint64_t position);
    std::size_t size() const;
    /// Empties the writer for the next batch, keeping its buffers' memory up to 64 MiB each.
    /// A write under load is tens of megabytes (W2 at ~500k/s: a 38 MB batch); growing the
    /// buffers afresh for each write copied them over and over and faulted in every page again.
    void clear();
    /// Gives back the buffers clear() kept, beyond 1 MiB each (the projector calls it once it has
    /// been idle for a while).
    void trim();
    /// The memory the writer's buffers hold now, in bytes (tests).
    std::size_t retained_bytes() const;

   private:
    friend class ReadModel;
    struct Impl;
    /// Empties every buffer, giving back those that hold more than `max_bytes`.
    void release_all_beyond(std::size_t max_bytes);
    std::unique_ptr<Impl> impl_;
  };
  /// Writes atomically, without sync (the log is the durable truth; the checkpoint says how far
  /// the read models got).
  [[nodiscard]] Status write(Writer& writer);
  /// Fault injection for tests: after `writes` more successful writes, every write fails with
  /// io_error. Negative: never (the default).
  void fail_writes_after(std::int64_t writes) { fail_after_.store(writes); }

  [[nodiscard]] Status checkpoint(std::uint64_t* position) const;
  [[nodiscard]] Status account(AccountId id, std::optional<Account>* account,
                               std::uint64_t* last_position = nullptr,
                               std::uint64_t* debit_transfers = nullptr) const;
  /// Reads many accounts at once (keys in order: recovery's prefetch); calls fn for each found.
  [[nodiscard]] Status accounts(
      const std::vector<AccountId>& sorted_ids,
      const std::function<void(Account&& account, std::uint64_t debit_transfers)>& fn) const;
  /// Reads many transfers of one debit account at once (ids in order); fn for each found.
  [[nodiscard]] Status transfers(AccountId debit, const std::vector<TransferId>& sorted_ids,
                                 const std::function<void(TransferInfo&& transfer)>& fn) const;
  [[nodiscard]] Status account_count(std::uint64_t* count) const;
  /// Calls fn for every account with lots (Account::expiring not empty), in id order: the
  /// expiry sweep's scan (docs/expiry.md).
  [[nodiscard]] Status accounts_with_lots(const std::function<void(Account&& account)>& fn) const;
  [[nodiscard]] Status ledgers(std::vector<Ledger>* out) const;
  /// Calls fn(debit, id, expires_at) for every open pending transfer with a timeout.
  [[nodiscard]] Status expiries(
      const std::function<void(AccountId, TransferId, std::uint64_t)>& fn) const;
  /// Whether open() found them in another format and dropped them (they must be rebuilt).
  bool format_reset() const;
  [[nodiscard]] Status transfer(AccountId debit, TransferId id,
                                std::optional<TransferInfo>* transfer) const;
  /// Every transfer with this id (ids are unique per debit account only).
  [[nodiscard]] Status transfers_by_id(TransferId id, std::vector<TransferInfo>* out) const;
  /// Newest first, at most `limit`; `*next_before` is the cursor of the next page, 0 at the end.
  [[nodiscard]] Status history(AccountId account, const HistoryFilter& filter, std::uint32_t limit,
                               std::vector<HistoryEntry>* out, std::uint64_t* next_before) const;
  /// The history entry of `account` at `position`, if any.
  [[nodiscard]] Status history_at(AccountId account, std::uint64_t position,
                                  std::optional<HistoryEntry>* out) const;
  /// Days in [from_day, to_day], oldest first.
  [[nodiscard]] Status stats(LedgerId ledger, std::uint32_t from_day, std::uint32_t to_day,
                             std::vector<DayStats>* out) const;
  /// The latest day record of a ledger, if any.
  [[nodiscard]] Status latest_stats(LedgerId ledger, std::optional<DayStats>* out) const;

  [[nodiscard]] Status rates(std::vector<Rate>* out) const;
  /// Every ledger's earning rules.
  [[nodiscard]] Status rules(std::vector<EarningRules>* out) const;
  [[nodiscard]] Status process(domain::ProcessKind kind, std::uint64_t id,
                               std::optional<domain::ProcessRecord>* out) const;
  /// Every process not completed at the checkpoint.
  [[nodiscard]] Status open_processes(std::vector<domain::ProcessRecord>* out) const;
  /// Calls fn for every counter of `from_day` or later.
  [[nodiscard]] Status counters(
      std::uint32_t from_day,
      const std::function<void(const domain::CounterKey&, std::uint64_t)>& fn) const;
  [[nodiscard]] Status counter(const domain::CounterKey& key, std::uint64_t* value) const;

  /// Every webhook subscription at the checkpoint.
  [[nodiscard]] Status webhooks(domain::WebhookTable* out) const;

  /// Deletes every read model and the checkpoint (rebuild starts from there).
  [[nodiscard]] Status drop_all();
  /// Calls fn(family, key, value) for every read-model entry (tests compare two builds); a
  /// history group is given entry by entry (key: account + ~position), as if written one by
  /// one, since how entries group depends on where writes ended.
  [[nodiscard]] Status dump(const std::function<void(const std::string&, const std::string&,
                                                     const std::string&)>& fn) const;

 private:
  std::shared_ptr<Db> db_;
  std::atomic<std::int64_t> fail_after_{-1};
};

}  // namespace pointex::store

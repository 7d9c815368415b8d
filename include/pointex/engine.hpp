#pragma once
/// The PointEx embedding API: open an engine on a data dir, define ledgers and accounts, submit
/// transfers, look things up. Thread-safe: every member function may be called from any thread.
/// No CAF or RocksDB type appears here.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pointex/checkback.hpp"
#include "pointex/orders.hpp"
#include "pointex/payments.hpp"
#include "pointex/rebates.hpp"
#include "pointex/status.hpp"
#include "pointex/types.hpp"
#include "pointex/webhooks.hpp"

namespace pointex {

/// How a write becomes durable before it is acknowledged.
enum class Durability : std::uint8_t {
  /// fsync the event log once per group commit before answering (survives power loss).
  sync = 0,
  /// Write to the OS without fsync (survives a process crash, not a power loss).
  async = 1,
};

/// Engine options. Every limit has a name ending in `_max` and is checked at the API edge.
struct EngineOptions {
  /// Directory of the RocksDB data (created if missing). Required.
  std::string data_dir;

  /// Durability of acknowledged writes; chosen explicitly. Default: sync.
  Durability durability = Durability::sync;

  /// Scheduler threads that run account actors. 0 means one per core. The event log writer
  /// has its own thread besides these. An application that submits large batches gets more
  /// from cores + 1 (uniform batched +5-15% on 2 cores; one transfer at a time -4%, over HTTP
  /// -6-11%: docs/performance.md, session 8). Default: 0.
  std::uint32_t threads = 0;

  /// Largest number of transfers (or accounts) in one submitted batch. Default: 8190.
  std::uint32_t batch_items_max = 8190;

  /// Transfers accepted but not yet answered, across all callers. A submit that would go past
  /// it fails whole with `Status::overloaded` and changes nothing (back-pressure). Default: 1M.
  std::uint32_t inflight_transfers_max = 1U << 20;

  /// Most events written in one group commit (one RocksDB WriteBatch and one sync). Larger
  /// groups amortize the sync better and delay the first answer of the group. Default: 16384.
  std::uint32_t commit_group_events_max = 16384;

  /// Transfer records (the idempotency index: one per transfer id, per debit account) an account
  /// keeps in memory. Past it, records the read models already include leave memory and are
  /// looked up there when a command names them again; records the read models do not include
  /// yet always stay. Default: 1024.
  std::uint32_t account_records_cached_max = 1024;

  /// Transfer records kept in memory across all accounts (each ~300 B with its index: the
  /// default is ~1.2 GB). Once a second the budget is shared out among the accounts in memory:
  /// each keeps at most budget / accounts (at least 2, at most account_records_cached_max) and
  /// drops records past it at its next command, as above. Records the read models do not
  /// include yet always stay (projection_lag_max bounds them), and an idle account drops its
  /// records only when it next runs or leaves memory, so memory can exceed the budget for a
  /// while when the number of accounts in memory grows. 0: no budget (only the per-account
  /// limit). Default: 4M.
  std::uint64_t transfer_records_in_memory_max = 4'000'000;

  /// How far the read models may lag behind the event log, in events. Past it, commits wait
  /// for the projector (writers slow down to the read side's pace instead of the lag, the
  /// memory held for it and the log tail a crash recovery replays growing without bound).
  /// 0: unbounded. Default: 1M.
  std::uint64_t projection_lag_max = 1'000'000;

  /// Accounts whose state stays in memory (with or without a running actor). Past it, the
  /// least recently used idle ones leave memory (passivation) and load again from the read
  /// models on their next command. Checked once a second. Default: 1M.
  std::uint32_t accounts_in_memory_max = 1U << 20;

  /// Running account actors (each costs ~2 KB besides the account's state). Past it, idle
  /// ones stop and leave their state in memory without an actor until the next command.
  /// Checked once a second. Default: 128K.
  std::uint32_t live_actors_max = 1U << 17;

  /// An account idle this long leaves memory even under accounts_in_memory_max (0: never).
  /// An account with anything in flight, or whose last event the read models do not include
  /// yet, stays until that is done. Default: 300 s.
  std::uint32_t account_idle_s = 300;

  /// Log recovery progress every this many events. Default: 1M.
  std::uint64_t recovery_progress_events = 1'000'000;

  /// Largest page of an account's history. Default: 1000.
  std::uint32_t history_page_max = 1000;

  /// Longest a read waits for the read models to reach its `min_position`; then it fails with
  /// `Status::timed_out` (HTTP 503 not_caught_up). Default: 5000 ms.
  std::uint32_t read_wait_ms_max = 5000;

  /// Seconds between two expiry sweeps (sweep_expired_points, docs/expiry.md) on the engine's
  /// own expiry thread; 0: none (the host calls sweep_expired_points). A sweep reads every
  /// account with lots, so shorter is costlier; an expiry is due at a UTC day boundary, so an
  /// hour expires points at most an hour late. Default: 0.
  std::uint32_t expiry_sweep_interval_s = 0;

  /// Threads that run the asynchronous reads (the callback forms of the read-side calls) once
  /// the read models include their `min_position`. A read that waits holds no thread: it waits
  /// in a list that the projector's progress releases. Default: 2.
  std::uint32_t read_threads = 2;

  /// Asynchronous reads queued or waiting for their `min_position`, across all callers. Past
  /// it, one fails at once with `Status::overloaded` (back-pressure). Default: 65536.
  std::uint32_t async_reads_max = 1U << 16;

  /// Live events buffered per feed subscriber. A subscriber that falls further behind drops its
  /// buffer and catches up from the log instead (writers never wait for it). Default: 65536.
  std::uint32_t feed_buffer_events_max = 65536;

  /// Most events handed to a feed callback at once. Default: 4096.
  std::uint32_t feed_batch_events_max = 4096;

  /// Webhook subscriptions that may exist at once (each is in memory with its dead letters).
  /// Past it, creating one answers WebhookResult::too_many_webhooks. Default: 1024.
  std::uint32_t webhooks_max = 1024;

  /// Dead letters a subscription keeps. Past it, recording another answers
  /// too_many_dead_letters (pointexd then holds that subscription's delivery until an
  /// operator redelivers or deletes: memory stays bounded). Default: 10000.
  std::uint32_t webhook_dead_letters_max = 10000;

  /// Payment providers of points + cash orders (docs/workflows.md, "Payments"), with unique
  /// valid names. The first is the default of an order that names none. Empty: orders with
  /// cash are refused (provider_not_found). Default: none.
  std::vector<std::shared_ptr<PaymentProvider>> payment_providers;

  /// Seconds an order waits for its payment when it gives no timeout_s, and the most it may
  /// give (order_timeout_s_max >= order_timeout_s_default >= 1). Default: 900 s, 86400 s.
  std::uint32_t order_timeout_s_default = 900;
  std::uint32_t order_timeout_s_max = 86'400;

  /// Asks the URLs of check-backs (docs/workflows.md, "Check-backs"); pointexd gives an HTTP
  /// one. Null: create_checked_transfer is refused (invalid_argument).
  std::shared_ptr<CheckBackClient> check_back_client;
  /// Checks of a case that gives no checks_max (1 to check_back_checks_max). Default: 5.
  std::uint32_t check_back_checks_default = 5;
  /// Wait after an unknown answer before the next check: base * 2^(attempt - 1), at most max
  /// (1 <= base <= max). Default: 1 s, 60 s.
  std::uint32_t check_back_backoff_base_ms = 1'000;
  std::uint32_t check_back_backoff_max_ms = 60'000;

  /// Clock used for timestamps and timeouts, in Unix nanoseconds. Tests may replace it.
  /// Default: the system clock.
  std::function<std::uint64_t()> clock_ns;
};

/// Statistics of an open engine.
struct EngineStats {
  std::uint64_t ledgers = 0;
  std::uint64_t accounts = 0;
  /// Accounts whose state is in memory (the rest load from the read models on first use).
  std::uint64_t accounts_in_memory = 0;
  /// Transfer records looked up in the read models because they were not in memory.
  std::uint64_t transfer_records_loaded = 0;
  /// Transfer records each account keeps in memory now (EngineOptions::
  /// transfer_records_in_memory_max shared out among the accounts in memory).
  std::uint64_t account_records_cap = 0;
  /// Events of the log's tail (after the read models' checkpoint) replayed when the engine was
  /// opened, and how long opening took.
  std::uint64_t recovered_events = 0;
  std::uint64_t recovery_ms = 0;
  /// Highest position committed to the event log.
  std::uint64_t committed_position = 0;
  /// Position the read models include (the projection lags committed_position by the rest).
  std::uint64_t projected_position = 0;
  std::uint64_t commit_groups = 0;
  std::uint64_t committed_events = 0;
  /// Credits committed by the debit account's actor, without a message to the credit
  /// account's actor (the credit fast path, docs/architecture.md), since the engine opened.
  std::uint64_t direct_credits = 0;
  std::uint64_t inflight_transfers = 0;
  std::uint64_t live_account_actors = 0;
  /// Accounts that left memory (passivation) since the engine opened.
  std::uint64_t accounts_passivated = 0;
  /// Asynchronous reads queued or waiting for their min_position.
  std::uint64_t async_reads = 0;
  /// Durable processes (exchanges, orders) started and not completed yet.
  std::uint64_t open_processes = 0;
  /// Payment results since the engine opened that named no payment of any order (logged),
  /// and those that came late (recorded on their order; a late success needs a refund).
  std::uint64_t payment_results_unknown = 0;
  std::uint64_t payment_results_late = 0;
  /// A write to the event log failed: the engine stopped (fail-stop) and refuses commands;
  /// reopen the data dir.
  bool log_failed = false;
  /// A read-model write failed: the read models stopped where they were (reads of newer
  /// positions fail); a reopen catches them up from the log.
  bool read_models_failed = false;
};

/// A page of an account's history, newest first.
struct HistoryQuery {
  AccountId account = 0;
  /// 1 to history_page_max.
  std::uint32_t limit = 100;
  /// The cursor: only events before this position (0: from the newest). Pass the previous
  /// page's `next_before_position`.
  std::uint64_t before_position = 0;
  /// Only transfers with this code (0: any).
  std::uint16_t code = 0;
  /// Only events with timestamp in [from_ns, to_ns) (0: unbounded).
  std::uint64_t from_ns = 0;
  std::uint64_t to_ns = 0;
  /// Wait until the read models include this position (read-your-writes).
  std::uint64_t min_position = 0;
};
struct HistoryPage {
  std::vector<AccountEvent> events;
  /// Cursor of the next page, 0 when there is none.
  std::uint64_t next_before_position = 0;
};

/// A page of the feed (read_events), optionally of some ledgers only.
struct EventQuery {
  /// Events after this position (0: from the start).
  std::uint64_t after_position = 0;
  /// 1 to history_page_max matching events.
  std::uint32_t limit = 100;
  /// Only the events of these ledgers (empty: every event): their creation, the creation and
  /// closing of their accounts, their transfers. Events of other ledgers are skipped before
  /// their balances are read.
  std::vector<LedgerId> ledgers;
  /// Most events looked at for one page, matching or not (0: no bound but the tail). A page
  /// cut by it may be short, even empty, with `next_after_position` past what was looked at.
  std::uint64_t scan_max = 0;
};
struct EventPage {
  std::vector<FeedEvent> events;
  /// Where the next page starts: the position of the last event looked at, matching or not
  /// (after_position itself when there was nothing after it).
  std::uint64_t next_after_position = 0;
};

/// What close_account did.
struct CloseOutcome {
  CloseResult result = CloseResult::ok;
  /// The account after the close (or as it is, when refused).
  Account account;
  /// For `ok`: a position whose inclusion in the read models shows the account closed (its
  /// close event's, or a later one for a repeated close); pass it as `min_position`. 0 when
  /// refused.
  std::uint64_t position = 0;
};

/// What one expiry sweep did (Engine::sweep_expired_points, docs/expiry.md).
struct ExpirySweepReport {
  /// Member accounts the read models showed with due lots.
  std::uint64_t accounts_due = 0;
  /// Expiry transfers made now.
  std::uint64_t expired = 0;
  /// Already expired by an earlier sweep of the same day (`exists`).
  std::uint64_t already_expired = 0;
  /// Nothing available to expire (points reserved by pending debits, or none left).
  std::uint64_t nothing_available = 0;
  /// Still busy after the sweep's passes (a debit in flight or newer than the read models at
  /// each): tried again at the next sweep.
  std::uint64_t deferred = 0;
  /// Ledgers with expiry_days > 0 whose rules name no expiry account: skipped.
  std::uint64_t ledgers_skipped = 0;
};

/// What verify() found. `ok` is true when every check passed; `problems` says what did not.
struct VerifyReport {
  bool ok = false;
  std::uint64_t events = 0;
  std::uint64_t ledgers = 0;
  std::uint64_t accounts = 0;
  /// Accounts whose state is in memory (the rest load from the read models on first use).
  std::uint64_t accounts_in_memory = 0;
  /// Transfer records looked up in the read models because they were not in memory.
  std::uint64_t transfer_records_loaded = 0;
  std::uint64_t open_pending_transfers = 0;
  /// Exchanges in the log, and those not completed (the next open resumes them).
  std::uint64_t exchanges = 0;
  std::uint64_t open_exchanges = 0;
  /// Orders in the log, and those not completed (the next open resumes them).
  std::uint64_t orders = 0;
  std::uint64_t open_orders = 0;
  /// Purchases (rebates) in the log, and those not settled (the next open resumes them).
  std::uint64_t purchases = 0;
  std::uint64_t open_purchases = 0;
  std::vector<std::string> problems;
};

/// A live feed subscription; destroying it stops the deliveries (and waits for a callback
/// that is running to return).
class Subscription {
 public:
  virtual ~Subscription() = default;
  /// The position of the last event delivered.
  virtual std::uint64_t position() const = 0;
};

/// Receives feed events in commit order, on the subscription's own thread. Delivery of the
/// next batch waits until it returns (back-pressure on this subscriber alone).
using FeedCallback = std::function<void(const std::vector<FeedEvent>& events)>;

using TransferCallback =
    std::function<void(const Status& status, std::vector<TransferOutcome> outcomes)>;
using AccountCallback =
    std::function<void(const Status& status, std::vector<AccountResult> results)>;
/// Answer of an asynchronous call: `result` is meaningful when `status` is ok.
template <typename Result>
using ResultCallback = std::function<void(const Status& status, Result result)>;

class Engine {
 public:
  /// Opens (creating if missing) the engine on `options.data_dir` and recovers every ledger,
  /// account, transfer and pending timeout from its event log. On error, `*engine` is unset and
  /// the status says why (invalid options, I/O, corrupt or newer-version data).
  [[nodiscard]] static Status open(EngineOptions options, std::unique_ptr<Engine>* engine);

  /// Stops accepting commands, waits for in-flight ones to be answered, flushes and closes.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Creates a ledger and waits until it is durable. Idempotent: the same definition again
  /// answers `exists`. Status is not ok only when the engine stopped or its log failed.
  [[nodiscard]] Status create_ledger(const Ledger& ledger, LedgerResult* result);
  /// Asynchronous form: the callback runs once the ledger is durable (on the event log's
  /// writer thread: it must not block), or at once on the caller's thread when nothing is
  /// written (an invalid definition, a stopped engine).
  void create_ledger(const Ledger& ledger, ResultCallback<LedgerResult> callback);
  std::vector<Ledger> ledgers() const;
  std::optional<Ledger> ledger(LedgerId id) const;

  /// Creates accounts; one result per item, in order. The callback runs on an engine thread
  /// once every created account is durable; it must not block. Status is not ok (and nothing
  /// was applied) only for a batch over `batch_items_max` or a stopped engine.
  void create_accounts(std::vector<AccountSpec> accounts, AccountCallback callback);
  /// Blocking form of create_accounts.
  [[nodiscard]] Status create_accounts(std::vector<AccountSpec> accounts,
                                       std::vector<AccountResult>* results);

  /// Submits transfers; one outcome per item, in order. Items with the same debit account are
  /// decided in batch order; items on different debit accounts are decided concurrently (an
  /// item that spends another item's credit belongs in a later batch). The callback runs on an
  /// engine thread when every item is answered and every `ok` is durable; it must not block.
  /// Status is not ok, and nothing was applied, for a batch over `batch_items_max`
  /// (invalid_argument), past `inflight_transfers_max` (overloaded) or a stopped engine.
  /// After `io_error` (the event log failed, the engine stopped) item outcomes are unknown:
  /// reopen and retry with the same ids, which is safe.
  void submit_transfers(std::vector<Transfer> transfers, TransferCallback callback);
  /// Blocking form of submit_transfers.
  [[nodiscard]] Status submit_transfers(std::vector<Transfer> transfers,
                                        std::vector<TransferOutcome>* outcomes);

  /// Closes an account: it takes no new transfers. REQUIRES: balance and pending amounts zero.
  /// Closing a closed account answers ok again. Blocking; `*account` gets the account after.
  [[nodiscard]] Status close_account(AccountId id, CloseResult* result, Account* account);
  /// Asynchronous form, which also says the position of the close (read-your-writes). The
  /// callback runs on an engine thread once the close is durable or refused; it must not block.
  /// A stopped engine answers at once on the caller's thread.
  void close_account(AccountId id, ResultCallback<CloseOutcome> callback);

  /// The ledger of each account (0 where no such account exists), in order: for access
  /// checks, cheaper than lookup_accounts (no message to the accounts' actors). The callback
  /// runs on the caller's thread when every account is in memory, else on a reader thread
  /// after reading the others' definitions from the read models; it must not block.
  void account_ledgers(std::vector<AccountId> ids, ResultCallback<std::vector<LedgerId>> callback);

  /// Looks up accounts by id; `nullopt` where no such account exists. Balances include
  /// transfers decided but still being made durable; a transfer answered `ok` is always in.
  [[nodiscard]] Status lookup_accounts(const std::vector<AccountId>& ids,
                                       std::vector<std::optional<Account>>* accounts);
  /// Looks up a transfer by its debit account and id (ids are unique per debit account).
  [[nodiscard]] Status lookup_transfer(AccountId debit_account, TransferId id,
                                       std::optional<TransferInfo>* transfer);

  /// Read side (CQRS): the read models the projector keeps from committed events. Each read
  /// first waits, at most `read_wait_ms_max`, until they include `min_position` (0: no wait);
  /// on timeout it fails with `timed_out` and reads nothing.
  [[nodiscard]] Status read_account(AccountId id, std::uint64_t min_position,
                                    std::optional<Account>* account);
  [[nodiscard]] Status read_transfer(AccountId debit_account, TransferId id,
                                     std::uint64_t min_position,
                                     std::optional<TransferInfo>* transfer);
  /// Every transfer with this id, whatever its debit account.
  [[nodiscard]] Status find_transfers(TransferId id, std::uint64_t min_position,
                                      std::vector<TransferInfo>* transfers);
  /// History of an account, newest first: every event that touched it, with the transfer's
  /// state and the account's balances after the event. `invalid_argument` for a limit of 0 or
  /// over history_page_max.
  [[nodiscard]] Status account_history(const HistoryQuery& query, HistoryPage* page);
  /// Ledger statistics for UTC days [from_day, to_day] (days since 1970-01-01).
  [[nodiscard]] Status ledger_stats(LedgerId ledger, std::uint32_t from_day, std::uint32_t to_day,
                                    std::uint64_t min_position, std::vector<LedgerDayStats>* days);

  /// Asynchronous forms of the reads above: nothing blocks the caller and no thread waits.
  /// The callback runs on one of `read_threads` reader threads once the read models include
  /// `min_position` (the read done there), or with `timed_out` after `read_wait_ms_max`; it
  /// must not block. A refusal decided at once (invalid arguments, a stopped engine, more than
  /// `async_reads_max` reads queued: `overloaded`) is answered on the caller's thread.
  void read_account(AccountId id, std::uint64_t min_position,
                    ResultCallback<std::optional<Account>> callback);
  void read_transfer(AccountId debit_account, TransferId id, std::uint64_t min_position,
                     ResultCallback<std::optional<TransferInfo>> callback);
  void find_transfers(TransferId id, std::uint64_t min_position,
                      ResultCallback<std::vector<TransferInfo>> callback);
  void account_history(const HistoryQuery& query, ResultCallback<HistoryPage> callback);
  void ledger_stats(LedgerId ledger, std::uint32_t from_day, std::uint32_t to_day,
                    std::uint64_t min_position,
                    ResultCallback<std::vector<LedgerDayStats>> callback);

  /// Subscribes to committed events after `after_position` (0: from the start): first the ones
  /// already in the log, then live ones, in commit order, without gaps or repeats. Events are
  /// delivered once the read models include them. REQUIRES: the subscription is destroyed
  /// before the engine (the engine stops its deliveries when it closes).
  [[nodiscard]] Status subscribe(std::uint64_t after_position, FeedCallback callback,
                                 std::unique_ptr<Subscription>* subscription);

  /// A page of the feed: committed events after `after_position` that the read models include,
  /// in commit order, at most `limit` (1 to history_page_max, else invalid_argument). An empty
  /// page means the caller is at the tail; pass the last event's position as the next `after`.
  [[nodiscard]] Status read_events(std::uint64_t after_position, std::uint32_t limit,
                                   std::vector<FeedEvent>* events);
  /// Same, with a ledger filter and a bound on the events looked at (EventQuery).
  [[nodiscard]] Status read_events(const EventQuery& query, EventPage* page);
  /// Asynchronous form: runs on a reader thread (see the asynchronous reads above).
  void read_events(EventQuery query, ResultCallback<EventPage> callback);

  // -------------------------------------------------------------------------------------------
  // Alliance exchange (docs/workflows.md).

  /// Sets (or replaces) the rate from `rate.from_ledger` to `rate.to_ledger` and waits until
  /// it is durable. Checks, in order: both ledgers exist, they differ, numerator and
  /// denominator are not zero, fee_bps <= 10000, the exchange accounts exist on their ledgers.
  /// Setting the same definition again answers ok and writes nothing. Exchanges under way keep
  /// the amounts and accounts they started with. Status is not ok only when the engine stopped
  /// or its log failed.
  [[nodiscard]] Status set_rate(const Rate& rate, RateResult* result);
  /// Asynchronous form: the callback runs once the rate is durable (on the log's writer
  /// thread: it must not block), or at once on the caller's thread when nothing is written.
  void set_rate(const Rate& rate, ResultCallback<RateResult> callback);
  std::optional<Rate> rate(LedgerId from_ledger, LedgerId to_ledger) const;
  std::vector<Rate> rates() const;

  /// Exchanges `exchange.amount` points of from_account's ledger for points of to_account's
  /// ledger at the rate set between them: two pending legs (from_account -> the rate's
  /// from_exchange_account; to_exchange_account -> to_account), then both posted, or, if one
  /// was refused, the other voided: never one without the other. Every step is durable before
  /// the next, and an exchange interrupted by a crash is finished at the next open. The
  /// callback runs once the outcome is durable, on the engine's workflow thread (it must not
  /// block). Idempotent by id: the same exchange again answers its outcome (`exists` for one
  /// that succeeded; while it is under way, once it completes); another body with the same id
  /// answers exists_with_different_fields. Refusals before it starts (rate, caps, accounts)
  /// are not stored and a retry is decided afresh. Status is not ok, and the outcome unknown
  /// until a retry with the same id, for a stopped engine (shutting_down), a failed log
  /// (io_error) or too many exchanges under way (overloaded).
  void exchange(const Exchange& exchange, ResultCallback<ExchangeOutcome> callback);
  /// Blocking form of exchange.
  [[nodiscard]] Status exchange(const Exchange& exchange, ExchangeOutcome* outcome);
  /// The exchange with this id and where it is (nullopt: none started). Current: it includes
  /// steps the read models do not have yet.
  void lookup_exchange(ExchangeId id, ResultCallback<std::optional<ExchangeInfo>> callback);
  [[nodiscard]] Status lookup_exchange(ExchangeId id, std::optional<ExchangeInfo>* exchange);

  // Points + cash orders (docs/workflows.md, "Orders").

  /// Starts an order: the member's points are reserved (a pending transfer member -> merchant
  /// with order_transfer_code), then the provider is asked for the cash part. The callback
  /// runs (on the flows thread; it must not block) once the payment is created (status
  /// awaiting_payment) or the order is over (completed at once for cash 0; failed when the
  /// points could not be reserved, e.g. exceeds_credits, or the payment could not be created).
  /// Later the payment's result posts the points (completed) or voids them (failed); so do
  /// the deadline (expired) and cancel_order (cancelled). Every step is durable before it is
  /// acted on; an order interrupted by a crash goes on at the next open. Idempotent by id:
  /// the same order again answers `exists` and its state (waiting, like the first caller, if
  /// it is under way); another body with the id answers exists_with_different_fields.
  /// Refusals before it starts (OrderResult 3-12) store nothing. Status is not ok when the
  /// engine stops, its log failed (io_error) or too many processes are open (overloaded).
  void create_order(const Order& order, ResultCallback<OrderOutcome> callback);
  [[nodiscard]] Status create_order(const Order& order, OrderOutcome* outcome);
  /// Cancels an order whose payment has not succeeded: its points are voided (status
  /// cancelled). Answers once the void is done: ok, exists (cancelled before), not_found,
  /// already_completed (paid: nothing changes), already_finished (failed or expired).
  void cancel_order(OrderId id, ResultCallback<OrderOutcome> callback);
  [[nodiscard]] Status cancel_order(OrderId id, OrderOutcome* outcome);
  /// The order with this id, its state and its steps' times (nullopt: none).
  void lookup_order(OrderId id, ResultCallback<std::optional<OrderInfo>> callback);
  [[nodiscard]] Status lookup_order(OrderId id, std::optional<OrderInfo>* order);
  /// A payment's result from its provider (an HTTP callback, or a provider's sink).
  /// Idempotent: answers once what it did is durable: applied (the order is decided: points
  /// posted, or voided for a failure), replayed (decided on this result before), late (the
  /// order was decided otherwise: recorded on it as a late_result step; nothing moves; a late
  /// success needs a refund of the cash), provider_not_found, payment_not_found (logged and
  /// counted in EngineStats::payment_results_unknown; nothing recorded).
  void payment_result(const std::string& provider, const std::string& payment_id,
                      PaymentStatus status, ResultCallback<PaymentResultAnswer> callback);
  [[nodiscard]] Status payment_result(const std::string& provider, const std::string& payment_id,
                                      PaymentStatus status, PaymentResultAnswer* answer);

  // -------------------------------------------------------------------------------------------
  // Check-backs (include/pointex/checkback.hpp, docs/workflows.md "Check-backs").

  /// Makes the pending transfer and answers once it is made (status pending) or refused
  /// (status failed, transfer_result). Its client posts or voids it as usual; if neither comes
  /// before check_after_s, the engine asks the URL and posts (commit) or voids (rollback) it,
  /// asking again with backoff while the answer is unknown, and voids and parks it after the
  /// last check. Idempotent by the transfer's id (exists; another body:
  /// exists_with_different_fields). Refusals before it starts store nothing.
  void create_checked_transfer(const CheckedTransfer& request,
                               ResultCallback<CheckBackOutcome> callback);
  [[nodiscard]] Status create_checked_transfer(const CheckedTransfer& request,
                                               CheckBackOutcome* outcome);
  /// The case with this id (the transfer's id), nullopt: none.
  void lookup_check_back(TransferId id, ResultCallback<std::optional<CheckBackInfo>> callback);
  [[nodiscard]] Status lookup_check_back(TransferId id, std::optional<CheckBackInfo>* info);
  /// Every parked case (voided after its last unknown check, not resolved yet), oldest first.
  void parked_check_backs(ResultCallback<std::vector<CheckBackInfo>> callback);
  [[nodiscard]] Status parked_check_backs(std::vector<CheckBackInfo>* parked);
  /// An operator resolves a parked case with a note (nothing moves: it was voided): ok,
  /// not_found, not_parked, note_too_long.
  void resolve_check_back(TransferId id, const std::string& note,
                          ResultCallback<CheckBackOutcome> callback);
  [[nodiscard]] Status resolve_check_back(TransferId id, const std::string& note,
                                          CheckBackOutcome* outcome);

  // -------------------------------------------------------------------------------------------
  // Shopping rebates (include/pointex/rebates.hpp, docs/workflows.md "Rebates").

  /// Sets (or replaces) a ledger's earning rules and waits until they are durable. Checks, in
  /// order: the ledger exists, the issuer account exists and is an issuer on that ledger, then
  /// the rules' own fields (RulesResult). The same definition again answers ok and writes
  /// nothing. Purchases under way keep what they started with.
  void set_rules(const EarningRules& rules, ResultCallback<RulesResult> callback);
  [[nodiscard]] Status set_rules(const EarningRules& rules, RulesResult* result);
  std::optional<EarningRules> rules(LedgerId ledger) const;
  std::vector<EarningRules> all_rules() const;
  /// Records a purchase and credits what it earns as a pending transfer issuer -> member
  /// (rebate_transfer_code), posted when the return window ends (voided if refunds took it
  /// all). Answers once the points are credited (status pending), or the purchase earned
  /// nothing or its credit was refused (failed, with credit_result). Idempotent by id: the
  /// same purchase again answers exists and its state; another body with the id
  /// exists_with_different_fields. Refusals before it starts store nothing.
  void purchase(const Purchase& purchase, ResultCallback<PurchaseOutcome> callback);
  [[nodiscard]] Status purchase(const Purchase& purchase, PurchaseOutcome* outcome);
  /// Refunds (part of) a purchase. Inside the return window the points due shrink (to
  /// floor(points * (amount - refunded) / amount); all refunded: voided at once); after it, a
  /// clawback takes back the posted points no longer earned, as much as the member's balance
  /// allows (a balancing debit), and records the rest as a shortfall. Answers once all of it
  /// is durable. Idempotent by (purchase_id, id).
  void refund_purchase(const Refund& refund, ResultCallback<PurchaseOutcome> callback);
  [[nodiscard]] Status refund_purchase(const Refund& refund, PurchaseOutcome* outcome);
  /// The purchase with this id and its state (nullopt: none).
  void lookup_purchase(PurchaseId id, ResultCallback<std::optional<PurchaseInfo>> callback);
  [[nodiscard]] Status lookup_purchase(PurchaseId id, std::optional<PurchaseInfo>* purchase);

  // -------------------------------------------------------------------------------------------
  // Webhook subscriptions (include/pointex/webhooks.hpp, docs/webhooks.md). The engine stores
  // them as events; delivering is the host's job. Callbacks run once the event is durable (on
  // the log's writer thread: they must not block), or at once on the caller's thread when
  // nothing is written (a refusal, a stopped engine). Status is not ok only when the engine
  // stopped or its log failed.

  /// Creates a subscription (its id: the position of its event; its cursor starts there, so
  /// events after the creation are delivered). Checks: valid_spec rules (`invalid`), its
  /// ledgers exist (`invalid`), fewer than webhooks_max exist (`too_many_webhooks`).
  void create_webhook(const WebhookSpec& spec, ResultCallback<WebhookOutcome> callback);
  /// Deletes a subscription and its dead letters (`not_found` if none).
  void delete_webhook(WebhookId id, ResultCallback<WebhookOutcome> callback);
  /// Records delivery progress (domain::check_progress says what is refused). The cursor may
  /// not pass the position the read models include.
  void record_webhook_progress(const WebhookProgress& progress,
                               ResultCallback<WebhookOutcome> callback);
  /// The subscriptions as appended (current: including events not yet durable), by id.
  std::vector<Webhook> webhooks() const;
  std::optional<Webhook> webhook(WebhookId id) const;
  /// Dead letters of a subscription after `after_position`, oldest first, at most `limit`;
  /// false when there is no such subscription.
  bool webhook_dead_letters(WebhookId id, std::uint64_t after_position, std::uint32_t limit,
                            DeadLetterPage* page) const;

  /// Expires the points due now (docs/expiry.md): for every member account whose lots in the
  /// read models are due, an `expiry_transfer_code` balancing_debit transfer of what is due to
  /// its ledger's expiry account (EarningRules::expiry_account; ledgers without one are
  /// skipped), decided by the account's own actor. Safe to run again, concurrently with
  /// transfers and after a crash: the transfer's id is the account's expiry of that UTC day
  /// (expiry_transfer_id), and an account whose read model may be behind its own debits is
  /// deferred. Blocks until every expiry is answered. Not ok only when the read models could
  /// not be read or the engine is closing.
  [[nodiscard]] Status sweep_expired_points(ExpirySweepReport* report);

  /// Offline (the data dir must not be open): drops every read model and rebuilds it by
  /// replaying the event log, logging progress.
  [[nodiscard]] static Status rebuild_read_models(const std::string& data_dir);
  /// Offline audit of a data dir: per ledger the balances sum to zero and credits pending
  /// equal debits pending; every account's state in the read models equals the fold of its
  /// events; pending amounts equal the open pending transfers; the read models' checkpoint is
  /// the end of the log. It writes nothing: read models in another format are reported as a
  /// problem (the next open rebuilds them). Status is not ok only if the audit could not run.
  [[nodiscard]] static Status verify(const std::string& data_dir, VerifyReport* report);

  EngineStats stats() const;
  const EngineOptions& options() const;

  struct Impl;

 private:
  friend struct EngineTestAccess;  // fault injection in tests/
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pointex

// The engine facade: options, opening (recovery.cpp replays the log), routing of commands to
// account actors, shutdown. The read side's calls are in reads.cpp.

#include "pointex/engine.hpp"

#include <algorithm>
#include <atomic>
#include <caf/all.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>

#include "actors/account_actor.hpp"
#include "actors/messages.hpp"
#include "actors/scheduler.hpp"
#include "domain/codec.hpp"
#include "domain/decide.hpp"
#include "engine/account_loader.hpp"
#include "engine/answer_latch.hpp"
#include "engine/engine_impl.hpp"
#include "engine/log.hpp"
#include "engine/order_flow.hpp"
#include "engine/recovery.hpp"
#include "engine/transfer_batch.hpp"
#include "engine/webhooks.hpp"
#include "engine/workflows.hpp"

namespace pointex {
namespace {

/// Hard ceilings on the options (a configuration past them is an error, not clamped).
constexpr std::uint32_t batch_items_limit = 1U << 16;
constexpr std::uint32_t threads_limit = 256;
constexpr std::uint32_t history_page_limit = 100'000;
constexpr std::uint32_t read_wait_ms_limit = 600'000;
constexpr std::uint32_t expiry_check_interval_ms = 50;
constexpr auto shutdown_drain_timeout = std::chrono::seconds(60);

std::uint64_t system_clock_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

Status validate_options(const EngineOptions& o) {
  if (o.data_dir.empty()) return Status::invalid_argument("data_dir must be set");
  if (o.batch_items_max == 0 || o.batch_items_max > batch_items_limit) {
    return Status::invalid_argument("batch_items_max must be 1-" +
                                    std::to_string(batch_items_limit));
  }
  if (o.threads > threads_limit) {
    return Status::invalid_argument("threads must be 0-" + std::to_string(threads_limit));
  }
  if (o.inflight_transfers_max < o.batch_items_max) {
    return Status::invalid_argument("inflight_transfers_max must be at least batch_items_max");
  }
  if (o.commit_group_events_max == 0) {
    return Status::invalid_argument("commit_group_events_max must be at least 1");
  }
  if (o.live_actors_max == 0) return Status::invalid_argument("live_actors_max must be at least 1");
  if (o.accounts_in_memory_max == 0) {
    return Status::invalid_argument("accounts_in_memory_max must be at least 1");
  }
  if (o.account_records_cached_max == 0) {
    return Status::invalid_argument("account_records_cached_max must be at least 1");
  }
  if (o.recovery_progress_events == 0) {
    return Status::invalid_argument("recovery_progress_events must be at least 1");
  }
  if (o.history_page_max == 0 || o.history_page_max > history_page_limit) {
    return Status::invalid_argument("history_page_max must be 1-" +
                                    std::to_string(history_page_limit));
  }
  if (o.feed_buffer_events_max == 0 || o.feed_batch_events_max == 0) {
    return Status::invalid_argument(
        "feed_buffer_events_max and feed_batch_events_max must be "
        "at least 1");
  }
  if (o.read_threads == 0 || o.read_threads > threads_limit) {
    return Status::invalid_argument("read_threads must be 1-" + std::to_string(threads_limit));
  }
  if (o.async_reads_max == 0) return Status::invalid_argument("async_reads_max must be at least 1");
  if (o.read_wait_ms_max > read_wait_ms_limit) {
    return Status::invalid_argument("read_wait_ms_max must be at most " +
                                    std::to_string(read_wait_ms_limit));
  }
  if (o.check_back_checks_default == 0 || o.check_back_checks_default > check_back_checks_max) {
    return Status::invalid_argument("check_back_checks_default must be 1-" +
                                    std::to_string(check_back_checks_max));
  }
  if (o.check_back_backoff_base_ms == 0 ||
      o.check_back_backoff_max_ms < o.check_back_backoff_base_ms) {
    return Status::invalid_argument(
        "check_back_backoff_base_ms must be at least 1 and at most check_back_backoff_max_ms");
  }
  return engine::OrderFlow::validate_options(o);
}

/// Pending transfers with a timeout still pending: the read models' index of them, and those
/// recovery replayed from the log's tail (a timeout that fires for a transfer resolved since
/// finds it resolved and does nothing).
Status recovered_expiries(const Engine::Impl& core, actors::ScheduleExpiry* out) {
  actors::ScheduleExpiry& msg = *out;
  const Status s = core.read_model->expiries([&](AccountId debit, TransferId id, std::uint64_t at) {
    msg.entries.push_back({at, debit, id});
  });
  if (!s.is_ok()) return s;
  core.directory.for_each([&](engine::AccountEntry& entry) {
    if (!entry.dormant) return;
    for (const auto& [id, record] : entry.dormant->transfers) {
      if (record.state == TransferState::pending && record.event.expires_at != 0) {
        msg.entries.push_back({record.event.expires_at, entry.spec.id, id});
      }
    }
  });
  return Status::ok();
}

Status start_actors(Engine::Impl& core) {
  const std::uint32_t threads = core.options.threads != 0
                                    ? core.options.threads
                                    : std::max(1U, std::thread::hardware_concurrency());
  core.caf_config.set("scheduler.max-threads", static_cast<std::size_t>(threads));
  // Work sharing, without CAF's per-job logging cost (actors/scheduler.cpp).
  actors::load_scheduler(core.caf_config);
  core.caf_config.set("logger.verbosity", caf::atom("quiet"));
  core.caf_config.set("logger.console", caf::atom("none"));
  core.system = std::make_unique<caf::actor_system>(core.caf_config);
  core.expiry = actors::spawn_expiry_actor(*core.system, &core, expiry_check_interval_ms);
  actors::ScheduleExpiry pending;
  const Status s = recovered_expiries(core, &pending);
  if (!s.is_ok()) return s;
  log().info("{} pending transfers with a timeout re-armed", pending.entries.size());
  if (!pending.entries.empty()) caf::anon_send(core.expiry, std::move(pending));
  return Status::ok();
}

template <class T>
T wait(std::future<T>& f) {
  return f.get();
}

}  // namespace

const caf::actor& Engine::Impl::actor_of(engine::AccountEntry& entry) {
  if (entry.spawned.load(std::memory_order_acquire)) return entry.actor;
  std::lock_guard<std::mutex> lock(entry.mutex);
  if (!entry.actor) {
    POINTEX_ASSERT(entry.dormant != nullptr);
    entry.actor = actors::spawn_account_actor(*system, this, &entry, std::move(entry.dormant));
    entry.spawned.store(true, std::memory_order_release);
  }
  return entry.actor;
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Status Engine::open(EngineOptions options, std::unique_ptr<Engine>* engine) {
  engine->reset();
  Status s = validate_options(options);
  if (!s.is_ok()) return s;
  if (!options.clock_ns) options.clock_ns = system_clock_ns;
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return Status::io_error("cannot create data dir " + options.data_dir + ": " + ec.message());
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  // No account is in memory yet: the whole budget (the sweeper shares it out once a second).
  impl->records_cap.store(domain::records_cap(impl->options.transfer_records_in_memory_max, 1,
                                              impl->options.account_records_cached_max));
  // RocksDB replays its write-ahead logs here after a crash (nothing after a clean close).
  const auto opening = std::chrono::steady_clock::now();
  s = store::EventLog::open(impl->options.data_dir, &impl->log);
  if (!s.is_ok()) return s;
  const auto log_opened = std::chrono::steady_clock::now();
  s = store::ReadModel::open(impl->options.data_dir, &impl->read_model);
  if (!s.is_ok()) return s;
  const auto ms_since = [](std::chrono::steady_clock::time_point from) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 from)
        .count();
  };
  log().info("opened the event log in {} ms and the read models in {} ms",
             std::chrono::duration_cast<std::chrono::milliseconds>(log_opened - opening).count(),
             ms_since(log_opened));
  if (impl->read_model->format_reset()) {
    log().warn("read models were in another format: dropped, rebuilt from the log");
  }
  const store::ReadModel* read_model = impl->read_model.get();
  impl->directory.set_loader(
      [read_model](AccountId id, std::unique_ptr<domain::AccountState>* state) {
        return engine::load_account(*read_model, id, state);
      });
  std::uint64_t next_position = 1;
  std::uint64_t last_timestamp = 0;
  impl->workflows = std::make_unique<engine::Workflows>(*impl);
  impl->webhooks = std::make_unique<engine::Webhooks>(*impl);
  s = engine::recover(*impl, &next_position, &last_timestamp);
  if (!s.is_ok()) return s;
  impl->projector = std::make_unique<engine::Projector>(*impl->read_model, *impl->log);
  s = impl->projector->load();
  if (!s.is_ok()) return s;
  impl->feed = std::make_unique<engine::Feed>(*impl->log, *impl->read_model, *impl->projector,
                                              impl->options.feed_buffer_events_max,
                                              impl->options.feed_batch_events_max);
  impl->projector->set_feed(impl->feed.get());
  impl->reads = std::make_unique<engine::ReadScheduler>(
      *impl->projector, impl->options.read_threads,
      std::chrono::milliseconds(impl->options.read_wait_ms_max), impl->options.async_reads_max);
  engine::ReadScheduler* reads = impl->reads.get();
  impl->projector->set_on_progress([reads] { reads->progressed(); });
  // The projector catches up from its checkpoint on its own thread: open does not wait.
  impl->projector->start(impl->options.recovery_progress_events);
  store::JournalOptions jo;
  jo.sync = impl->options.durability == Durability::sync;
  jo.group_events_max = impl->options.commit_group_events_max;
  Impl* core = impl.get();
  jo.on_group = [core](std::uint64_t first, std::string bytes, std::vector<std::uint32_t> ends) {
    core->projector->submit({first, std::move(bytes), std::move(ends)});
  };
  jo.before_group = [core](std::uint64_t committed) {
    const std::uint64_t lag_max = core->options.projection_lag_max;
    if (lag_max == 0 || core->projector->checkpoint() + lag_max >= committed) return;
    // Wait in slices so that a closing engine or a stopped projector never blocks commits.
    while (!core->stopping.load(std::memory_order_relaxed) && core->projector->failure().is_ok() &&
           !core->projector->wait_for(committed - lag_max, std::chrono::milliseconds(50))) {
    }
  };
  jo.on_failure = [core](const Status& status) {
    log().critical("event log write failed, engine stopped: {}", status.to_string());
    // Commands parked behind a transfer that will never be acknowledged are answered now.
    core->directory.for_each([](engine::AccountEntry& entry) {
      std::lock_guard<std::mutex> lock(entry.mutex);
      if (entry.actor) caf::anon_send(entry.actor, actors::FailParked{});
    });
  };
  impl->journal = std::make_unique<store::Journal>(*impl->log, jo, next_position, last_timestamp,
                                                   impl->options.clock_ns);
  s = start_actors(*impl);
  if (!s.is_ok()) return s;
  impl->start_sweeper();
  impl->start_expiry_sweeper();
  impl->workflows->start();  // resumes the processes the log left open
  engine->reset(new Engine(std::move(impl)));
  return Status::ok();
}

Engine::~Engine() {
  Impl& core = *impl_;
  core.stopping.store(true);
  core.workflows->stop();  // open processes stay open in the log: the next open resumes them
  core.stop_sweeper();
  core.stop_expiry_sweeper();
  const auto deadline = std::chrono::steady_clock::now() + shutdown_drain_timeout;
  while (core.inflight.load() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (core.inflight.load() != 0) {
    log().warn("closing with {} transfers still unanswered", core.inflight.load());
  }
  core.directory.for_each([](engine::AccountEntry& entry) {
    std::lock_guard<std::mutex> lock(entry.mutex);
    if (entry.actor) caf::anon_send_exit(entry.actor, caf::exit_reason::user_shutdown);
  });
  caf::anon_send_exit(core.expiry, caf::exit_reason::user_shutdown);
  core.journal->stop();
  core.projector->stop();  // applies every group the journal handed over
  core.feed->stop_all();
  core.reads->stop();  // answers the reads still waiting, runs the queued ones
  core.directory.for_each([](engine::AccountEntry& entry) {
    std::lock_guard<std::mutex> lock(entry.mutex);
    entry.spawned.store(false, std::memory_order_release);
    entry.actor = nullptr;
  });
  core.expiry = nullptr;
  core.system.reset();
  core.journal.reset();
  core.workflows.reset();  // after the journal: its chunks call back into the workflows
  core.webhooks.reset();
  core.feed.reset();
  core.projector.reset();
  core.reads.reset();
  core.read_model.reset();
  core.log.reset();
}

const EngineOptions& Engine::options() const {
  return impl_->options;
}

Status Engine::create_ledger(const Ledger& ledger, LedgerResult* result) {
  std::promise<Status> done;
  std::future<Status> f = done.get_future();
  create_ledger(ledger, [&](const Status& s, LedgerResult r) {
    *result = r;
    done.set_value(s);
  });
  return wait(f);
}

void Engine::create_ledger(const Ledger& ledger, ResultCallback<LedgerResult> callback) {
  Impl& core = *impl_;
  if (core.stopping.load()) {
    return callback(Status::shutting_down("engine is closing"), LedgerResult::ok);
  }
  if (core.journal->failed()) {
    return callback(Status::io_error("the event log failed; reopen the data dir"),
                    LedgerResult::ok);
  }
  const LedgerResult valid = domain::validate_ledger(ledger);
  if (valid != LedgerResult::ok) return callback(Status::ok(), valid);
  std::shared_ptr<engine::AnswerLatch> latch;
  {
    std::lock_guard<std::mutex> lock(core.ledgers_mutex);
    const auto it = core.ledgers.find(ledger.id);
    const auto code = core.ledger_codes.find(ledger.code);
    const LedgerResult result =
        it != core.ledgers.end()
            ? (it->second.same_definition(ledger) ? LedgerResult::exists
                                                  : LedgerResult::exists_with_different_fields)
        : code != core.ledger_codes.end() ? LedgerResult::code_taken
                                          : LedgerResult::ok;
    latch = std::make_shared<engine::AnswerLatch>(
        [result, callback = std::move(callback)](const Status& s) { callback(s, result); });
    auto chunk = std::make_unique<engine::LatchedChunk>(latch);
    // Anything but a creation answers behind a barrier, once the original is durable.
    if (result == LedgerResult::ok) {
      Ledger stored = ledger;
      chunk->events.emplace_back(domain::LedgerCreated{stored});
      stored.timestamp = core.journal->append(std::move(chunk)).first_timestamp;
      // Published at once (under the lock): an account naming it is logged after it.
      if (stored.timestamp != 0) {
        core.ledgers[stored.id] = stored;
        core.ledger_codes[stored.code] = stored.id;
      }
    } else {
      core.journal->append(std::move(chunk));
    }
  }
  latch->arrive();
}

std::vector<Ledger> Engine::ledgers() const {
  std::lock_guard<std::mutex> lock(impl_->ledgers_mutex);
  std::vector<Ledger> out;
  out.reserve(impl_->ledgers.size());
  for (const auto& [id, ledger] : impl_->ledgers) out.push_back(ledger);
  return out;
}

std::optional<Ledger> Engine::ledger(LedgerId id) const {
  std::lock_guard<std::mutex> lock(impl_->ledgers_mutex);
  const auto it = impl_->ledgers.find(id);
  if (it == impl_->ledgers.end()) return std::nullopt;
  return it->second;
}

void Engine::create_accounts(std::vector<AccountSpec> accounts, AccountCallback callback) {
  Impl& core = *impl_;
  if (core.stopping.load()) return callback(Status::shutting_down("engine is closing"), {});
  if (accounts.size() > core.options.batch_items_max) {
    return callback(Status::invalid_argument("batch of " + std::to_string(accounts.size()) +
                                             " accounts is over batch_items_max " +
                                             std::to_string(core.options.batch_items_max)),
                    {});
  }
  auto results = std::make_shared<std::vector<AccountResult>>(accounts.size());
  auto latch = std::make_shared<engine::AnswerLatch>(
      [results, callback = std::move(callback)](const Status& s) {
        callback(s, s.is_ok() ? std::move(*results) : std::vector<AccountResult>{});
      });
  // Under the lock: decided, appended and put in the directory. The caller arrives after it
  // (engine/answer_latch.hpp).
  const auto create = [&] {
    std::lock_guard<std::mutex> lock(core.create_mutex);
    auto chunk = std::make_unique<engine::LatchedChunk>(latch);
    std::unordered_map<AccountId, std::size_t> in_batch;  // id -> first index in this batch
    std::vector<std::size_t> created;
    for (std::size_t i = 0; i < accounts.size(); ++i) {
      const AccountSpec& spec = accounts[i];
      AccountResult r = domain::validate_account(spec);
      if (r == AccountResult::ok && !ledger(spec.ledger)) r = AccountResult::ledger_not_found;
      if (r == AccountResult::ok) {
        engine::AccountEntry* existing = nullptr;
        const Status looked = core.directory.lookup(spec.id, &existing);
        if (!looked.is_ok()) {
          // Whether the id is taken is unknown: nothing of this batch is applied.
          return latch->fail(looked);
        }
        // Its spec never changes: comparing it after unpinning is safe only because we copy.
        std::optional<AccountSpec> existing_spec;
        if (existing != nullptr) {
          existing_spec = existing->spec;
          existing->unpin();
        }
        const auto earlier = in_batch.find(spec.id);
        const AccountSpec* other = existing_spec               ? &*existing_spec
                                   : earlier != in_batch.end() ? &accounts[earlier->second]
                                                               : nullptr;
        if (other != nullptr) {
          r = *other == spec ? AccountResult::exists : AccountResult::exists_with_different_fields;
        } else {
          in_batch.emplace(spec.id, i);
          created.push_back(i);
          chunk->events.emplace_back(domain::AccountCreated{spec, 0});
        }
      }
      (*results)[i] = r;
    }
    // Append before publishing: any transfer naming a new account is logged after its creation.
    const store::Journal::Appended appended = core.journal->append(std::move(chunk));
    // Nothing to create (all refused or existing), or the log refused it (the journal arrived).
    if (appended.first_position == 0) return;
    engine::pause_before_publishing(core.test_publish_delay_us);
    for (std::size_t k = 0; k < created.size(); ++k) {
      auto state = std::make_unique<domain::AccountState>();
      state->account.spec = accounts[created[k]];
      state->account.timestamp = appended.first_timestamp + k;
      // Not inserted only if a lookup loaded it from the read models meanwhile (the projector
      // was quicker): the same account, fresh.
      bool inserted = false;
      engine::AccountEntry* entry = core.directory.insert(std::move(state), &inserted);
      entry->committed_at(appended.first_position + k);
      entry->unpin();
    }
    core.account_count.fetch_add(created.size());
  };
  create();
  latch->arrive();
}

Status Engine::create_accounts(std::vector<AccountSpec> accounts,
                               std::vector<AccountResult>* results) {
  std::promise<Status> done;
  std::future<Status> f = done.get_future();
  create_accounts(std::move(accounts), [&](const Status& s, std::vector<AccountResult> r) {
    *results = std::move(r);
    done.set_value(s);
  });
  return wait(f);
}

void Engine::submit_transfers(std::vector<Transfer> transfers, TransferCallback callback) {
  impl_->submit(std::move(transfers), std::move(callback), /*workflow=*/false);
}

void Engine::Impl::submit(std::vector<Transfer> transfers, TransferCallback callback, bool workflow,
                          std::uint64_t lots_as_of) {
  Impl& core = *this;
  const std::size_t n = transfers.size();
  if (core.stopping.load()) return callback(Status::shutting_down("engine is closing"), {});
  if (core.journal->failed()) {
    return callback(Status::io_error("the event log failed; reopen the data dir"), {});
  }
  if (n > core.options.batch_items_max) {
    return callback(Status::invalid_argument("batch of " + std::to_string(n) +
                                             " transfers is over batch_items_max " +
                                             std::to_string(core.options.batch_items_max)),
                    {});
  }
  if (n == 0) return callback(Status::ok(), {});
  const std::uint64_t before = core.inflight.fetch_add(n);
  // Workflows are bounded by their own limit; a step half done must not be refused here.
  if (!workflow && before + n > core.options.inflight_transfers_max) {
    core.inflight.fetch_sub(n);
    return callback(Status::overloaded("too many transfers in flight; retry with the same ids"),
                    {});
  }
  auto* batch = new engine::TransferBatch(n, std::move(callback), &core.inflight);
  batch->workflow = workflow;
  batch->lots_as_of = lots_as_of;

  struct Route {
    engine::AccountEntry* debit;
    engine::AccountEntry* credit;
    std::uint32_t index;
    bool credit_closed;
  };
  std::vector<Route> routes;
  routes.reserve(n);
  std::uint32_t answered = 0;
  // The checks without accounts first; then every account of the batch is looked up at once
  // (their cache misses overlap: a lookup one at a time was the largest item of routing).
  std::vector<std::uint32_t> valid;
  valid.reserve(n);
  std::vector<AccountId> ids;
  ids.reserve(2 * n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const Transfer& t = transfers[i];
    TransferResult r = domain::validate_transfer(t);
    if (r == TransferResult::ok && !workflow) r = domain::check_client_transfer(t);
    if (r != TransferResult::ok) {
      batch->set(i, {r, 0, 0});
      ++answered;
      continue;
    }
    valid.push_back(i);
    ids.push_back(t.debit_account);
    if (t.credit_account != 0) ids.push_back(t.credit_account);
  }
  std::vector<engine::AccountEntry*> entries(ids.size());
  core.directory.find_many(ids.data(), ids.size(), entries.data());
  std::size_t next_entry = 0;
  for (const std::uint32_t i : valid) {
    const Transfer& t = transfers[i];
    engine::AccountEntry* debit = entries[next_entry++];
    engine::AccountEntry* credit = t.credit_account != 0 ? entries[next_entry++] : nullptr;
    const TransferResult r =
        domain::check_accounts(t, debit ? &debit->spec : nullptr, credit ? &credit->spec : nullptr);
    if (r != TransferResult::ok) {
      if (debit != nullptr) debit->unpin();
      if (credit != nullptr) credit->unpin();
      batch->set(i, {r, 0, 0});
      ++answered;
      continue;
    }
    const bool credit_closed = credit != nullptr && credit->closed.load(std::memory_order_acquire);
    routes.push_back({debit, credit, i, credit_closed});
  }
  std::stable_sort(routes.begin(), routes.end(),
                   [](const Route& a, const Route& b) { return a.debit < b.debit; });
  // Count the answered items down last: until then the batch cannot finish under our feet.
  // Each route holds a pin on both entries: the credit's travels in the message (the debit
  // actor releases it), the debit's is released once the message is in its mailbox.
  for (std::size_t begin = 0; begin < routes.size();) {
    std::size_t end = begin;
    actors::DebitBatch msg;
    while (end < routes.size() && routes[end].debit == routes[begin].debit) {
      const Route& r = routes[end];
      msg.items.push_back({transfers[r.index], batch, r.index, r.credit_closed, r.credit});
      ++end;
    }
    engine::AccountEntry* debit = routes[begin].debit;
    caf::anon_send(core.actor_of(*debit), std::move(msg));
    debit->unpin(static_cast<std::uint32_t>(end - begin));
    begin = end;
  }
  if (answered > 0) batch->count_down(answered);
}

Status Engine::submit_transfers(std::vector<Transfer> transfers,
                                std::vector<TransferOutcome>* outcomes) {
  std::promise<Status> done;
  std::future<Status> f = done.get_future();
  submit_transfers(std::move(transfers), [&](const Status& s, std::vector<TransferOutcome> o) {
    *outcomes = std::move(o);
    done.set_value(s);
  });
  return wait(f);
}

Status Engine::close_account(AccountId id, CloseResult* result, Account* account) {
  std::promise<Status> done;
  std::future<Status> f = done.get_future();
  close_account(id, [&](const Status& s, CloseOutcome outcome) {
    *result = outcome.result;
    *account = outcome.account;
    done.set_value(s);
  });
  return wait(f);
}

void Engine::close_account(AccountId id, ResultCallback<CloseOutcome> callback) {
  Impl& core = *impl_;
  if (core.stopping.load()) return callback(Status::shutting_down("engine is closing"), {});
  engine::AccountEntry* entry = core.directory.find(id);
  if (entry == nullptr) {
    CloseOutcome outcome;
    outcome.result = CloseResult::account_not_found;
    return callback(Status::ok(), std::move(outcome));
  }
  // The pin find() took is held until the answer. The close chunk raises the entry's
  // last_position to the close event before it answers (a repeated close answers behind the
  // first one's), so last_position is then a position that shows the account closed.
  caf::anon_send(core.actor_of(*entry),
                 actors::CloseRequest{[entry, callback = std::move(callback)](
                                          const Status& s, CloseResult r, const Account& a) {
                   CloseOutcome outcome{r, a, 0};
                   if (s.is_ok() && r == CloseResult::ok) {
                     outcome.position = entry->last_position.load(std::memory_order_acquire);
                   }
                   entry->unpin();
                   callback(s, std::move(outcome));
                 }});
}

Status Engine::lookup_accounts(const std::vector<AccountId>& ids,
                               std::vector<std::optional<Account>>* accounts) {
  Impl& core = *impl_;
  if (core.stopping.load()) return Status::shutting_down("engine is closing");
  accounts->assign(ids.size(), std::nullopt);
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t waiting = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    engine::AccountEntry* entry = core.directory.find(ids[i]);
    if (entry == nullptr) continue;
    std::unique_lock<std::mutex> entry_lock(entry->mutex);
    if (!entry->actor) {
      (*accounts)[i] = entry->dormant->account;
      entry_lock.unlock();
      entry->unpin();
      continue;
    }
    caf::actor actor = entry->actor;
    entry_lock.unlock();
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++waiting;
    }
    caf::anon_send(actor, actors::LookupAccount{[&, i](const Account& a) {
                     std::lock_guard<std::mutex> lock(mutex);
                     (*accounts)[i] = a;
                     if (--waiting == 0) cv.notify_one();
                   }});
    entry->unpin();
  }
  std::unique_lock<std::mutex> lock(mutex);
  cv.wait(lock, [&] { return waiting == 0; });
  return Status::ok();
}

Status Engine::lookup_transfer(AccountId debit_account, TransferId id,
                               std::optional<TransferInfo>* transfer) {
  return impl_->lookup_transfer(debit_account, id, transfer);
}

Status Engine::Impl::lookup_transfer(AccountId debit_account, TransferId id,
                                     std::optional<TransferInfo>* transfer) {
  Impl& core = *this;
  if (core.stopping.load()) return Status::shutting_down("engine is closing");
  *transfer = std::nullopt;
  engine::AccountEntry* entry = core.directory.find(debit_account);
  if (entry == nullptr) return Status::ok();
  std::unique_lock<std::mutex> entry_lock(entry->mutex);
  if (!entry->actor) {
    Status s =
        engine::load_records(*core.read_model, *entry->dormant, {id, 0}, &core.records_loaded);
    const auto& transfers = entry->dormant->transfers;
    const auto it = transfers.find(id);
    if (s.is_ok() && it != transfers.end() && it->second.committed) {
      *transfer = domain::transfer_info(it->second);
    }
    entry_lock.unlock();
    entry->unpin();
    return s;
  }
  caf::actor actor = entry->actor;
  entry_lock.unlock();
  std::promise<std::optional<TransferInfo>> done;
  std::future<std::optional<TransferInfo>> f = done.get_future();
  caf::anon_send(
      actor, actors::LookupTransfer{id, [&](std::optional<TransferInfo> t) { done.set_value(t); }});
  entry->unpin();
  *transfer = wait(f);
  return Status::ok();
}

EngineStats Engine::stats() const {
  const Impl& core = *impl_;
  EngineStats s;
  {
    std::lock_guard<std::mutex> lock(core.ledgers_mutex);
    s.ledgers = core.ledgers.size();
  }
  s.accounts = core.account_count.load();
  s.accounts_in_memory = core.directory.size();
  s.transfer_records_loaded = core.records_loaded.load();
  s.account_records_cap = core.records_cap.load(std::memory_order_relaxed);
  s.direct_credits = core.direct_credits.load(std::memory_order_relaxed);
  s.accounts_passivated = core.passivated.load();
  s.log_failed = core.journal->failed();
  s.read_models_failed = !core.projector->failure().is_ok();
  s.recovered_events = core.recovered_events;
  s.recovery_ms = core.recovery_ms;
  const store::JournalStats js = core.journal->stats();
  s.committed_position = js.committed_position;
  s.commit_groups = js.groups;
  s.committed_events = js.events;
  s.projected_position = core.projector->checkpoint();
  s.async_reads = core.reads->jobs();
  s.inflight_transfers = core.inflight.load();
  s.live_account_actors = core.live_actors.load();
  s.open_processes = core.workflows->open_processes();
  s.payment_results_unknown = core.workflows->orders().unknown_results();
  s.payment_results_late = core.workflows->orders().late_results();
  return s;
}

}  // namespace pointex

// The expiry sweep (docs/expiry.md): finds the member accounts whose lots are due in the read
// models and has each one's actor expire them, with an id per account and day so that running
// it again (or after a crash) never expires twice.

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "domain/lots.hpp"
#include "engine/engine_impl.hpp"
#include "engine/log.hpp"
#include "engine/rebate_flow.hpp"
#include "engine/workflows.hpp"
#include "pointex/engine.hpp"
#include "store/journal.hpp"
#include "store/read_model.hpp"

namespace pointex {
namespace {
/// Passes of one sweep: the first over every account with lots, the others over the accounts
/// the previous one deferred.
constexpr int expiry_sweep_passes = 4;
}  // namespace

Status Engine::sweep_expired_points(ExpirySweepReport* report) {
  return impl_->sweep_expired_points(report);
}

void Engine::Impl::start_expiry_sweeper() {
  const std::uint32_t interval_s = options.expiry_sweep_interval_s;
  if (interval_s == 0) return;
  expiry_sweeper = std::thread([this, interval_s] {
    pthread_setname_np(pthread_self(), "pointex-expiry");
    std::unique_lock<std::mutex> lock(expiry_sweep_mutex);
    while (!expiry_sweep_wake.wait_for(lock, std::chrono::seconds(interval_s),
                                       [this] { return expiry_sweep_stopping; })) {
      lock.unlock();
      ExpirySweepReport r;
      const Status s = sweep_expired_points(&r);
      if (!s.is_ok()) {
        pointex::log().warn("expiry sweep: {}", s.to_string());
      } else if (r.accounts_due != 0) {
        pointex::log().info(
            "expiry sweep: {} accounts due, {} expired, {} already, {} nothing available, "
            "{} deferred",
            r.accounts_due, r.expired, r.already_expired, r.nothing_available, r.deferred);
      }
      lock.lock();
    }
  });
}

void Engine::Impl::stop_expiry_sweeper() {
  {
    std::lock_guard<std::mutex> lock(expiry_sweep_mutex);
    expiry_sweep_stopping = true;
  }
  expiry_sweep_wake.notify_one();
  if (expiry_sweeper.joinable()) expiry_sweeper.join();
}

Status Engine::Impl::sweep_expired_points(ExpirySweepReport* report) {
  Impl& core = *this;
  *report = ExpirySweepReport{};
  const std::uint64_t now = core.now();
  // Read models with everything committed so far; later debits are caught by the actors.
  Status s = core.wait_for_read_models(core.journal->stats().committed_position);
  if (!s.is_ok()) return s;
  std::uint64_t checkpoint = core.projector->checkpoint();

  // Ledgers whose points expire, and where to.
  std::vector<Ledger> ledgers;
  s = core.read_model->ledgers(&ledgers);
  if (!s.is_ok()) return s;
  std::unordered_map<LedgerId, AccountId> expiry_account;
  for (const Ledger& l : ledgers) {
    if (l.expiry_days == 0) continue;
    const std::optional<EarningRules> earning = workflows->rebates().rules(l.id);
    if (!earning || earning->expiry_account == 0) {
      ++report->ledgers_skipped;
      std::lock_guard<std::mutex> lock(core.expiry_sweep_mutex);
      if (core.expiry_sweep_skipped.insert(l.id).second) {
        pointex::log().warn(
            "expiry: ledger {} has expiry_days {} but no expiry account in its rules: "
            "its points are not expired",
            l.id, l.expiry_days);
      }
      continue;
    }
    expiry_account[l.id] = earning->expiry_account;
  }
  if (expiry_account.empty()) return Status::ok();

  // An account busy with debits when its expiry reaches it is deferred; a few more passes at
  // fresh checkpoints, reading only those accounts again, catch most of them this sweep.
  const auto expiry_of = [&](const Account& a, std::vector<Transfer>* due) {
    const auto it = expiry_account.find(a.spec.ledger);
    if (it == expiry_account.end() || a.spec.kind != AccountKind::member) return;
    const std::uint64_t amount = domain::lots_due(a.expiring, now);
    if (amount == 0) return;
    Transfer t;
    t.id = expiry_transfer_id(now / domain::lot_day_ns);
    t.debit_account = a.spec.id;
    t.credit_account = it->second;
    t.amount = amount;
    t.ledger = a.spec.ledger;
    t.code = expiry_transfer_code;
    t.flags = transfer_flags::balancing_debit;
    due->push_back(t);
  };
  std::vector<AccountId> deferred;
  for (int pass = 0; pass < expiry_sweep_passes; ++pass) {
    std::vector<Transfer> due;
    if (pass == 0) {
      s = core.read_model->accounts_with_lots([&](Account&& a) { expiry_of(a, &due); });
      if (!s.is_ok()) return s;
      report->accounts_due = due.size();
    } else {
      if (deferred.empty()) break;
      s = core.wait_for_read_models(core.journal->stats().committed_position);
      if (!s.is_ok()) return s;
      checkpoint = core.projector->checkpoint();
      for (const AccountId id : deferred) {
        std::optional<Account> a;
        s = core.read_model->account(id, &a);
        if (!s.is_ok()) return s;
        if (a) expiry_of(*a, &due);
      }
      deferred.clear();
    }
    if (!due.empty()) {
      pointex::log().info("expiry sweep: pass {}: {} accounts due, expiring", pass + 1, due.size());
    }
    // One transfer per batch: a deferred account fails its own batch only.
    std::mutex mutex;
    std::condition_variable done;
    std::size_t answered = 0;
    for (const Transfer& t : due) {
      core.submit(
          {t},
          [&, account = t.debit_account](const Status& status,
                                         std::vector<TransferOutcome> outcomes) {
            std::lock_guard<std::mutex> lock(mutex);
            if (!status.is_ok() || outcomes.size() != 1) {
              deferred.push_back(account);
            } else if (outcomes[0].result == TransferResult::ok) {
              ++report->expired;
            } else if (outcomes[0].result == TransferResult::exists ||
                       outcomes[0].result == TransferResult::exists_with_different_fields) {
              ++report->already_expired;
            } else {
              ++report->nothing_available;
            }
            ++answered;
            done.notify_one();
          },
          /*workflow=*/true, checkpoint);
    }
    std::unique_lock<std::mutex> lock(mutex);
    done.wait(lock, [&] { return answered == due.size(); });
    if (core.stopping.load()) break;
  }
  report->deferred = deferred.size();  // still busy after the last pass
  return Status::ok();
}

}  // namespace pointex

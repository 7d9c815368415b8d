// Offline audits of a data dir: rebuild the read models from the log, and verify that the log,
// the fold of its events and the read models agree and that the ledger's invariants hold.

#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include "domain/codec.hpp"
#include "domain/decide.hpp"
#include "domain/exchange.hpp"
#include "domain/order.hpp"
#include "domain/process.hpp"
#include "domain/rebate.hpp"
#include "domain/webhook.hpp"
#include "engine/log.hpp"
#include "engine/projector.hpp"
#include "pointex/engine.hpp"
#include "store/event_log.hpp"
#include "store/read_model.hpp"

namespace pointex {
namespace {

constexpr std::size_t problems_max = 100;
constexpr std::uint64_t progress_events = 1'000'000;

class Auditor {
 public:
  explicit Auditor(VerifyReport& report) : report_(report) {}

  /// Folds one event; false stops the scan (the log cannot be read on).
  bool fold(std::uint64_t position, std::string_view bytes) {
    domain::Event event;
    const domain::DecodeError err = domain::decode_event(bytes, &event);
    if (err != domain::DecodeError::none) {
      problem("event at position " + std::to_string(position) +
              " cannot be decoded: " + std::string(domain::to_string(err)));
      return false;
    }
    ++report_.events;
    if (report_.events % progress_events == 0) {
      log().info("verify: {} events, position {}", report_.events, position);
    }
    last_position_ = position;
    if (const auto* l = std::get_if<domain::LedgerCreated>(&event)) {
      ledgers_[l->ledger.id] = l->ledger;
    } else if (const auto* a = std::get_if<domain::AccountCreated>(&event)) {
      domain::AccountState& s = accounts_[a->spec.id];
      s.account.spec = a->spec;
      s.account.timestamp = a->timestamp;
      const auto ledger = ledgers_.find(a->spec.ledger);
      if (ledger == ledgers_.end()) {
        problem("account " + std::to_string(a->spec.id) + " names an unknown ledger");
        return false;
      }
      lot_expiry_ns_[a->spec.id] = domain::account_lot_expiry_ns(a->spec, ledger->second);
    } else if (const auto* c = std::get_if<domain::AccountClosed>(&event)) {
      domain::apply_close(accounts_[c->id]);
    } else if (const auto* p = std::get_if<domain::ProcessStepped>(&event)) {
      fold_process_step(position, *p);
    } else if (const auto* r = std::get_if<domain::RateSet>(&event)) {
      rates_[{r->rate.from_ledger, r->rate.to_ledger}] = r->rate;
    } else if (const auto* r = std::get_if<domain::RulesSet>(&event)) {
      rules_[r->rules.ledger] = r->rules;
    } else if (domain::is_webhook_event(event)) {
      domain::apply_webhook_event(webhooks_, position, event);
    } else {
      const auto& t = std::get<domain::TransferEvent>(event);
      const auto debit = accounts_.find(t.debit_account);
      const auto credit = accounts_.find(t.credit_account);
      if (debit == accounts_.end() || credit == accounts_.end()) {
        problem("transfer at position " + std::to_string(position) + " names an unknown account");
        return false;
      }
      domain::evolve(debit->second, t, position);
      domain::evolve(credit->second, t, position);
      domain::apply_lots(debit->second.account, lot_expiry_ns_[t.debit_account], t);
      domain::apply_lots(credit->second.account, lot_expiry_ns_[t.credit_account], t);
    }
    return true;
  }

  void fold_process_step(std::uint64_t position, const domain::ProcessStepped& step) {
    domain::ProcessRecord& record = processes_[{step.kind, step.id}];
    record.kind = step.kind;
    record.id = step.id;
    if (counter_window_.advance(step.timestamp)) counter_window_.prune(counters_);
    domain::apply_counter_deltas(counters_,
                                 counter_window_.kept(domain::step_counter_deltas(record, step)));
    domain::append_step(record, step, position);
  }

  /// The legs of every exchange agree with its steps: never one posted without the other.
  void check_exchanges() {
    for (const auto& [key, record] : processes_) {
      if (key.first != domain::ProcessKind::exchange) continue;
      const std::string name = "exchange " + std::to_string(key.second);
      domain::ExchangeState st;
      if (domain::fold_exchange(record, &st) != domain::DecodeError::none) {
        problem(name + ": its steps cannot be folded");
        continue;
      }
      ++report_.exchanges;
      if (st.step != ExchangeStep::completed) ++report_.open_exchanges;
      const auto legs = domain::exchange_legs(st.started);
      int posted = 0;
      int pending = 0;
      for (const Transfer& leg : legs) {
        const auto a = accounts_.find(leg.debit_account);
        if (a == accounts_.end()) continue;
        const auto t = a->second.transfers.find(leg.id);
        if (t == a->second.transfers.end() || t->second.event.request != leg) continue;
        posted += t->second.state == TransferState::posted ? 1 : 0;
        pending += t->second.state == TransferState::pending ? 1 : 0;
      }
      const bool commit = st.step != ExchangeStep::started && st.decided.commit;
      if (st.step == ExchangeStep::completed && commit && posted != 2) {
        problem(name + ": completed ok but " + std::to_string(posted) + " of 2 legs posted");
      }
      if (st.step == ExchangeStep::completed && !commit && (posted != 0 || pending != 0)) {
        problem(name + ": aborted but a leg is posted or still pending");
      }
      if (!commit && posted != 0) problem(name + ": a leg is posted without a commit");
    }
  }

  /// The reservation of every order agrees with its steps: posted only once it was decided
  /// paid; completed orders hold nothing pending; a reservation only after `started`.
  void check_orders() {
    for (const auto& [key, record] : processes_) {
      if (key.first != domain::ProcessKind::order) continue;
      const std::string name = "order " + std::to_string(key.second);
      domain::OrderState st;
      if (domain::fold_order(record, &st) != domain::DecodeError::none) {
        problem(name + ": its steps cannot be folded");
        continue;
      }
      ++report_.orders;
      if (!st.completed) ++report_.open_orders;
      const Transfer reservation = domain::order_reservation(st.started);
      std::optional<TransferState> state;
      if (const auto a = accounts_.find(reservation.debit_account); a != accounts_.end()) {
        const auto t = a->second.transfers.find(reservation.id);
        if (t != a->second.transfers.end() && t->second.event.request == reservation) {
          state = t->second.state;
        }
      }
      const bool paid = st.decided && st.decision.status == OrderStatus::completed;
      if (state == TransferState::posted && !paid) problem(name + ": points posted, not paid");
      if (st.completed && paid && state != TransferState::posted) {
        problem(name + ": completed paid but its points are not posted");
      }
      if (st.completed && !paid && state && state != TransferState::voided) {
        problem(name + ": finished unpaid but its points are not voided");
      }
      if (st.reserved && !state) problem(name + ": reserved but there is no reservation");
    }
  }

  /// A committed transfer of the fold (null: none with that id on that debit account).
  const domain::TransferRecord* committed(AccountId debit, TransferId id) const {
    const auto a = accounts_.find(debit);
    if (a == accounts_.end()) return nullptr;
    const auto t = a->second.transfers.find(id);
    return t == a->second.transfers.end() ? nullptr : &t->second;
  }

  /// The credit of every purchase agrees with its steps: posted (the points due) only when
  /// decided available, voided when refunded, none when it failed or earned nothing; every
  /// clawback done moved exactly what it recorded.
  void check_purchases() {
    for (const auto& [key, record] : processes_) {
      if (key.first != domain::ProcessKind::rebate) continue;
      const std::string name = "purchase " + std::to_string(key.second);
      domain::PurchaseState st;
      if (domain::fold_purchase(record, &st) != domain::DecodeError::none) {
        problem(name + ": its steps cannot be folded");
        continue;
      }
      ++report_.purchases;
      if (!domain::purchase_finished(record)) ++report_.open_purchases;
      const Transfer credit = domain::purchase_credit(st.started);
      const domain::TransferRecord* c = committed(credit.debit_account, credit.id);
      if (c != nullptr && c->event.request != credit) c = nullptr;
      if (st.credited && c == nullptr) problem(name + ": credited but there is no credit");
      if (!st.credited && c != nullptr) problem(name + ": a credit without its step");
      if (st.completed && c != nullptr) {
        const PurchaseStatus s = st.decision.status;
        if (s == PurchaseStatus::available) {
          const Transfer post =
              domain::purchase_resolution(st.started, true, st.decision.points_posted);
          const domain::TransferRecord* p = committed(post.debit_account, post.id);
          if (c->state != TransferState::posted || p == nullptr ||
              p->event.amount != st.decision.points_posted) {
            problem(name + ": completed available but its points due are not posted");
          }
        } else if (c->state != TransferState::voided) {
          problem(name + ": completed " + std::string(to_string(s)) + " but not voided");
        }
      }
      if (c != nullptr && c->state == TransferState::posted &&
          !(st.decided && st.decision.status == PurchaseStatus::available)) {
        problem(name + ": points posted without a decision to post");
      }
      for (const RefundInfo& r : st.refunds) {
        if (!r.clawback || !r.done) continue;
        const domain::TransferRecord* t =
            committed(st.started.request.member_account, r.clawback_transfer_id);
        const std::uint64_t moved = t != nullptr ? t->event.amount : 0;
        if (moved != r.clawed_back) {
          problem(name + ": refund " + std::to_string(r.id) + " recorded " +
                  std::to_string(r.clawed_back) + " clawed back, its transfer moved " +
                  std::to_string(moved));
        }
      }
    }
  }

  void check_invariants() {
    check_exchanges();
    check_orders();
    check_purchases();
    struct Sums {
      std::int64_t balance = 0;
      std::uint64_t debits_pending = 0;
      std::uint64_t credits_pending = 0;
    };
    std::map<LedgerId, Sums> sums;
    std::unordered_map<AccountId, std::uint64_t> open_debits;
    std::unordered_map<AccountId, std::uint64_t> open_credits;
    for (const auto& [id, s] : accounts_) {
      const Account& a = s.account;
      Sums& l = sums[a.spec.ledger];
      l.balance += a.balance();
      l.debits_pending += a.debits_pending;
      l.credits_pending += a.credits_pending;
      const std::uint32_t f = a.spec.flags;
      if ((f & account_flags::debits_must_not_exceed_credits) != 0 &&
          a.debits_posted + a.debits_pending > a.credits_posted) {
        problem("account " + std::to_string(id) + " has debits over its credits");
      }
      if ((f & account_flags::credits_must_not_exceed_debits) != 0 &&
          a.credits_posted + a.credits_pending > a.debits_posted) {
        problem("account " + std::to_string(id) + " has credits over its debits");
      }
      for (const auto& [tid, r] : s.transfers) {
        if (r.event.kind == TransferKind::pending && r.state == TransferState::pending) {
          ++report_.open_pending_transfers;
          open_debits[r.event.debit_account] += r.event.amount;
          open_credits[r.event.credit_account] += r.event.amount;
        }
      }
    }
    for (const auto& [ledger, l] : sums) {
      if (l.balance != 0) {
        problem("ledger " + std::to_string(ledger) + ": balances sum to " +
                std::to_string(l.balance) + ", not 0");
      }
      if (l.debits_pending != l.credits_pending) {
        problem("ledger " + std::to_string(ledger) + ": debits pending " +
                std::to_string(l.debits_pending) + " != credits pending " +
                std::to_string(l.credits_pending));
      }
    }
    for (const auto& [id, s] : accounts_) {
      if (s.account.debits_pending != open_debits[id] ||
          s.account.credits_pending != open_credits[id]) {
        problem("account " + std::to_string(id) +
                ": pending amounts differ from its open pending transfers");
      }
    }
  }

  Status check_read_models(const store::ReadModel& rm) {
    std::uint64_t checkpoint = 0;
    Status s = rm.checkpoint(&checkpoint);
    if (!s.is_ok()) return s;
    if (checkpoint < last_position_) {
      problem("read models end at position " + std::to_string(checkpoint) + ", the log at " +
              std::to_string(last_position_) + " (open the engine to catch up, or rebuild)");
      return Status::ok();
    }
    // What recovery starts from: ledgers, the account count, open timeouts.
    std::vector<Ledger> ledgers;
    s = rm.ledgers(&ledgers);
    if (!s.is_ok()) return s;
    bool same_ledgers = ledgers.size() == ledgers_.size();
    for (const Ledger& l : ledgers) {
      const auto it = ledgers_.find(l.id);
      same_ledgers = same_ledgers && it != ledgers_.end() && it->second.same_definition(l) &&
                     it->second.timestamp == l.timestamp;
    }
    if (!same_ledgers) problem("ledgers: read model differs from the log");
    std::uint64_t count = 0;
    s = rm.account_count(&count);
    if (!s.is_ok()) return s;
    if (count != accounts_.size()) {
      problem("account count: read model says " + std::to_string(count) + ", the log " +
              std::to_string(accounts_.size()));
    }
    s = check_workflow_read_models(rm);
    if (!s.is_ok()) return s;
    s = check_webhook_read_models(rm);
    if (!s.is_ok()) return s;
    std::set<std::pair<AccountId, TransferId>> open_timeouts;
    for (const auto& [id, state] : accounts_) {
      for (const auto& [tid, r] : state.transfers) {
        if (r.state == TransferState::pending && r.event.expires_at != 0) {
          open_timeouts.insert({id, tid});
        }
      }
    }
    std::set<std::pair<AccountId, TransferId>> indexed;
    s = rm.expiries([&](AccountId debit, TransferId id, std::uint64_t) {
      indexed.insert({debit, id});
    });
    if (!s.is_ok()) return s;
    if (indexed != open_timeouts) {
      problem("pending timeouts: the read models index " + std::to_string(indexed.size()) +
              ", the log has " + std::to_string(open_timeouts.size()) + " open");
    }
    for (const auto& [id, state] : accounts_) {
      std::optional<Account> a;
      std::uint64_t debit_transfers = 0;
      s = rm.account(id, &a, nullptr, &debit_transfers);
      if (!s.is_ok()) return s;
      if (!a || !same_account(*a, state.account) || debit_transfers != state.transfers.size()) {
        problem("account " + std::to_string(id) + ": read model differs from its events");
      }
      for (const auto& [tid, r] : state.transfers) {
        std::optional<TransferInfo> t;
        s = rm.transfer(id, tid, &t);
        if (!s.is_ok()) return s;
        if (!t || !same_transfer(*t, domain::transfer_info(r))) {
          problem("transfer " + std::to_string(tid) + " of account " + std::to_string(id) +
                  ": read model differs from its events");
        }
      }
    }
    return Status::ok();
  }

  /// Webhook subscriptions (definitions, cursors, dead letters) equal the log's fold.
  Status check_webhook_read_models(const store::ReadModel& rm) {
    domain::WebhookTable stored;
    const Status s = rm.webhooks(&stored);
    if (!s.is_ok()) return s;
    if (stored != webhooks_) problem("webhooks: read model differs from the log");
    return Status::ok();
  }

  /// Rates, process records, the open-process index and the counters equal the log's fold.
  Status check_workflow_read_models(const store::ReadModel& rm) {
    std::vector<Rate> rates;
    Status s = rm.rates(&rates);
    if (!s.is_ok()) return s;
    bool same_rates = rates.size() == rates_.size();
    for (const Rate& r : rates) {
      const auto it = rates_.find({r.from_ledger, r.to_ledger});
      same_rates = same_rates && it != rates_.end() && it->second.same_definition(r) &&
                   it->second.timestamp == r.timestamp;
    }
    if (!same_rates) problem("rates: read model differs from the log");
    std::vector<EarningRules> rules;
    s = rm.rules(&rules);
    if (!s.is_ok()) return s;
    bool same_rules = rules.size() == rules_.size();
    for (const EarningRules& r : rules) {
      const auto it = rules_.find(r.ledger);
      same_rules = same_rules && it != rules_.end() && it->second.same_definition(r) &&
                   it->second.timestamp == r.timestamp;
    }
    if (!same_rules) problem("earning rules: read model differs from the log");
    std::set<std::pair<domain::ProcessKind, std::uint64_t>> open_in_log;
    for (const auto& [key, record] : processes_) {
      std::optional<domain::ProcessRecord> stored;
      s = rm.process(key.first, key.second, &stored);
      if (!s.is_ok()) return s;
      if (!stored ||
          domain::encode_process_record(*stored) != domain::encode_process_record(record)) {
        problem("process " + std::to_string(static_cast<int>(key.first)) + ":" +
                std::to_string(key.second) + ": read model differs from the log");
      }
      if (!domain::process_finished(record)) open_in_log.insert(key);
    }
    std::vector<domain::ProcessRecord> open;
    s = rm.open_processes(&open);
    if (!s.is_ok()) return s;
    std::set<std::pair<domain::ProcessKind, std::uint64_t>> open_in_rm;
    for (const domain::ProcessRecord& r : open) open_in_rm.insert({r.kind, r.id});
    if (open_in_rm != open_in_log) problem("open processes: read model differs from the log");
    domain::CounterTable stored_counters;
    s = rm.counters(0,
                    [&](const domain::CounterKey& k, std::uint64_t v) { stored_counters[k] = v; });
    if (!s.is_ok()) return s;
    domain::CounterTable nonzero;
    for (const auto& [k, v] : counters_) {
      if (v != 0) nonzero[k] = v;
    }
    if (stored_counters != nonzero) problem("exchange caps: read model differs from the log");
    return Status::ok();
  }

  void problem(std::string text) {
    if (report_.problems.size() < problems_max) report_.problems.push_back(std::move(text));
  }

  void finish() {
    report_.ledgers = ledgers_.size();
    report_.accounts = accounts_.size();
    report_.ok = report_.problems.empty();
  }

 private:
  static bool same_account(const Account& a, const Account& b) {
    return a.spec == b.spec && a.debits_posted == b.debits_posted &&
           a.credits_posted == b.credits_posted && a.debits_pending == b.debits_pending &&
           a.credits_pending == b.credits_pending && a.timestamp == b.timestamp &&
           a.expiring == b.expiring;
  }
  static bool same_transfer(const TransferInfo& a, const TransferInfo& b) {
    return a.request == b.request && a.debit_account == b.debit_account &&
           a.credit_account == b.credit_account && a.ledger == b.ledger && a.code == b.code &&
           a.amount == b.amount && a.state == b.state && a.expires_at == b.expires_at &&
           a.timestamp == b.timestamp && a.position == b.position;
  }
  VerifyReport& report_;
  std::map<LedgerId, Ledger> ledgers_;
  /// Per account: domain::account_lot_expiry_ns (0: no lots).
  std::unordered_map<AccountId, std::uint64_t> lot_expiry_ns_;
  std::unordered_map<AccountId, domain::AccountState> accounts_;
  std::uint64_t last_position_ = 0;
  std::map<std::pair<LedgerId, LedgerId>, Rate> rates_;
  std::map<LedgerId, EarningRules> rules_;
  domain::WebhookTable webhooks_;
  std::map<std::pair<domain::ProcessKind, std::uint64_t>, domain::ProcessRecord> processes_;
  domain::CounterTable counters_;
  domain::CounterWindow counter_window_;
};

}  // namespace

Status Engine::verify(const std::string& data_dir, VerifyReport* report) {
  *report = VerifyReport{};
  std::unique_ptr<store::EventLog> event_log;
  Status s = store::EventLog::open(data_dir, &event_log);
  if (!s.is_ok()) return s;
  log().info("verify: folding the event log of {}", data_dir);
  Auditor auditor(*report);
  s = event_log->scan(1, [&](std::uint64_t position, std::string_view bytes) {
    return auditor.fold(position, bytes);
  });
  if (!s.is_ok()) return s;
  auditor.check_invariants();
  // Read-only: an audit changes nothing, not even read models in another format (an open
  // by the engine would drop and rebuild them).
  std::unique_ptr<store::ReadModel> read_model;
  s = store::ReadModel::open_read_only(data_dir, &read_model);
  if (s.is_ok()) {
    s = auditor.check_read_models(*read_model);
    if (!s.is_ok()) return s;
  } else {
    auditor.problem("read models cannot be checked (" + s.message() +
                    "): opening the engine or `pointex rebuild` rebuilds them");
  }
  auditor.finish();
  log().info("verify: {} events, {} accounts, {} problems", report->events, report->accounts,
             report->problems.size());
  return Status::ok();
}

Status Engine::rebuild_read_models(const std::string& data_dir) {
  std::unique_ptr<store::EventLog> event_log;
  Status s = store::EventLog::open(data_dir, &event_log);
  if (!s.is_ok()) return s;
  const auto started = std::chrono::steady_clock::now();
  std::unique_ptr<store::ReadModel> read_model;
  s = store::ReadModel::open(data_dir, &read_model);
  if (!s.is_ok()) return s;
  s = read_model->drop_all();
  if (!s.is_ok()) return s;
  log().info("rebuild: read models dropped, replaying the event log");
  engine::Projector projector(*read_model, *event_log);
  s = projector.catch_up(progress_events);
  if (!s.is_ok()) return s;
  log().info("rebuild: done at position {} in {} ms", projector.checkpoint(),
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - started)
                 .count());
  return Status::ok();
}

}  // namespace pointex

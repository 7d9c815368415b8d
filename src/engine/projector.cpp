#include "engine/projector.hpp"

#include <pthread.h>

#include <algorithm>

#include "domain/assert.hpp"
#include "domain/codec.hpp"
#include "domain/decide.hpp"
#include "engine/feed.hpp"
#include "engine/log.hpp"

namespace pointex::engine {
namespace {

constexpr std::uint64_t ns_per_day = 86'400ULL * 1'000'000'000ULL;
/// The account cache is dropped after a flush once it holds more than this many accounts
/// (everything in it is written by then, so it can be reloaded).
constexpr std::size_t cached_accounts_max = 1U << 20;

Status decode_at(std::uint64_t position, std::string_view bytes, domain::Event* event) {
  const domain::DecodeError err = domain::decode_event(bytes, event);
  if (err == domain::DecodeError::none) return Status::ok();
  return Status::corruption("event at position " + std::to_string(position) + ": " +
                            std::string(domain::to_string(err)));
}

}  // namespace

Projector::Projector(store::ReadModel& read_model, const store::EventLog& log)
    : read_model_(read_model),
      log_(log),
      writer_(std::make_unique<store::ReadModel::Writer>(read_model)) {}

Projector::~Projector() {
  stop();
}

Status Projector::load() {
  std::uint64_t from = 0;
  Status s = read_model_.checkpoint(&from);
  if (!s.is_ok()) return s;
  applied_position_ = from;
  s = read_model_.account_count(&account_count_);
  if (!s.is_ok()) return s;
  std::vector<Ledger> ledgers;
  s = read_model_.ledgers(&ledgers);
  if (!s.is_ok()) return s;
  for (Ledger& l : ledgers) ledgers_[l.id] = std::move(l);
  publish(from);
  return Status::ok();
}

Status Projector::catch_up(std::uint64_t progress_every) {
  Status s = load();
  if (!s.is_ok()) return s;
  const std::uint64_t from = applied_position_;
  std::uint64_t last = 0;
  s = log_.last_position(&last);
  if (!s.is_ok()) return s;
  if (last > from) log().info("read models: catching up from position {} to {}", from, last);
  Status failure;
  std::uint64_t count = 0;
  s = log_.scan(from + 1, [&](std::uint64_t position, std::string_view bytes) {
    failure = apply(position, bytes);
    if (failure.is_ok() && writer_->size() >= flush_events_max) {
      failure = flush();
      if (failure.is_ok()) publish(applied_position_);
      // Subscribers read this stretch from the log (they are told it is there).
      feed_events_.clear();
      if (feed_ != nullptr) feed_->notify();
    }
    if (++count % progress_every == 0) {
      log().info("read models: {} events, position {}/{}", count, position, last);
    }
    return failure.is_ok();
  });
  if (s.is_ok()) s = failure;
  if (s.is_ok()) s = flush();
  if (!s.is_ok()) return s;
  publish(applied_position_);
  return Status::ok();
}

void Projector::start(std::uint64_t progress_every) {
  thread_ = std::thread([this, progress_every] {
    // Normal priority: with the lag bounded (projection_lag_max) the projector is on the
    // commit path's critical path under sustained load; at nice 19 it starved and commits
    // stalled behind it (docs/performance.md).
    pthread_setname_np(pthread_self(), "pointex-project");
    const Status s = catch_up(progress_every);
    if (!s.is_ok()) return fail(s);
    run();
  });
}

void Projector::submit(CommittedGroup group) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // After a failure nothing drains the queue; the next open catches up from the log.
    if (!failure_.is_ok()) return;
    queue_.push_back(std::move(group));
  }
  wake_.notify_one();
}

void Projector::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool Projector::wait_for(std::uint64_t position, std::chrono::milliseconds timeout) {
  if (checkpoint() >= position) return true;
  std::unique_lock<std::mutex> lock(mutex_);
  return progressed_.wait_for(lock, timeout, [&] {
    return checkpoint_.load(std::memory_order_acquire) >= position || !failure_.is_ok();
  }) && failure_.is_ok();
}

void Projector::fail(const Status& status) {
  log().error("read models stopped: {}", status.to_string());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    failure_ = status;
    progressed_.notify_all();
  }
  if (on_progress_) on_progress_();
}

Status Projector::failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failure_;
}

void Projector::publish(std::uint64_t position) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    checkpoint_.store(position, std::memory_order_release);
  }
  progressed_.notify_all();
  if (on_progress_) on_progress_();
}

void Projector::run() {
  std::deque<CommittedGroup> work;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      const auto ready = [this] { return !queue_.empty() || stopping_; };
      if (!wake_.wait_for(lock, idle_trim_after, ready)) {
        // Idle: the write buffers a busy stretch grew go back (they are kept between writes).
        lock.unlock();
        writer_->trim();
        lock.lock();
        wake_.wait(lock, ready);
      }
      if (queue_.empty()) return;
      work.swap(queue_);
    }
    Status s;
    for (const CommittedGroup& group : work) {
      s = apply_group(group);
      // Publish as each flush lands, not once the whole backlog is applied: commits waiting
      // on the lag bound, and readers waiting on min_position, move on sooner.
      if (s.is_ok() && writer_->size() >= flush_events_max) s = flush_and_publish();
      if (!s.is_ok()) break;
    }
    work.clear();
    if (s.is_ok()) s = flush_and_publish();
    if (!s.is_ok()) return fail(s);
  }
}

Status Projector::flush_and_publish() {
  const Status s = flush();
  if (!s.is_ok()) return s;
  publish(applied_position_);
  if (feed_ != nullptr) {
    if (!feed_events_.empty()) feed_->publish(feed_events_);
    feed_events_.clear();
    feed_->notify();
  }
  return Status::ok();
}

Status Projector::apply_group(const CommittedGroup& group) {
  // In windows: decode a few dozen events, fetch the cached accounts they touch (spread over
  // all accounts, each a cache miss), then apply them.
  constexpr std::size_t window = 32;
  std::uint32_t begin = 0;
  for (std::size_t first = 0; first < group.ends.size(); first += window) {
    const std::size_t n = std::min(window, group.ends.size() - first);
    if (window_.size() < n) window_.resize(n);
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint32_t end = group.ends[first + k];
      const std::string_view bytes(group.bytes.data() + begin, end - begin);
      begin = end;
      const Status s = decode_at(group.first_position + first + k, bytes, &window_[k]);
      if (!s.is_ok()) return s;
    }
    prefetch_accounts(window_, n);
    for (std::size_t k = 0; k < n; ++k) {
      const Status s = apply_event(group.first_position + first + k, window_[k]);
      if (!s.is_ok()) return s;
    }
  }
  return Status::ok();
}

void Projector::prefetch_accounts(const std::vector<domain::Event>& events, std::size_t n) {
  window_ids_.clear();
  for (std::size_t k = 0; k < n; ++k) {
    if (const auto* t = std::get_if<domain::TransferEvent>(&events[k])) {
      window_ids_.push_back(t->debit_account);
      window_ids_.push_back(t->credit_account);
    }
  }
  window_found_.resize(window_ids_.size());
  accounts_.find_many(window_ids_.data(), window_ids_.size(), window_found_.data());
  // find_many fetched each account's first line; the balances are further in.
  for (const auto& it : window_found_) {
    if (it != accounts_.end()) __builtin_prefetch(&it->second.account.debits_posted);
  }
}

Status Projector::apply(std::uint64_t position, std::string_view bytes) {
  if (position <= applied_position_) return Status::ok();  // already in the read models
  domain::Event event;
  const Status s = decode_at(position, bytes, &event);
  return s.is_ok() ? apply_event(position, event) : s;
}

Status Projector::apply_event(std::uint64_t position, const domain::Event& event) {
  if (position <= applied_position_) return Status::ok();  // already in the read models
  Status s;
  if (const auto* t = std::get_if<domain::TransferEvent>(&event)) {
    s = apply_transfer(position, *t);
  } else if (const auto* l = std::get_if<domain::LedgerCreated>(&event)) {
    writer_->put_ledger(l->ledger);
    ledgers_[l->ledger.id] = l->ledger;
  } else if (const auto* a = std::get_if<domain::AccountCreated>(&event)) {
    ++account_count_;
    Cached& c = accounts_[a->spec.id];
    c.account = Account{};
    c.account.spec = a->spec;
    c.account.timestamp = a->timestamp;
    c.lot_expiry_ns = lot_expiry_ns(a->spec);
    c.last_position = position;
    mark_dirty(a->spec.id, c);
  } else if (const auto* closed = std::get_if<domain::AccountClosed>(&event)) {
    Cached* c = nullptr;
    s = account(closed->id, &c);
    if (s.is_ok()) {
      c->account.spec.flags |= account_flags::closed;
      c->last_position = position;
      mark_dirty(closed->id, *c);
    }
  } else if (const auto* rate = std::get_if<domain::RateSet>(&event)) {
    writer_->put_rate(rate->rate);
  } else if (const auto* rules = std::get_if<domain::RulesSet>(&event)) {
    writer_->put_rules(rules->rules);
  } else if (const auto* step = std::get_if<domain::ProcessStepped>(&event)) {
    s = apply_process_step(position, *step);
  } else if (domain::is_webhook_event(event)) {
    s = apply_webhook(position, event);
  }
  applied_position_ = position;
  if (s.is_ok() && feed_ != nullptr && feed_->wanted() && domain::in_feed(event)) {
    AccountBalances debit;
    AccountBalances credit;
    const AccountSpec* closed = nullptr;
    if (const auto* t = std::get_if<domain::TransferEvent>(&event)) {
      debit = balances_of(t->debit_account);
      credit = balances_of(t->credit_account);
    } else if (const auto* c = std::get_if<domain::AccountClosed>(&event)) {
      closed = &accounts_.at(c->id).account.spec;
    }
    feed_events_.push_back(make_feed_event(position, event, debit, credit, closed));
  }
  return s;
}

AccountBalances Projector::balances_of(AccountId id) const {
  const Account& a = accounts_.at(id).account;
  return {id, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending};
}

Status Projector::apply_transfer(std::uint64_t position, const domain::TransferEvent& e) {
  Cached* debit = nullptr;
  Cached* credit = nullptr;
  Status s = account(e.debit_account, &debit);
  const std::size_t cached = accounts_.size();
  if (s.is_ok()) s = account(e.credit_account, &credit);
  if (!s.is_ok()) return s;
  if (accounts_.size() != cached) debit = &accounts_.at(e.debit_account);  // moved by the load
  domain::apply_balances(debit->account, e);
  domain::apply_balances(credit->account, e);
  domain::apply_lots(debit->account, debit->lot_expiry_ns, e);
  domain::apply_lots(credit->account, credit->lot_expiry_ns, e);
  debit->last_position = credit->last_position = position;
  mark_dirty(e.debit_account, *debit);
  mark_dirty(e.credit_account, *credit);

  // The transfer itself, and the state of the pending transfer a post/void/expiry resolves.
  const TransferId state_id = e.request.id != 0 ? e.request.id : e.pending_id();
  if (e.request.id != 0) {
    ++debit->debit_transfers;
    if (e.kind == domain::TransferKind::pending && e.expires_at != 0) {
      writer_->put_expiry(e.debit_account, e.request.id, e.expires_at);
    }
    const TransferInfo info = domain::transfer_info(e, domain::state_after(e.kind), position);
    writer_->put_transfer(info);
    // Only a pending transfer is ever looked up again (by its post, void or expiry).
    if (e.kind == domain::TransferKind::pending) {
      unflushed_transfers_[{e.debit_account, e.request.id}] = info;
    }
  }
  if (e.is_two_phase_resolution()) {
    writer_->delete_expiry(e.debit_account, e.pending_id());
    TransferInfo pending;
    s = find_transfer(e.debit_account, e.pending_id(), &pending);
    if (!s.is_ok()) return s;
    pending.state = domain::state_after(e.kind);
    writer_->put_transfer(pending);
    unflushed_transfers_[{e.debit_account, e.pending_id()}] = pending;
  }

  for (Cached* c : {debit, credit}) {
    store::HistoryEntry h;
    h.position = position;
    h.timestamp = e.timestamp;
    h.debit_account = e.debit_account;
    h.transfer_id = state_id;
    h.kind = e.kind;
    h.code = e.code;
    h.amount = e.amount;
    h.after = {c->account.debits_posted, c->account.credits_posted, c->account.debits_pending,
               c->account.credits_pending};
    writer_->put_history(c->account.spec.id, h);
  }

  store::DayStats* stats = nullptr;
  s = day_stats(e.ledger, static_cast<std::uint32_t>(e.timestamp / ns_per_day), &stats);
  if (!s.is_ok()) return s;
  count_stats(e, debit->account, credit->account, *stats);
  return Status::ok();
}

void Projector::count_stats(const domain::TransferEvent& e, const Account& debit,
                            const Account& credit, store::DayStats& s) {
  if (e.request.id != 0) ++s.transfers;
  if (e.kind != domain::TransferKind::single && e.kind != domain::TransferKind::post) return;
  const bool from_issuer = debit.spec.kind == AccountKind::issuer;
  const bool to_issuer = credit.spec.kind == AccountKind::issuer;
  std::int64_t& outstanding = outstanding_[e.ledger];
  const auto amount = static_cast<std::int64_t>(e.amount);
  if (from_issuer && !to_issuer) {
    s.issued += e.amount;
    outstanding += amount;
  } else if (!from_issuer && to_issuer) {
    if (e.code == expiry_transfer_code) {
      s.expired += e.amount;
    } else {
      s.redeemed += e.amount;
    }
    outstanding -= amount;
  }
  s.outstanding = outstanding;
}

void Projector::mark_dirty(AccountId id, Cached& c) {
  if (c.dirty) return;
  c.dirty = true;
  dirty_accounts_.push_back(id);
}

Status Projector::account(AccountId id, Cached** out) {
  auto it = accounts_.find(id);
  if (it == accounts_.end()) {
    std::optional<Account> a;
    std::uint64_t last = 0;
    std::uint64_t debits = 0;
    const Status s = read_model_.account(id, &a, &last, &debits);
    if (!s.is_ok()) return s;
    if (!a)
      return Status::corruption("read models: event names account " + std::to_string(id) +
                                " that is not in them");
    const std::uint64_t expiry_ns = lot_expiry_ns(a->spec);
    it = accounts_.emplace(id, Cached{std::move(*a), last, debits, expiry_ns, false}).first;
  }
  *out = &it->second;
  return Status::ok();
}

std::uint64_t Projector::lot_expiry_ns(const AccountSpec& spec) const {
  const auto it = ledgers_.find(spec.ledger);
  POINTEX_ASSERT(it != ledgers_.end());  // an account is created after its ledger
  return domain::account_lot_expiry_ns(spec, it->second);
}

Status Projector::day_stats(LedgerId ledger, std::uint32_t day, store::DayStats** out) {
  const StatsKey key{ledger, day};
  auto it = stats_.find(key);
  if (it == stats_.end()) {
    std::vector<store::DayStats> days;
    Status s = read_model_.stats(ledger, day, day, &days);
    if (!s.is_ok()) return s;
    if (outstanding_.count(ledger) == 0) {
      std::optional<store::DayStats> latest;
      s = read_model_.latest_stats(ledger, &latest);
      if (!s.is_ok()) return s;
      outstanding_[ledger] = latest ? latest->outstanding : 0;
    }
    store::DayStats d = days.empty() ? store::DayStats{} : days.front();
    d.day = day;
    it = stats_.emplace(key, d).first;
  }
  dirty_stats_.insert(key);
  *out = &it->second;
  return Status::ok();
}

Status Projector::find_transfer(AccountId debit, TransferId id, TransferInfo* out) {
  const auto it = unflushed_transfers_.find({debit, id});
  if (it != unflushed_transfers_.end()) {
    *out = it->second;
    return Status::ok();
  }
  std::optional<TransferInfo> t;
  const Status s = read_model_.transfer(debit, id, &t);
  if (!s.is_ok()) return s;
  if (!t) return Status::corruption("read models: a post or void names a transfer not in them");
  *out = *t;
  return Status::ok();
}

Status Projector::flush() {
  // The dirty accounts are spread over the cache (uniform traffic: most of it); look them up
  // a window at a time so that their cache misses overlap.
  constexpr std::size_t window = 32;
  window_found_.resize(window);
  for (std::size_t first = 0; first < dirty_accounts_.size(); first += window) {
    const std::size_t n = std::min(window, dirty_accounts_.size() - first);
    accounts_.find_many(dirty_accounts_.data() + first, n, window_found_.data());
    for (std::size_t k = 0; k < n; ++k) {
      POINTEX_ASSERT(window_found_[k] != accounts_.end());
      Cached& c = window_found_[k]->second;
      writer_->put_account(c.account, c.last_position, c.debit_transfers);
      c.dirty = false;
    }
  }
  for (const StatsKey& k : dirty_stats_) writer_->put_stats(k.ledger, stats_.at(k));
  flush_processes();
  if (writer_->size() == 0) return Status::ok();
  writer_->set_checkpoint(applied_position_);
  writer_->set_account_count(account_count_);
  const Status s = read_model_.write(*writer_);
  if (!s.is_ok()) return s;
  writer_->clear();
  dirty_accounts_.clear();
  dirty_stats_.clear();
  unflushed_transfers_.clear();
  unflushed_processes_.clear();
  if (accounts_.size() > cached_accounts_max) accounts_.clear();
  if (counters_.size() > 4096) counters_.clear();
  if (stats_.size() > 4096) stats_.clear();
  return Status::ok();
}

}  // namespace pointex::engine

#include "engine/feed.hpp"

#include <pthread.h>

#include <algorithm>

#include "domain/codec.hpp"
#include "domain/decide.hpp"
#include "engine/log.hpp"
#include "engine/projector.hpp"

namespace pointex::engine {
namespace {

AccountBalances balances_of(AccountId id, const std::optional<store::HistoryEntry>& h) {
  AccountBalances b;
  b.account = id;
  if (h) {
    b.debits_posted = h->after.debits_posted;
    b.credits_posted = h->after.credits_posted;
    b.debits_pending = h->after.debits_pending;
    b.credits_pending = h->after.credits_pending;
  }
  return b;
}

/// The ledger an event belongs to (`closed`: the closed account's definition, for a close).
LedgerId ledger_of(const domain::Event& event, const std::optional<Account>& closed) {
  if (const auto* t = std::get_if<domain::TransferEvent>(&event)) return t->ledger;
  if (const auto* l = std::get_if<domain::LedgerCreated>(&event)) return l->ledger.id;
  if (const auto* a = std::get_if<domain::AccountCreated>(&event)) return a->spec.ledger;
  return closed ? closed->spec.ledger : 0;
}

}  // namespace

FeedEvent make_feed_event(std::uint64_t position, const domain::Event& event,
                          const AccountBalances& debit, const AccountBalances& credit,
                          const AccountSpec* closed) {
  FeedEvent f;
  f.position = position;
  f.timestamp = domain::event_timestamp(event);
  if (const auto* l = std::get_if<domain::LedgerCreated>(&event)) {
    f.type = FeedEvent::Type::ledger_created;
    f.ledger = l->ledger;
  } else if (const auto* a = std::get_if<domain::AccountCreated>(&event)) {
    f.type = FeedEvent::Type::account_created;
    f.account = a->spec;
  } else if (const auto* c = std::get_if<domain::AccountClosed>(&event)) {
    f.type = FeedEvent::Type::account_closed;
    if (closed != nullptr) f.account = *closed;
    f.account.id = c->id;
    f.account.flags |= account_flags::closed;
  } else {
    const auto& e = std::get<domain::TransferEvent>(event);
    f.type = FeedEvent::Type::transfer;
    f.kind = e.kind;
    f.transfer = domain::transfer_info(e, domain::state_after(e.kind), position);
    f.debit = debit;
    f.credit = credit;
  }
  return f;
}

class Feed::Sub final : public Subscription {
 public:
  Sub(Feed& feed, std::uint64_t after, FeedCallback callback)
      : feed_(feed), next_(after + 1), callback_(std::move(callback)) {}

  ~Sub() override {
    stop();
    feed_.remove(this);
  }

  std::uint64_t position() const override { return next_.load() - 1; }

  void start() {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "pointex-feed");
      run();
    });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  void offer(const std::vector<FeedEvent>& events) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (buffer_.size() + events.size() > feed_.buffer_max_) {
        buffer_.clear();  // too far behind: the gap is read from the log instead
        ++overflows_;
      }
      if (events.size() <= feed_.buffer_max_)
        buffer_.insert(buffer_.end(), events.begin(), events.end());
    }
    wake_.notify_one();
  }

  void poke() { wake_.notify_one(); }

 private:
  void run() {
    std::vector<FeedEvent> batch;
    for (;;) {
      batch.clear();
      {
        std::unique_lock<std::mutex> lock(mutex_);
        if (stopping_) return;
        const std::uint64_t next = next_.load();
        while (!buffer_.empty() && buffer_.front().position < next) buffer_.pop_front();
        if (!buffer_.empty() && buffer_.front().position == next) {
          while (!buffer_.empty() && batch.size() < feed_.batch_max_) {
            batch.push_back(std::move(buffer_.front()));
            buffer_.pop_front();
          }
        } else if (next > feed_.projector_.checkpoint()) {
          wake_.wait_for(lock, std::chrono::milliseconds(100));
          continue;
        }
      }
      if (batch.empty() && !catch_up(batch)) return;
      if (batch.empty()) continue;
      callback_(batch);
      next_.store(batch.back().position + 1);
    }
  }

  /// Reads the stretch the buffer lacks from the log. False on a read error (logged).
  bool catch_up(std::vector<FeedEvent>& batch) {
    const std::uint64_t next = next_.load();
    const std::uint64_t checkpoint = feed_.projector_.checkpoint();
    const Status s = feed_.read_log(next, checkpoint, &batch);
    if (!s.is_ok()) {
      log().error("feed subscription stopped: {}", s.to_string());
      return false;
    }
    // Positions may have a gap after a crash (never acknowledged): skip it.
    if (batch.empty()) next_.store(checkpoint + 1);
    return true;
  }

  Feed& feed_;
  std::atomic<std::uint64_t> next_;
  FeedCallback callback_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<FeedEvent> buffer_;
  std::uint64_t overflows_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

Feed::Feed(const store::EventLog& log, const store::ReadModel& read_model,
           const Projector& projector, std::uint32_t buffer_max, std::uint32_t batch_max)
    : log_(log),
      read_model_(read_model),
      projector_(projector),
      buffer_max_(buffer_max),
      batch_max_(batch_max) {}

Feed::~Feed() {
  stop_all();
}

std::unique_ptr<Subscription> Feed::subscribe(std::uint64_t after_position, FeedCallback callback) {
  auto sub = std::make_unique<Sub>(*this, after_position, std::move(callback));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    subs_.push_back(sub.get());
    subscribers_.store(subs_.size(), std::memory_order_release);
  }
  sub->start();
  return sub;
}

void Feed::remove(Sub* sub) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = subs_.begin(); it != subs_.end(); ++it) {
    if (*it == sub) {
      subs_.erase(it);
      break;
    }
  }
  subscribers_.store(subs_.size(), std::memory_order_release);
}

void Feed::publish(const std::vector<FeedEvent>& events) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Sub* sub : subs_) sub->offer(events);
}

void Feed::notify() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Sub* sub : subs_) sub->poke();
}

void Feed::stop_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Sub* sub : subs_) sub->stop();
}

Status Feed::read_log(std::uint64_t from, std::uint64_t to, std::vector<FeedEvent>* out,
                      std::size_t max) const {
  EventPage page;
  page.events = std::move(*out);
  const Status s = read_log_page(from, to, {}, max == 0 ? batch_max_ : max, 0, &page);
  *out = std::move(page.events);
  return s;
}

Status Feed::read_log_page(std::uint64_t from, std::uint64_t to,
                           const std::vector<LedgerId>& ledgers, std::size_t max,
                           std::uint64_t scan_max, EventPage* page) const {
  std::vector<FeedEvent>* out = &page->events;
  const std::size_t max_size = out->size() + max;
  std::uint64_t scanned = 0;
  Status failure;
  const Status s = log_.scan(from, [&](std::uint64_t position, std::string_view bytes) {
    if (position > to || out->size() >= max_size || (scan_max != 0 && scanned >= scan_max)) {
      return false;
    }
    ++scanned;
    page->next_after_position = position;
    domain::Event event;
    if (domain::decode_event(bytes, &event) != domain::DecodeError::none) {
      failure = Status::corruption("feed: event at position " + std::to_string(position));
      return false;
    }
    if (!domain::in_feed(event)) return true;  // rates and process steps
    std::optional<Account> closed;
    if (const auto* c = std::get_if<domain::AccountClosed>(&event)) {
      failure = read_model_.account(c->id, &closed);  // a definition never changes
      if (!failure.is_ok()) return false;
    }
    if (!ledgers.empty() &&
        !std::binary_search(ledgers.begin(), ledgers.end(), ledger_of(event, closed))) {
      return true;
    }
    AccountBalances debit;
    AccountBalances credit;
    if (const auto* t = std::get_if<domain::TransferEvent>(&event)) {
      std::optional<store::HistoryEntry> d;
      std::optional<store::HistoryEntry> c;
      failure = read_model_.history_at(t->debit_account, position, &d);
      if (failure.is_ok()) failure = read_model_.history_at(t->credit_account, position, &c);
      if (!failure.is_ok()) return false;
      debit = balances_of(t->debit_account, d);
      credit = balances_of(t->credit_account, c);
    }
    out->push_back(
        make_feed_event(position, event, debit, credit, closed ? &closed->spec : nullptr));
    return true;
  });
  return s.is_ok() ? failure : s;
}

}  // namespace pointex::engine

#pragma once
/// The event feed: subscriptions that deliver committed events in commit order, each with the
/// resulting balances of the accounts it touched.
///
/// Live events come from the projector, which has the balances at hand, once the read models
/// include them. Each subscription buffers at most `buffer_max` of them; when it falls further
/// behind it drops the buffer and reads the missing stretch from the log instead (balances from
/// the history read model), so a slow subscriber never slows writers nor misses an event. A gap
/// between what was delivered and the buffer is always filled from the log the same way.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "domain/events.hpp"
#include "pointex/engine.hpp"
#include "store/event_log.hpp"
#include "store/read_model.hpp"

namespace pointex::engine {

class Projector;

/// The feed form of one event. `debit`/`credit` are the accounts' balances after a transfer;
/// `closed` the closed account's definition (its ledger) for an account_closed event.
FeedEvent make_feed_event(std::uint64_t position, const domain::Event& event,
                          const AccountBalances& debit, const AccountBalances& credit,
                          const AccountSpec* closed = nullptr);

class Feed {
 public:
  Feed(const store::EventLog& log, const store::ReadModel& read_model, const Projector& projector,
       std::uint32_t buffer_max, std::uint32_t batch_max);
  ~Feed();

  /// Whether anyone listens (the projector builds feed events only then).
  bool wanted() const { return subscribers_.load(std::memory_order_acquire) > 0; }
  /// Projector thread: events the read models now include, in position order.
  void publish(const std::vector<FeedEvent>& events);
  std::unique_ptr<Subscription> subscribe(std::uint64_t after_position, FeedCallback callback);
  /// Wakes every subscription (the read models moved on without live events for them).
  void notify();
  /// Stops every subscription's thread (engine shutdown).
  void stop_all();
  /// Reads events [from, to] from the log, at most `max` (0: batch_max).
  Status read_log(std::uint64_t from, std::uint64_t to, std::vector<FeedEvent>* out,
                  std::size_t max = 0) const;
  /// Reads events [from, to] from the log into `page`: at most `max` of the ledgers in
  /// `ledgers` (sorted; empty: all), looking at no more than `scan_max` events (0: unbounded).
  /// Events of other ledgers are skipped before their balances are read.
  Status read_log_page(std::uint64_t from, std::uint64_t to, const std::vector<LedgerId>& ledgers,
                       std::size_t max, std::uint64_t scan_max, EventPage* page) const;

  class Sub;

 private:
  friend class Sub;
  void remove(Sub* sub);

  const store::EventLog& log_;
  const store::ReadModel& read_model_;
  const Projector& projector_;
  const std::uint32_t buffer_max_;
  const std::uint32_t batch_max_;
  std::mutex mutex_;
  std::vector<Sub*> subs_;
  std::atomic<std::size_t> subscribers_{0};
};

}  // namespace pointex::engine

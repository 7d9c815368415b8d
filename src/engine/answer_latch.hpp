#pragma once
/// The answer to a command whose caller makes its effect visible only after append() returns
/// (it needs the event's position or timestamp, or must publish after the event is in the log
/// so that what uses it is logged after it): a ledger, new accounts, a rate, earning rules.
///
/// The journal may make the event durable and answer before a preempted caller has published
/// it; an answer before that lets the client ask for what it was told exists and not find it
/// (a transfer got account_not_found, a PUT /v1/rates answered 500 "rate vanished"). So the
/// answer waits for two arrivals, the journal's (durable, or refused) and the caller's (done
/// publishing), and whichever is second answers. The caller arrives after releasing its own
/// locks: the answer may run on its thread, and a callback may call the engine again.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <pointex/engine.hpp>
#include <thread>
#include <utility>

#include "store/journal.hpp"

namespace pointex::engine {

class AnswerLatch {
 public:
  explicit AnswerLatch(std::function<void(const Status&)> answer) : answer_(std::move(answer)) {}
  /// The journal refused or failed the chunk (before the journal's arrival).
  void fail(const Status& status) {
    status_ = status;
    arrive();
  }
  void arrive() {
    if (arrivals_.fetch_add(1, std::memory_order_acq_rel) == 1) answer_(status_);
  }

 private:
  std::atomic<int> arrivals_{0};
  Status status_ = Status::ok();  // written before the first arrival that releases it
  std::function<void(const Status&)> answer_;
};

/// The journal chunk of such a command: its arrival is the chunk's durability or failure.
class LatchedChunk final : public store::JournalChunk {
 public:
  explicit LatchedChunk(std::shared_ptr<AnswerLatch> latch) : latch_(std::move(latch)) {}
  void on_durable() override { latch_->arrive(); }
  void on_failed(const Status& status) override { latch_->fail(status); }

 private:
  std::shared_ptr<AnswerLatch> latch_;
};

/// Fault injection (tests/engine_test_access.hpp): the caller's pause between append() and its
/// publication, the window a preemption opens.
inline void pause_before_publishing(const std::atomic<std::uint32_t>& delay_us) {
  const std::uint32_t us = delay_us.load(std::memory_order_relaxed);
  if (us != 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
}

/// Sets a definition that takes effect at once (a rate, earning rules): appends it as `Event`
/// and publishes it stamped with its timestamp; if `existing` is the same definition, appends
/// only a barrier that answers once the original is durable. The caller holds its
/// definitions' set mutex (so that `existing` is the latest and publications keep log order)
/// and calls arrive() on the returned latch once it has released it.
template <class Event, class Definition, class Publish, class Result>
[[nodiscard]] std::shared_ptr<AnswerLatch> append_definition(
    store::Journal& journal, const std::atomic<std::uint32_t>& delay_us,
    const Definition& definition, const std::optional<Definition>& existing, const Publish& publish,
    ResultCallback<Result> callback) {
  auto latch = std::make_shared<AnswerLatch>(
      [callback = std::move(callback)](const Status& s) { callback(s, Result::ok); });
  auto chunk = std::make_unique<LatchedChunk>(latch);
  if (existing && existing->same_definition(definition)) {
    journal.append(std::move(chunk));
    return latch;
  }
  chunk->events.emplace_back(Event{definition});
  Definition stored = definition;
  stored.timestamp = journal.append(std::move(chunk)).first_timestamp;
  if (stored.timestamp == 0) return latch;  // refused: the journal arrived with its failure
  pause_before_publishing(delay_us);
  publish(stored);
  return latch;
}

}  // namespace pointex::engine

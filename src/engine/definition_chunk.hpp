#pragma once
/// The journal chunk of a durable definition that takes effect at once (an exchange rate, a
/// ledger's earning rules), or of the barrier behind an identical one.
///
/// The caller publishes a new definition right after append() returns, so that what uses it is
/// logged after it; but the journal may make it durable and answer before a preempted caller
/// gets there. So the chunk publishes it too (stamped with its timestamp) before answering:
/// `publish` must ignore a definition older than the one it holds.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <pointex/engine.hpp>
#include <thread>

#include "store/journal.hpp"

namespace pointex::engine {

template <class Definition, class Result>
class DefinitionChunk final : public store::JournalChunk {
 public:
  ResultCallback<Result> callback;
  /// Empty for a barrier.
  std::function<void(const Definition&)> publish;
  Definition definition;

  void on_durable() override {
    if (publish) {
      Definition stored = definition;
      stored.timestamp = first_timestamp;
      publish(stored);
    }
    callback(Status::ok(), Result::ok);
  }
  void on_failed(const Status& status) override { callback(status, Result::ok); }
};

/// Fault injection (tests/engine_test_access.hpp): the caller's pause between append() and its
/// own publication, the window a preemption opens.
inline void pause_before_publishing(const std::atomic<std::uint32_t>& delay_us) {
  const std::uint32_t us = delay_us.load(std::memory_order_relaxed);
  if (us != 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
}

}  // namespace pointex::engine

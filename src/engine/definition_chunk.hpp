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
#include <memory>
#include <optional>
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

/// Sets a definition: appends it as `Event` and publishes it at once (what uses it is logged
/// after it) and again when durable, before answering (DefinitionChunk); if `existing` is the
/// same definition, appends only a barrier that answers once the original is durable. The
/// caller holds its definitions' set mutex, so that `existing` is the latest.
template <class Event, class Definition, class Publish, class Result>
void append_definition(store::Journal& journal, const std::atomic<std::uint32_t>& delay_us,
                       const Definition& definition, const std::optional<Definition>& existing,
                       const Publish& publish, ResultCallback<Result> callback) {
  auto chunk = std::make_unique<DefinitionChunk<Definition, Result>>();
  chunk->callback = std::move(callback);
  if (existing && existing->same_definition(definition)) {
    journal.append(std::move(chunk));
    return;
  }
  chunk->events.emplace_back(Event{definition});
  chunk->publish = publish;
  chunk->definition = definition;
  Definition stored = definition;
  stored.timestamp = journal.append(std::move(chunk)).first_timestamp;
  if (stored.timestamp == 0) return;  // refused: answered with the log's failure
  pause_before_publishing(delay_us);
  publish(stored);
}

}  // namespace pointex::engine

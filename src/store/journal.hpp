#pragma once
/// The journal: the one ordered writer of the event log, with group commit.
///
/// Actors append chunks (the events one message produced) without blocking: append() assigns
/// each event its position and timestamp under a short lock and queues the chunk. The writer
/// thread takes whatever has queued (up to `group_events_max` events), writes it as one
/// RocksDB WriteBatch with one sync, and then calls each chunk's on_durable() in queue order.
/// Because positions, timestamps and queue order are assigned together, the log's order is the
/// order of appends: an event appended after another (for instance a debit decided on a credit
/// that was appended first) can never be durable without it.
///
/// A failed write is fail-stop: that group and every later chunk get on_failed(), and append()
/// refuses from then on; the owner reopens the data dir to recover.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "domain/events.hpp"
#include "pointex/status.hpp"
#include "store/event_log.hpp"

namespace pointex::store {

/// The events of one append, and what to do once they are durable.
class JournalChunk {
 public:
  virtual ~JournalChunk() = default;
  std::vector<domain::Event> events;
  /// Set by append(): the position and timestamp of events[0]; event i has first + i.
  std::uint64_t first_position = 0;
  std::uint64_t first_timestamp = 0;

  /// Called on the writer thread once every event of this chunk (and of every chunk appended
  /// before it) is durable. A chunk without events is a barrier: it is answered once
  /// everything appended before it is durable.
  virtual void on_durable() = 0;
  /// Called instead when the events could not be written (on the writer thread, or on the
  /// appending thread if the journal had already failed).
  virtual void on_failed(const Status& status) = 0;
};

struct JournalOptions {
  bool sync = true;
  std::uint32_t group_events_max = 16384;
  /// Called once, on the writer thread, when a write fails (after the chunks' on_failed).
  std::function<void(const Status&)> on_failure;
  /// Called on the writer thread after each durable group, before its chunks' on_durable, with
  /// the group's first position, its encoded events back to back and each event's end offset.
  std::function<void(std::uint64_t, std::string, std::vector<std::uint32_t>)> on_group;
  /// Called on the writer thread before each group with the committed position; it may block
  /// (back-pressure: the engine waits there while the read models lag too far).
  std::function<void(std::uint64_t)> before_group;
};

struct JournalStats {
  std::uint64_t committed_position = 0;
  std::uint64_t groups = 0;
  std::uint64_t events = 0;
  std::uint64_t queued_events = 0;
};

class Journal {
 public:
  /// `next_position`: the first position to assign; `last_timestamp`: the highest timestamp
  /// already used; `clock_ns`: wall clock in Unix ns.
  Journal(EventLog& log, JournalOptions options, std::uint64_t next_position,
          std::uint64_t last_timestamp, std::function<std::uint64_t()> clock_ns);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  struct Appended {
    std::uint64_t first_position = 0;
    std::uint64_t first_timestamp = 0;
  };
  /// Assigns positions and timestamps to the chunk's events and queues it. Never blocks on
  /// I/O. If the journal has failed or stopped, calls chunk->on_failed() at once and returns
  /// zeros. The chunk belongs to the journal from then on: read what append() returns instead.
  Appended append(std::unique_ptr<JournalChunk> chunk);

  /// Writes what is queued, then stops the writer thread. Later appends fail.
  void stop();

  bool failed() const { return failed_.load(std::memory_order_acquire); }
  JournalStats stats() const;

 private:
  void run();
  void fail_all(std::vector<std::unique_ptr<JournalChunk>>& chunks, const Status& status);

  EventLog& log_;
  const JournalOptions options_;
  std::function<std::uint64_t()> clock_ns_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<JournalChunk>> queue_;
  std::uint64_t queued_events_ = 0;
  std::uint64_t next_position_;
  std::uint64_t last_timestamp_;
  bool stopping_ = false;
  Status failure_;

  std::atomic<bool> failed_{false};
  std::atomic<std::uint64_t> committed_position_{0};
  std::atomic<std::uint64_t> groups_{0};
  std::atomic<std::uint64_t> events_{0};
  std::thread writer_;
};

}  // namespace pointex::store

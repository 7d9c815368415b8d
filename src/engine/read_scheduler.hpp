#pragma once
/// Asynchronous reads of the read models: a job runs on one of a few reader threads once the
/// read models include its `min_position`, without a thread waiting per read.
///
/// Jobs that wait sit in a list ordered by position. The projector calls progressed() after it
/// publishes a checkpoint (or fails); that moves the jobs the checkpoint covers to the ready
/// queue. Every wait has the same bound (read_wait_ms_max), so deadlines come in submission
/// order: a FIFO of deadlines, watched by the reader threads themselves (they sleep until the
/// earliest one), answers the jobs whose position was not reached in time.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "pointex/status.hpp"

namespace pointex::engine {

class Projector;

class ReadScheduler {
 public:
  /// Runs on a reader thread with ok (the read models include the position), `timed_out`, the
  /// projector's failure, or `shutting_down` (the scheduler stopped before the position was
  /// reached). It may read the read models; it must not wait for anything else.
  using Job = std::function<void(const Status& status)>;

  ReadScheduler(const Projector& projector, std::uint32_t threads,
                std::chrono::milliseconds wait_max, std::uint32_t jobs_max);
  /// Stops (see stop()).
  ~ReadScheduler();
  ReadScheduler(const ReadScheduler&) = delete;
  ReadScheduler& operator=(const ReadScheduler&) = delete;

  /// Queues `job` for when the read models include `min_position` (0: at once). When
  /// `jobs_max` jobs are already queued or waiting (`overloaded`), or after stop()
  /// (`shutting_down`), runs `job` at once on the caller's thread with that status instead.
  void submit(std::uint64_t min_position, Job job);

  /// The projector published a checkpoint or failed (any thread; cheap when nothing waits).
  void progressed();

  /// Answers the waiting jobs `shutting_down`, runs every queued job, joins the threads.
  /// Idempotent. The read models must stay open until it returns.
  void stop();

  /// Jobs queued or waiting (a running job no longer counts: a caller it answered sees 0).
  std::uint64_t jobs() const { return jobs_.load(std::memory_order_relaxed); }

 private:
  using Key = std::pair<std::uint64_t, std::uint64_t>;  // (min_position, sequence)
  struct Ready {
    Job job;
    /// What to tell it; for an expired wait, decided when it runs (the position may be there).
    enum class Why : std::uint8_t { reached, expired, failed, stopped } why;
    std::uint64_t min_position;
  };

  void run();
  /// Moves waiters the checkpoint covers (all of them after a failure) to the ready queue.
  /// REQUIRES: mutex_ held.
  void release_reached();
  /// Moves waiters whose deadline passed to the ready queue. REQUIRES: mutex_ held.
  void release_expired(std::chrono::steady_clock::time_point now);
  Status status_of(const Ready& r) const;

  const Projector& projector_;
  const std::chrono::milliseconds wait_max_;
  const std::uint32_t jobs_max_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<Key, Job> waiting_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, Key>> deadlines_;
  std::deque<Ready> ready_;
  std::uint64_t sequence_ = 0;
  bool stopped_ = false;
  std::atomic<std::uint64_t> waiting_count_{0};
  std::atomic<std::uint64_t> jobs_{0};
  std::vector<std::thread> threads_;
};

}  // namespace pointex::engine

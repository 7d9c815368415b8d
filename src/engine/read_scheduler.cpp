#include "engine/read_scheduler.hpp"

#include <pthread.h>

#include <limits>

#include "domain/assert.hpp"
#include "engine/projector.hpp"

namespace pointex::engine {

ReadScheduler::ReadScheduler(const Projector& projector, std::uint32_t threads,
                             std::chrono::milliseconds wait_max, std::uint32_t jobs_max)
    : projector_(projector), wait_max_(wait_max), jobs_max_(jobs_max) {
  POINTEX_ASSERT(threads > 0);
  for (std::uint32_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "pointex-read");
      run();
    });
  }
}

ReadScheduler::~ReadScheduler() {
  stop();
}

void ReadScheduler::submit(std::uint64_t min_position, Job job) {
  if (jobs_.fetch_add(1) >= jobs_max_) {
    jobs_.fetch_sub(1);
    return job(Status::overloaded("too many reads queued or waiting; retry"));
  }
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopped_) {
      jobs_.fetch_sub(1);
      lock.unlock();
      return job(Status::shutting_down("engine is closing"));
    }
    if (min_position == 0 || projector_.checkpoint() >= min_position) {
      ready_.push_back({std::move(job), Ready::Why::reached, min_position});
    } else {
      const Key key{min_position, ++sequence_};
      waiting_.emplace(key, std::move(job));
      deadlines_.emplace_back(std::chrono::steady_clock::now() + wait_max_, key);
      waiting_count_.store(waiting_.size());
      // Pairs with the fence in progressed(): either the projector sees this waiter, or this
      // sees the checkpoint it published.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (projector_.checkpoint() >= min_position) release_reached();
    }
  }
  wake_.notify_one();
}

void ReadScheduler::progressed() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (waiting_count_.load(std::memory_order_relaxed) == 0) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    release_reached();
  }
  wake_.notify_all();
}

void ReadScheduler::release_reached() {
  const Status failure = projector_.failure();
  const auto end = failure.is_ok()
                       ? waiting_.upper_bound(
                             {projector_.checkpoint(), std::numeric_limits<std::uint64_t>::max()})
                       : waiting_.end();
  const auto why = failure.is_ok() ? Ready::Why::reached : Ready::Why::failed;
  for (auto it = waiting_.begin(); it != end; it = waiting_.erase(it)) {
    ready_.push_back({std::move(it->second), why, it->first.first});
  }
  // Deadlines of released reads stay until they pass; with nothing waiting, all are stale.
  if (waiting_.empty()) deadlines_.clear();
  waiting_count_.store(waiting_.size());
}

void ReadScheduler::release_expired(std::chrono::steady_clock::time_point now) {
  while (!deadlines_.empty() && deadlines_.front().first <= now) {
    // A waiter released on progress leaves its deadline behind: skip it.
    const auto it = waiting_.find(deadlines_.front().second);
    deadlines_.pop_front();
    if (it == waiting_.end()) continue;
    ready_.push_back({std::move(it->second), Ready::Why::expired, it->first.first});
    waiting_.erase(it);
  }
  waiting_count_.store(waiting_.size());
}

Status ReadScheduler::status_of(const Ready& r) const {
  switch (r.why) {
    case Ready::Why::reached:
      return Status::ok();
    case Ready::Why::stopped:
      return Status::shutting_down("engine is closing");
    case Ready::Why::failed:
    case Ready::Why::expired:
      break;
  }
  const Status failure = projector_.failure();
  if (!failure.is_ok()) return failure;
  const std::uint64_t checkpoint = projector_.checkpoint();
  if (checkpoint >= r.min_position) return Status::ok();
  return Status::timed_out("read models are at position " + std::to_string(checkpoint) +
                           ", not yet at " + std::to_string(r.min_position));
}

void ReadScheduler::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (!deadlines_.empty()) release_expired(std::chrono::steady_clock::now());
    if (!ready_.empty()) {
      Ready r = std::move(ready_.front());
      ready_.pop_front();
      jobs_.fetch_sub(1);  // counted while queued or waiting, not while running
      lock.unlock();
      r.job(status_of(r));
      r.job = nullptr;  // whatever it captured is released outside the lock
      lock.lock();
      continue;
    }
    if (stopped_) return;
    if (deadlines_.empty()) {
      wake_.wait(lock);
    } else {
      wake_.wait_until(lock, deadlines_.front().first);
    }
  }
}

void ReadScheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
    for (auto& [key, job] : waiting_) ready_.push_back({std::move(job), Ready::Why::stopped, 0});
    waiting_.clear();
    deadlines_.clear();
    waiting_count_.store(0);
  }
  wake_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace pointex::engine

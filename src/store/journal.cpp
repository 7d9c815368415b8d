#include "store/journal.hpp"

#include <pthread.h>

#include <algorithm>
#include <string>

#include "domain/assert.hpp"
#include "domain/codec.hpp"

namespace pointex::store {

Journal::Journal(EventLog& log, JournalOptions options, std::uint64_t next_position,
                 std::uint64_t last_timestamp, std::function<std::uint64_t()> clock_ns)
    : log_(log),
      options_(options),
      clock_ns_(std::move(clock_ns)),
      next_position_(next_position),
      last_timestamp_(last_timestamp) {
  POINTEX_ASSERT(next_position_ >= 1);
  POINTEX_ASSERT(options_.group_events_max >= 1);
  committed_position_.store(next_position_ - 1);
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "pointex-journal");
    run();
  });
}

Journal::~Journal() {
  stop();
}

Journal::Appended Journal::append(std::unique_ptr<JournalChunk> chunk) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_ || failed_.load(std::memory_order_relaxed)) {
    const Status status =
        failed_ ? failure_ : Status::shutting_down("the event log writer has stopped");
    lock.unlock();
    chunk->on_failed(status);
    return {};
  }
  const std::size_t n = chunk->events.size();
  if (n > 0) {
    const std::uint64_t now = clock_ns_();
    const std::uint64_t first_ts = std::max(now, last_timestamp_ + 1);
    chunk->first_position = next_position_;
    chunk->first_timestamp = first_ts;
    for (std::size_t i = 0; i < n; ++i) domain::set_event_timestamp(chunk->events[i], first_ts + i);
    next_position_ += n;
    last_timestamp_ = first_ts + n - 1;
    queued_events_ += n;
  }
  const Appended appended{chunk->first_position, chunk->first_timestamp};
  const bool was_empty = queue_.empty();
  queue_.push_back(std::move(chunk));
  lock.unlock();
  if (was_empty) wake_.notify_one();
  return appended;
}

void Journal::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (writer_.joinable()) writer_.join();
}

JournalStats Journal::stats() const {
  JournalStats s;
  s.committed_position = committed_position_.load(std::memory_order_acquire);
  s.groups = groups_.load(std::memory_order_relaxed);
  s.events = events_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mutex_);
  s.queued_events = queued_events_;
  return s;
}

void Journal::fail_all(std::vector<std::unique_ptr<JournalChunk>>& chunks, const Status& status) {
  for (auto& chunk : chunks) chunk->on_failed(status);
  chunks.clear();
}

void Journal::run() {
  std::vector<std::unique_ptr<JournalChunk>> group;
  std::unique_ptr<EventLog::Batch> batch = log_.new_batch();
  std::string bytes;
  std::vector<std::uint32_t> ends;
  for (;;) {
    std::uint64_t group_events = 0;
    if (options_.before_group) {
      options_.before_group(committed_position_.load(std::memory_order_relaxed));
    }
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and everything queued is written
      while (!queue_.empty()) {
        const std::size_t n = queue_.front()->events.size();
        if (!group.empty() && group_events + n > options_.group_events_max) break;
        group_events += n;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_events_ -= group_events;
    }

    std::uint64_t first_position = 0;
    std::uint64_t last_position = 0;
    if (group_events > 0) {
      batch->clear();
      bytes.clear();
      ends.clear();
      for (const auto& chunk : group) {
        for (std::size_t i = 0; i < chunk->events.size(); ++i) {
          domain::encode_event(chunk->events[i], bytes);
          ends.push_back(static_cast<std::uint32_t>(bytes.size()));
          if (first_position == 0) first_position = chunk->first_position + i;
          POINTEX_ASSERT(last_position == 0 || chunk->first_position + i == last_position + 1);
          last_position = chunk->first_position + i;
        }
      }
      batch->put(first_position, bytes, ends);
      const Status status = log_.write(*batch, options_.sync);
      if (!status.is_ok()) {
        std::vector<std::unique_ptr<JournalChunk>> rest;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          failure_ = status;
          failed_.store(true, std::memory_order_release);
          for (auto& c : queue_) rest.push_back(std::move(c));
          queue_.clear();
          queued_events_ = 0;
        }
        fail_all(group, status);
        fail_all(rest, status);
        if (options_.on_failure) options_.on_failure(status);
        continue;  // later appends fail at once; wait for stop()
      }
      committed_position_.store(last_position, std::memory_order_release);
      groups_.fetch_add(1, std::memory_order_relaxed);
      events_.fetch_add(group_events, std::memory_order_relaxed);
      if (options_.on_group) {
        options_.on_group(first_position, std::move(bytes), std::move(ends));
        bytes = std::string();
        ends = std::vector<std::uint32_t>();
      }
    }
    for (auto& chunk : group) chunk->on_durable();
    group.clear();
  }
}

}  // namespace pointex::store

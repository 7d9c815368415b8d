#pragma once
/// Durable processes' timers (docs/workflows.md): when a process of a kind wants to be woken.
/// Pure and single-threaded (the flows thread owns one). Timers are not stored: a due time is
/// always part of some durable step's data, and a kind arms its timers again when resumed.

#include <cstdint>
#include <iterator>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include "domain/events.hpp"

namespace pointex::domain {

/// One armed timer: process (kind, id) is due at `due_ns` (engine clock, Unix ns).
struct Timer {
  std::uint64_t due_ns = 0;
  ProcessKind kind = ProcessKind::exchange;
  std::uint64_t id = 0;

  bool operator<(const Timer& o) const {
    return std::tie(due_ns, kind, id) < std::tie(o.due_ns, o.kind, o.id);
  }
  bool operator==(const Timer& o) const {
    return due_ns == o.due_ns && kind == o.kind && id == o.id;
  }
};

/// Timers ordered by due time, then kind, then id (so timers due at once fire in a fixed
/// order). Arming the same (time, process) twice keeps one.
class TimerQueue {
 public:
  /// Most timers armed at once; arm() refuses past it (false).
  static constexpr std::size_t timers_max = 1 << 20;

  [[nodiscard]] bool arm(const Timer& timer) {
    if (timers_.size() >= timers_max) return false;
    timers_.insert(timer);
    return true;
  }
  /// Drops every timer of one process (it finished or left memory).
  void disarm(ProcessKind kind, std::uint64_t id) {
    for (auto it = timers_.begin(); it != timers_.end();) {
      it = (it->kind == kind && it->id == id) ? timers_.erase(it) : std::next(it);
    }
  }
  /// The earliest due time, if any timer is armed.
  std::optional<std::uint64_t> next_due_ns() const {
    if (timers_.empty()) return std::nullopt;
    return timers_.begin()->due_ns;
  }
  /// Removes and returns the timers due at or before `now_ns`, earliest first.
  std::vector<Timer> take_due(std::uint64_t now_ns) {
    std::vector<Timer> due;
    while (!timers_.empty() && timers_.begin()->due_ns <= now_ns) {
      due.push_back(*timers_.begin());
      timers_.erase(timers_.begin());
    }
    return due;
  }
  std::size_t size() const { return timers_.size(); }
  bool empty() const { return timers_.empty(); }

 private:
  std::set<Timer> timers_;
};

}  // namespace pointex::domain

#pragma once
/// The context of one submitted transfer batch, shared by every actor that answers one of its
/// items. Each item is answered exactly once (complete()); whoever answers the last one runs
/// the callback and frees the batch. No locks: each item owns its slot, and the countdown's
/// acquire/release orders the slots before the callback reads them.

#include <atomic>
#include <cstdint>
#include <vector>

#include "domain/assert.hpp"
#include "pointex/engine.hpp"

namespace pointex::engine {

class TransferBatch {
 public:
  /// `release` is called once with the item count when the batch finishes (in-flight budget).
  TransferBatch(std::size_t items, TransferCallback callback, std::atomic<std::uint64_t>* inflight)
      : outcomes_(items),
        remaining_(static_cast<std::uint32_t>(items)),
        callback_(std::move(callback)),
        inflight_(inflight) {}

  /// Submitted by the engine's workflows (docs/workflows.md), not by a client.
  bool workflow = false;
  /// An expiry sweep's batch (docs/expiry.md): its expiries were computed from the read models
  /// at this checkpoint; else 0. The actor decides one only if none of its debits is in flight
  /// or after the checkpoint (else the item fails: the sweep tries again later), and never takes
  /// more than the account has available.
  std::uint64_t lots_as_of = 0;

  /// Sets an item's slot without counting it down (before the batch is shared).
  void set(std::uint32_t index, TransferOutcome outcome) { outcomes_[index] = outcome; }

  void complete(std::uint32_t index, TransferOutcome outcome) {
    outcomes_[index] = outcome;
    count_down(1);
  }

  /// The event log failed: the item's outcome is unknown.
  void fail(std::uint32_t index) {
    failed_.store(true, std::memory_order_relaxed);
    count_down(1);
  }

  void count_down(std::uint32_t n) {
    const std::uint32_t before = remaining_.fetch_sub(n, std::memory_order_acq_rel);
    POINTEX_ASSERT(before >= n);
    if (before == n) finish();
  }

 private:
  void finish() {
    const std::size_t n = outcomes_.size();
    const Status status = failed_.load(std::memory_order_relaxed)
                              ? Status::io_error("the event log failed; outcomes unknown")
                              : Status::ok();
    TransferCallback callback = std::move(callback_);
    std::vector<TransferOutcome> outcomes = std::move(outcomes_);
    inflight_->fetch_sub(n, std::memory_order_relaxed);
    delete this;
    callback(status, std::move(outcomes));
  }

  std::vector<TransferOutcome> outcomes_;
  std::atomic<std::uint32_t> remaining_;
  std::atomic<bool> failed_{false};
  TransferCallback callback_;
  std::atomic<std::uint64_t>* inflight_;
};

}  // namespace pointex::engine

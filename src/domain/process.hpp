#pragma once
/// Durable processes (sagas), generic over their kind: a process is the list of its steps
/// (ProcessStepped events, in log order), and everything else is a pure fold of that list by
/// the kind's own rules (src/domain/exchange.hpp). The projector stores the list as one
/// record per process, the engine keeps the open ones in memory; both derive the daily
/// counters (caps) from the same function here, so they always agree.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "domain/codec.hpp"
#include "domain/events.hpp"

namespace pointex::domain {

struct ProcessStepRecord {
  std::uint8_t step = 0;
  std::string data;
  std::uint64_t timestamp = 0;
  std::uint64_t position = 0;
};

/// A process as the fold of its steps.
struct ProcessRecord {
  ProcessKind kind = ProcessKind::exchange;
  std::uint64_t id = 0;
  std::vector<ProcessStepRecord> steps;

  std::uint64_t last_position() const { return steps.empty() ? 0 : steps.back().position; }
};

/// Appends a committed step (at `position`) to its process.
void append_step(ProcessRecord& record, const ProcessStepped& step, std::uint64_t position);

/// The read-model encoding of a record (strict decoding, like events).
std::string encode_process_record(const ProcessRecord& record);
[[nodiscard]] DecodeError decode_process_record(std::string_view bytes, ProcessRecord* record);

/// A kind's fold of a whole record: `*state` reset, then `fold_step(step, first, state)` for
/// each step in order (the first error ends it), the last step's time and position kept in
/// `state->updated_at` and `state->last_position`; the record must be of `kind`, not empty, and
/// its started request must carry the record's id.
template <class State, class FoldStep>
[[nodiscard]] DecodeError fold_steps(const ProcessRecord& record, ProcessKind kind, State* state,
                                     FoldStep fold_step) {
  *state = State{};
  if (record.kind != kind || record.steps.empty()) return DecodeError::invalid_field;
  for (std::size_t i = 0; i < record.steps.size(); ++i) {
    const ProcessStepRecord& s = record.steps[i];
    const DecodeError err = fold_step(s, i == 0, state);
    if (err != DecodeError::none) return err;
    state->updated_at = s.timestamp;
    state->last_position = s.position;
  }
  if (state->started.request.id != record.id) return DecodeError::invalid_field;
  return DecodeError::none;
}

/// Whether a process with these steps is finished (its last step is its kind's final one).
bool process_finished(const ProcessRecord& record);

/// A daily counter some process kinds keep (an exchange's caps). Ordered by day first, so the
/// counters of recent days are one range.
struct CounterKey {
  std::uint32_t day = 0;
  /// What is counted: 1 = A-points a member exchanged (a = the member's account), 2 = A-points
  /// exchanged over a pair of ledgers (a = from ledger, b = to ledger).
  std::uint8_t scope = 0;
  std::uint64_t a = 0;
  std::uint64_t b = 0;

  bool operator<(const CounterKey& o) const {
    if (day != o.day) return day < o.day;
    if (scope != o.scope) return scope < o.scope;
    if (a != o.a) return a < o.a;
    return b < o.b;
  }
  bool operator==(const CounterKey& o) const {
    return day == o.day && scope == o.scope && a == o.a && b == o.b;
  }
};
inline constexpr std::uint8_t counter_scope_exchange_member = 1;
inline constexpr std::uint8_t counter_scope_exchange_pair = 2;
/// A member's rebate points of a day (a = member account, b = 0).
inline constexpr std::uint8_t counter_scope_rebate_member = 3;

/// A change of one counter: `amount` added, or taken back when `release`.
struct CounterDelta {
  CounterKey key;
  std::uint64_t amount = 0;
  bool release = false;
};

/// What appending `step` to a process with the steps `before` does to the daily counters.
/// Steps that cannot be decoded change nothing (recovery refuses them before).
std::vector<CounterDelta> step_counter_deltas(const ProcessRecord& before,
                                              const ProcessStepped& step);

/// Counters in memory. Releasing never goes below zero (asserted).
using CounterTable = std::map<CounterKey, std::uint64_t>;
void apply_counter_deltas(CounterTable& table, const std::vector<CounterDelta>& deltas);
std::uint64_t counter_value(const CounterTable& table, const CounterKey& key);

/// Which days' counters the read models keep: the day of the newest process step and the day
/// before (caps count the current UTC day; the day before serves exchanges that started before
/// midnight and finish after it). Older days leave, and a step's deltas for them are dropped
/// (nothing reads them any more). The projector and the audit advance it with every step, in
/// log order, so both keep the same rows.
struct CounterWindow {
  /// Counters of days before this one are gone.
  std::uint32_t first_day = 0;

  /// Moves to a step committed at `timestamp`; true when first_day moved.
  bool advance(std::uint64_t timestamp);
  /// The deltas of kept days.
  std::vector<CounterDelta> kept(std::vector<CounterDelta> deltas) const;
  bool keeps(const CounterKey& key) const { return key.day >= first_day; }
  /// Erases the counters of days before first_day.
  void prune(CounterTable& table) const;
};

}  // namespace pointex::domain

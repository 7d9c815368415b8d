#include "domain/process.hpp"

#include <algorithm>
#include <vector>

#include "domain/assert.hpp"
#include "domain/checkback.hpp"
#include "domain/exchange.hpp"
#include "domain/order.hpp"
#include "domain/rebate.hpp"
#include "domain/varint.hpp"

namespace pointex::domain {
namespace {

/// Most steps a stored process may have (an exchange has three, an order at most seven, a
/// purchase at most 68).
constexpr std::uint64_t process_steps_max = 128;

std::vector<CounterDelta> exchange_counter_deltas(const ProcessRecord& before,
                                                  const ProcessStepped& step) {
  // `started` counts the A-points on the member's and the pair's day; a completion other than
  // ok gives them back (nothing moved).
  ExchangeStarted started;
  if (step.step == step_started) {
    if (decode_step(step.data, &started) != DecodeError::none) return {};
  } else if (step.step == step_completed && !before.steps.empty()) {
    ExchangeCompleted completed;
    if (decode_step(step.data, &completed) != DecodeError::none) return {};
    if (completed.result == ExchangeResult::ok) return {};
    if (decode_step(before.steps.front().data, &started) != DecodeError::none) return {};
  } else {
    return {};
  }
  const bool release = step.step == step_completed;
  const std::uint64_t amount = started.request.amount;
  return {{member_counter(started.day, started.request.from_account), amount, release},
          {pair_counter(started.day, started.from_ledger, started.to_ledger), amount, release}};
}

}  // namespace

void append_step(ProcessRecord& record, const ProcessStepped& step, std::uint64_t position) {
  POINTEX_ASSERT(record.kind == step.kind);
  POINTEX_ASSERT(record.id == step.id);
  record.steps.push_back({step.step, step.data, step.timestamp, position});
}

std::string encode_process_record(const ProcessRecord& record) {
  std::string out;
  put_u8(out, static_cast<std::uint8_t>(record.kind));
  put_varint(out, record.id);
  put_varint(out, record.steps.size());
  for (const ProcessStepRecord& s : record.steps) {
    put_u8(out, s.step);
    put_bytes(out, s.data);
    put_varint(out, s.timestamp);
    put_varint(out, s.position);
  }
  return out;
}

DecodeError decode_process_record(std::string_view bytes, ProcessRecord* record) {
  Reader in(bytes);
  const std::uint8_t kind = in.u8();
  if (!process_kind_known(kind)) in.fail(DecodeError::invalid_field);
  record->kind = static_cast<ProcessKind>(kind);
  record->id = in.varint();
  const std::uint64_t n = in.bounded<std::uint64_t>(process_steps_max);
  record->steps.clear();
  for (std::uint64_t i = 0; i < n && in.error() == DecodeError::none; ++i) {
    ProcessStepRecord s;
    s.step = in.u8();
    s.data = in.bytes(process_data_bytes_max);
    s.timestamp = in.varint();
    s.position = in.varint();
    record->steps.push_back(std::move(s));
  }
  return in.finish();
}

bool process_finished(const ProcessRecord& record) {
  switch (record.kind) {
    case ProcessKind::exchange:
      return !record.steps.empty() && record.steps.back().step == step_completed;
    case ProcessKind::order:
      return order_finished(record);
    case ProcessKind::rebate:
      return purchase_finished(record);
    case ProcessKind::check_back:
      return check_back_finished(record);
  }
  return false;
}

std::vector<CounterDelta> step_counter_deltas(const ProcessRecord& before,
                                              const ProcessStepped& step) {
  switch (step.kind) {
    case ProcessKind::exchange:
      return exchange_counter_deltas(before, step);
    case ProcessKind::order:
      return {};  // orders have no caps
    case ProcessKind::rebate:
      return purchase_counter_deltas(before, step);
    case ProcessKind::check_back:
      return {};  // no caps
  }
  return {};
}

void apply_counter_deltas(CounterTable& table, const std::vector<CounterDelta>& deltas) {
  for (const CounterDelta& d : deltas) {
    std::uint64_t& v = table[d.key];
    if (d.release) {
      POINTEX_ASSERT(v >= d.amount);
      v -= d.amount;  // a zero stays: the projector must not read an older value back
    } else {
      // Counted amounts are bounded by what members hold (each < 2^63); saturate anyway.
      v = v + d.amount < v ? UINT64_MAX : v + d.amount;
    }
  }
}

std::uint64_t counter_value(const CounterTable& table, const CounterKey& key) {
  const auto it = table.find(key);
  return it == table.end() ? 0 : it->second;
}

bool CounterWindow::advance(std::uint64_t timestamp) {
  const std::uint32_t day = utc_day(timestamp);
  const std::uint32_t first = day > 0 ? day - 1 : 0;
  if (first <= first_day) return false;
  first_day = first;
  return true;
}

std::vector<CounterDelta> CounterWindow::kept(std::vector<CounterDelta> deltas) const {
  deltas.erase(std::remove_if(deltas.begin(), deltas.end(),
                              [this](const CounterDelta& d) { return !keeps(d.key); }),
               deltas.end());
  return deltas;
}

void CounterWindow::prune(CounterTable& table) const {
  table.erase(table.begin(), table.lower_bound(CounterKey{first_day, 0, 0, 0}));
}

}  // namespace pointex::domain

// The projector's part of the workflows (docs/workflows.md): process records, the index of
// open processes (recovery resumes them) and the daily counters (exchange caps).

#include "engine/projector.hpp"

namespace pointex::engine {

Status Projector::apply_process_step(std::uint64_t position, const domain::ProcessStepped& e) {
  const std::pair<domain::ProcessKind, std::uint64_t> key{e.kind, e.id};
  auto it = unflushed_processes_.find(key);
  if (it == unflushed_processes_.end()) {
    std::optional<domain::ProcessRecord> stored;
    const Status s = read_model_.process(e.kind, e.id, &stored);
    if (!s.is_ok()) return s;
    domain::ProcessRecord record;
    if (stored) {
      record = std::move(*stored);
    } else {
      record.kind = e.kind;
      record.id = e.id;
    }
    it = unflushed_processes_.emplace(key, std::move(record)).first;
  }
  domain::ProcessRecord& record = it->second;
  if (counter_window_.advance(e.timestamp)) {
    counter_window_.prune(counters_);
    writer_->delete_counters_before(counter_window_.first_day);
  }
  for (const domain::CounterDelta& d :
       counter_window_.kept(domain::step_counter_deltas(record, e))) {
    if (counters_.count(d.key) == 0) {
      std::uint64_t value = 0;
      const Status s = read_model_.counter(d.key, &value);
      if (!s.is_ok()) return s;
      if (value != 0) counters_[d.key] = value;
    }
    domain::apply_counter_deltas(counters_, {d});
    dirty_counters_.push_back(d.key);
  }
  const bool was_open = !record.steps.empty() && !domain::process_finished(record);
  domain::append_step(record, e, position);
  const bool open = !domain::process_finished(record);
  writer_->put_process(record);
  if (open != was_open) writer_->set_process_open(e.kind, e.id, open);
  return Status::ok();
}

void Projector::flush_processes() {
  for (const domain::CounterKey& key : dirty_counters_) {
    // A key of a day that left the window since it changed must not be written back.
    if (counter_window_.keeps(key))
      writer_->put_counter(key, domain::counter_value(counters_, key));
  }
  dirty_counters_.clear();
}

}  // namespace pointex::engine

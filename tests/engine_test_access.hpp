#pragma once
// Fault injection for engine tests: the engine's event log and read models (Engine befriends
// EngineTestAccess). Engine tests only: it includes the engine's private parts.

#include <chrono>
#include <pointex/engine.hpp>

#include "engine/engine_impl.hpp"
#include "store/event_log.hpp"
#include "store/read_model.hpp"

namespace pointex {
struct EngineTestAccess {
  static store::EventLog& log(Engine& e) { return *e.impl_->log; }
  static store::ReadModel& read_model(Engine& e) { return *e.impl_->read_model; }
  /// Debit actors sleep this long between appending fast credits and pushing them.
  static void delay_credit_pushes(Engine& e, std::chrono::microseconds delay) {
    e.impl_->test_credit_push_delay_us.store(static_cast<std::uint32_t>(delay.count()));
  }
  /// Stops the event log's writer (as closing does): from here every append is refused, while
  /// the engine's own checks still see a log that has not failed.
  static void stop_journal(Engine& e) { e.impl_->journal->stop(); }
  /// set_rate, set_rules and create_accounts sleep this long between appending and publishing.
  static void delay_publication(Engine& e, std::chrono::microseconds delay) {
    e.impl_->test_publish_delay_us.store(static_cast<std::uint32_t>(delay.count()));
  }
};
}  // namespace pointex

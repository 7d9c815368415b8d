// The durable-process host's timer queue (src/domain/timer_queue.hpp): due order, ties, disarm.

#include <catch2/catch.hpp>

#include "domain/timer_queue.hpp"

namespace pointex::domain {
namespace {

constexpr auto exchange = ProcessKind::exchange;

TEST_CASE("timers: nothing armed, nothing due", "[timers]") {
  TimerQueue q;
  CHECK(q.empty());
  CHECK_FALSE(q.next_due_ns().has_value());
  CHECK(q.take_due(~0ULL).empty());
}

TEST_CASE("timers: fire in due order, only once due", "[timers]") {
  TimerQueue q;
  REQUIRE(q.arm({300, exchange, 1}));
  REQUIRE(q.arm({100, exchange, 2}));
  REQUIRE(q.arm({200, exchange, 3}));
  CHECK(q.next_due_ns() == 100);
  CHECK(q.take_due(99).empty());
  const std::vector<Timer> due = q.take_due(200);
  REQUIRE(due.size() == 2);
  CHECK(due[0] == Timer{100, exchange, 2});
  CHECK(due[1] == Timer{200, exchange, 3});
  CHECK(q.next_due_ns() == 300);
  CHECK(q.take_due(1000) == std::vector<Timer>{{300, exchange, 1}});
  CHECK(q.empty());
}

TEST_CASE("timers: ties at one time fire by process id, and the same timer twice is one",
          "[timers]") {
  TimerQueue q;
  REQUIRE(q.arm({50, exchange, 9}));
  REQUIRE(q.arm({50, exchange, 4}));
  REQUIRE(q.arm({50, exchange, 9}));
  CHECK(q.size() == 2);
  CHECK(q.take_due(50) == std::vector<Timer>{{50, exchange, 4}, {50, exchange, 9}});
}

TEST_CASE("timers: disarm drops every timer of one process and no other", "[timers]") {
  TimerQueue q;
  REQUIRE(q.arm({10, exchange, 1}));
  REQUIRE(q.arm({20, exchange, 2}));
  REQUIRE(q.arm({30, exchange, 1}));
  q.disarm(exchange, 1);
  CHECK(q.size() == 1);
  CHECK(q.next_due_ns() == 20);
  q.disarm(exchange, 7);  // none armed: nothing happens
  CHECK(q.take_due(100) == std::vector<Timer>{{20, exchange, 2}});
}

}  // namespace
}  // namespace pointex::domain

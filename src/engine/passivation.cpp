// Passivation: idle accounts leave memory. The sweeper thread walks the directory once per
// tick; an account with an actor is asked to stop (the actor checks that nothing of it is in
// flight, see on_passivate), a dormant one leaves at once when the read models include its last
// event. Either way the next command loads it again from the read models.

#include <algorithm>
#include <caf/all.hpp>
#include <chrono>

#include "actors/messages.hpp"
#include "domain/decide.hpp"
#include "engine/engine_impl.hpp"
#include "engine/log.hpp"

namespace pointex {
namespace {

constexpr auto sweep_interval = std::chrono::seconds(1);

}  // namespace

void Engine::Impl::start_sweeper() {
  sweeper = std::thread([this] {
    pthread_setname_np(pthread_self(), "pointex-sweep");
    std::unique_lock<std::mutex> lock(sweeper_mutex);
    while (!sweeper_wake.wait_for(lock, sweep_interval, [this] { return sweeper_stopping; })) {
      lock.unlock();
      passivation_tick.fetch_add(1, std::memory_order_relaxed);
      sweep();
      lock.lock();
    }
  });
}

void Engine::Impl::stop_sweeper() {
  {
    std::lock_guard<std::mutex> lock(sweeper_mutex);
    sweeper_stopping = true;
  }
  sweeper_wake.notify_one();
  if (sweeper.joinable()) sweeper.join();
}

void Engine::Impl::sweep() {
  const std::uint64_t in_memory = directory.size();
  records_cap.store(domain::records_cap(options.transfer_records_in_memory_max, in_memory,
                                        options.account_records_cached_max),
                    std::memory_order_relaxed);
  const std::uint64_t live = live_actors.load(std::memory_order_relaxed);
  const std::uint64_t memory_cap = options.accounts_in_memory_max;
  const std::uint64_t live_cap = options.live_actors_max;
  // Over a cap, shed down to 90% of it: accounts idle for a tick or more, in walk order.
  std::uint64_t memory_excess =
      in_memory > memory_cap ? in_memory - memory_cap + memory_cap / 10 : 0;
  std::uint64_t live_excess = live > live_cap ? live - live_cap + live_cap / 10 : 0;
  const std::uint32_t idle_ticks = options.account_idle_s;  // one tick per second
  const std::uint32_t tick = passivation_tick.load(std::memory_order_relaxed);
  // A whole walk for idle accounts four times per idle period; otherwise only as far as it
  // takes to get under the caps (the next walk goes on where this one stopped).
  const bool idle_walk = idle_ticks != 0 && tick % std::max(1U, idle_ticks / 4) == 0;
  if (memory_excess == 0 && live_excess == 0 && !idle_walk) return;
  const std::uint64_t checkpoint = projector->checkpoint();
  std::uint64_t asked = 0;
  std::uint64_t removed = 0;
  using Sweep = engine::Directory::Sweep;
  directory.sweep(
      [&](engine::AccountEntry& entry) {
        const std::uint32_t age = tick - entry.last_active.load(std::memory_order_relaxed);
        if (age < 2) return Sweep::keep;  // used within the last tick
        const bool idle_out = idle_ticks != 0 && age >= idle_ticks;
        // Only an account whose last event the read models include may leave memory.
        const bool projected = entry.last_position.load(std::memory_order_acquire) <= checkpoint;
        const bool leave = projected && (memory_excess > 0 || idle_out);
        std::lock_guard<std::mutex> lock(entry.mutex);
        if (entry.actor) {
          if (!leave && live_excess == 0 && !idle_out) return Sweep::keep;
          caf::anon_send(entry.actor, actors::Passivate{leave});
          ++asked;
          if (live_excess > 0) --live_excess;
          if (leave && memory_excess > 0) --memory_excess;
          return Sweep::keep;
        }
        if (!leave) return Sweep::keep;
        ++removed;
        if (memory_excess > 0) --memory_excess;
        return Sweep::remove;
      },
      [&] { return idle_walk || memory_excess > 0 || live_excess > 0; });
  passivated.fetch_add(removed, std::memory_order_relaxed);
  if (asked + removed > 0) {
    pointex::log().debug(
        "passivation: {} accounts in memory, {} actors; {} removed, {} actors asked to stop",
        in_memory, live, removed, asked);
  }
}

}  // namespace pointex

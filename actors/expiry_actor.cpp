// The expiry actor: a timetable of pending transfers with a timeout. It only nudges: the
// debit account's actor decides whether the transfer is still pending and due (decide_expire),
// so a stale or duplicate nudge is harmless. Timetable entries come from account actors when
// they accept a pending transfer, and from recovery for pending transfers already in the log.

#include <caf/all.hpp>
#include <chrono>
#include <map>
#include <unordered_map>
#include <vector>

#include "actors/account_actor.hpp"
#include "actors/messages.hpp"
#include "engine/engine_impl.hpp"

namespace pointex::actors {
namespace {

using tick_atom = caf::atom_constant<caf::atom("tick")>;

struct ExpiryState {
  static inline const char* name = "pointex.expiry";
  Engine::Impl* core = nullptr;
  std::multimap<std::uint64_t, std::pair<AccountId, TransferId>> due;
  std::uint32_t interval_ms = 100;
  bool ticking = false;
};

using Self = caf::stateful_actor<ExpiryState>;

void arm(Self* self) {
  if (self->state.ticking || self->state.due.empty()) return;
  self->state.ticking = true;
  self->delayed_send(self, std::chrono::milliseconds(self->state.interval_ms), tick_atom::value);
}

void on_tick(Self* self) {
  ExpiryState& st = self->state;
  st.ticking = false;
  const std::uint64_t now = st.core->now();
  std::unordered_map<AccountId, ExpireDue> by_account;
  auto it = st.due.begin();
  while (it != st.due.end() && it->first <= now) {
    by_account[it->second.first].pending_ids.push_back(it->second.second);
    it = st.due.erase(it);
  }
  for (auto& [account, msg] : by_account) {
    engine::AccountEntry* entry = st.core->directory.find(account);
    if (entry == nullptr) continue;  // logged by find if it failed
    self->send(st.core->actor_of(*entry), std::move(msg));
    entry->unpin();
  }
  arm(self);
}

caf::behavior expiry_actor(Self* self, Engine::Impl* core, std::uint32_t interval_ms) {
  self->state.core = core;
  self->state.interval_ms = interval_ms;
  return {
      [=](ScheduleExpiry& msg) {
        for (const ExpiryEntry& e : msg.entries) {
          self->state.due.emplace(e.at_ns, std::make_pair(e.account, e.pending_id));
        }
        arm(self);
      },
      [=](tick_atom) { on_tick(self); },
  };
}

}  // namespace

caf::actor spawn_expiry_actor(caf::actor_system& system, Engine::Impl* core,
                              std::uint32_t check_interval_ms) {
  return system.spawn(expiry_actor, core, check_interval_ms);
}

}  // namespace pointex::actors

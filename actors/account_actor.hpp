#pragma once
/// Spawning account actors (the actor itself is private to account_actor.cpp).

#include <caf/fwd.hpp>
#include <memory>

#include "domain/account_state.hpp"
#include "engine/directory.hpp"
#include "pointex/engine.hpp"

namespace pointex::actors {

/// Spawns the actor that owns `account` from now on.
caf::actor spawn_account_actor(caf::actor_system& system, Engine::Impl* core,
                               engine::AccountEntry* entry,
                               std::unique_ptr<domain::AccountState> account);

/// Spawns the expiry actor: it wakes account actors when their pending transfers time out.
/// `check_interval_ms` bounds how late an expiry runs.
caf::actor spawn_expiry_actor(caf::actor_system& system, Engine::Impl* core,
                              std::uint32_t check_interval_ms);

}  // namespace pointex::actors

#pragma once
/// The actor system's scheduler: CAF's work sharing, without its per-job logging cost.

namespace caf {
class actor_system_config;
}  // namespace caf

namespace pointex::actors {

/// Loads PointEx's scheduler into `config` (before the actor system is made from it): CAF's
/// work-sharing coordinator (one central queue, `scheduler.max-threads` workers) whose workers
/// skip tagging each job with its actor id for the logger (see scheduler.cpp).
void load_scheduler(caf::actor_system_config& config);

}  // namespace pointex::actors

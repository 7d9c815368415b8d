// CAF 0.17's worker loop tags every job it resumes with its actor id for the logger, even with
// logging compiled out (CAF_LOG_LEVEL_QUIET, as Debian builds it): a cross-cast
// dynamic_cast<abstract_actor*>(resumable*) and a thread-local store per resume. With one actor
// per account that is several resumes per transfer: 4-5% of all CPU time under W1
// (docs/performance.md, session 8). The loop is a header template, so a policy type of our own
// gets its own instantiation, compiled here with that tag switched off. Nothing reads the tag:
// the logger is quiet.
//
// This file must include the scheduler headers before anything else does: the macro is
// expanded when worker.hpp is parsed, so it is redefined right after logger.hpp.

#include <caf/logger.hpp>
#undef CAF_PUSH_AID_FROM_PTR
#define CAF_PUSH_AID_FROM_PTR(ptr) static_cast<void>(0)
#include <caf/scheduler/coordinator.hpp>
#include <caf/scheduler/worker.hpp>
// Keep the block above first.
#include <caf/actor_system_config.hpp>
#include <caf/policy/work_sharing.hpp>

#include "actors/scheduler.hpp"

namespace pointex::actors {
namespace {

/// CAF's work sharing (one central queue for all workers) under a type of our own (see above).
/// Not stealing: with many small messages, stealing spins threads on each other's queues (7x
/// slower, measured in ../shared/notes/CAF-0.17.md). A ring instead of its std::list queue, and
/// waking a worker only when one sleeps, measured no better (docs/performance.md).
struct Sharing final : caf::policy::work_sharing {};

}  // namespace

void load_scheduler(caf::actor_system_config& config) {
  config.load<caf::scheduler::coordinator<Sharing>>();
}

}  // namespace pointex::actors

#pragma once
/// Recovery at open. The read models are the snapshot: they hold every ledger and account as
/// of their checkpoint. Recovery loads the ledgers, then folds the log's tail after the
/// checkpoint, in position order, into the accounts it touches (loaded into the directory,
/// dormant), logging progress. Other accounts load lazily on first use. An event that cannot
/// be decoded or applied stops it with `corruption` and the position; nothing is skipped.
/// REQUIRES: core.read_model is open and the directory's loader set.

#include <cstdint>

#include "engine/engine_impl.hpp"

namespace pointex::engine {

/// On success, `*next_position` is the first position to assign and `*last_timestamp` the
/// highest timestamp in the log.
Status recover(Engine::Impl& core, std::uint64_t* next_position, std::uint64_t* last_timestamp);

}  // namespace pointex::engine

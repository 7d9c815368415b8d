#pragma once
/// Recovery at open: folds the whole event log, in position order, into the ledgers, the
/// account directory and the (dormant) account states, logging progress. An event that cannot
/// be decoded or applied stops it with `corruption` and the position; nothing is skipped.

#include <cstdint>

#include "engine/engine_impl.hpp"

namespace pointex::engine {

/// On success, `*next_position` is the first position to assign and `*last_timestamp` the
/// highest timestamp in the log.
Status recover(Engine::Impl& core, std::uint64_t* next_position, std::uint64_t* last_timestamp);

}  // namespace pointex::engine

#pragma once
/// The library's logger: spdlog's logger named "pointex". A host application may register its
/// own logger under that name before opening an engine; otherwise one writing to stderr is made.

#include <spdlog/spdlog.h>

namespace pointex {

spdlog::logger& log();

}  // namespace pointex

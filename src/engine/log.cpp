#include "engine/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace pointex {

spdlog::logger& log() {
  static std::once_flag once;
  static std::shared_ptr<spdlog::logger> logger;
  std::call_once(once, [] {
    logger = spdlog::get("pointex");
    if (!logger) logger = spdlog::stderr_color_mt("pointex");
  });
  return *logger;
}

}  // namespace pointex

// The process the expiry crash test kills: it opens an engine on a data dir with its clock
// fixed at NOW_NS, starts an expiry sweep and SIGKILLs itself after DELAY_US microseconds
// (mid-sweep, or before or after it: the parent checks the same outcome either way).
//
// usage: pointex-expiry-crash-child DATA_DIR NOW_NS DELAY_US

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <pointex/engine.hpp>
#include <thread>

using namespace pointex;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: pointex-expiry-crash-child DATA_DIR NOW_NS DELAY_US\n");
    return 2;
  }
  const std::uint64_t now = std::strtoull(argv[2], nullptr, 10);
  const std::uint64_t delay_us = std::strtoull(argv[3], nullptr, 10);
  EngineOptions options;
  options.data_dir = argv[1];
  options.clock_ns = [now] { return now; };
  std::unique_ptr<Engine> engine;
  const Status s = Engine::open(options, &engine);
  if (!s.is_ok()) {
    std::fprintf(stderr, "expiry-crash-child: open: %s\n", s.to_string().c_str());
    return 2;
  }
  std::thread sweeper([&] {
    ExpirySweepReport report;
    (void)engine->sweep_expired_points(&report);
  });
  std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
  raise(SIGKILL);
  sweeper.join();
  return 1;
}

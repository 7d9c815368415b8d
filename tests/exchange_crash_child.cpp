// The process the exchange crash test kills: it opens an engine on a prepared data dir and
// runs one exchange. With POINTEX_TEST_CRASH_AT=<step> in its environment the engine SIGKILLs
// the process right after that step of the exchange is durable (docs/workflows.md); without
// it, it prints the outcome and exits 0.
//
// usage: pointex-exchange-crash-child DATA_DIR ID FROM_ACCOUNT TO_ACCOUNT AMOUNT

#include <cstdio>
#include <cstdlib>
#include <pointex/engine.hpp>
#include <string>

using namespace pointex;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s DATA_DIR ID FROM TO AMOUNT\n", argv[0]);
    return 2;
  }
  EngineOptions options;
  options.data_dir = argv[1];
  std::unique_ptr<Engine> engine;
  Status s = Engine::open(options, &engine);
  if (!s.is_ok()) {
    std::fprintf(stderr, "open: %s\n", s.to_string().c_str());
    return 2;
  }
  const Exchange ex{std::strtoull(argv[2], nullptr, 10), std::strtoull(argv[3], nullptr, 10),
                    std::strtoull(argv[4], nullptr, 10), std::strtoull(argv[5], nullptr, 10)};
  ExchangeOutcome o;
  s = engine->exchange(ex, &o);
  if (!s.is_ok()) {
    std::fprintf(stderr, "exchange: %s\n", s.to_string().c_str());
    return 2;
  }
  std::printf("%s\n", std::string(to_string(o.result)).c_str());
  return 0;
}

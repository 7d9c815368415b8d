// The process the rebate crash test kills: it opens an engine on a prepared data dir (issuer
// 1000 and member 2001 funded with 1000 points on ledger 1, rules with 100 bps on "books" and
// the return window WINDOW_S) and runs purchase 77 of 10000 cents, then what ACTION says. With
// POINTEX_TEST_CRASH_AT=purchase:<step> in its environment the engine SIGKILLs the process
// right after that step is durable (docs/workflows.md); without it, it prints the purchase's
// status and exits 0.
//
// usage: pointex-rebate-crash-child DATA_DIR ACTION
//   ACTION: window (wait for the window's end) | refund (refund 4000 then 6000 inside the
//   window) | clawback (window 0: refund 10000 after the points were posted)

#include <chrono>
#include <cstdio>
#include <pointex/engine.hpp>
#include <string>
#include <thread>

using namespace pointex;

namespace {

int fail(const char* what, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", what, s.to_string().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DATA_DIR ACTION\n", argv[0]);
    return 2;
  }
  EngineOptions options;
  options.data_dir = argv[1];
  std::unique_ptr<Engine> engine;
  Status s = Engine::open(options, &engine);
  if (!s.is_ok()) return fail("open", s);
  const std::string action = argv[2];
  PurchaseOutcome o;
  s = engine->purchase({77, 2001, 10'000, "EUR", "books"}, &o);
  if (!s.is_ok()) return fail("purchase", s);
  if (action == "refund") {
    s = engine->refund_purchase({77, 1, 4'000}, &o);
    if (s.is_ok()) s = engine->refund_purchase({77, 2, 6'000}, &o);
  } else if (action == "clawback") {
    s = engine->refund_purchase({77, 1, 10'000}, &o);
  }
  if (!s.is_ok()) return fail(action.c_str(), s);
  std::optional<PurchaseInfo> info;
  for (int i = 0; i < 1000; ++i) {
    s = engine->lookup_purchase(77, &info);
    if (!s.is_ok()) return fail("lookup_purchase", s);
    if (info->settled) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("%s\n", std::string(to_string(info->status)).c_str());
  return 0;
}

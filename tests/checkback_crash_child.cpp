// The process the check-back crash test kills: it opens an engine on a prepared data dir
// (issuer 1000 and member 2001 funded with 1000 points on ledger 1) with a check-back client
// that answers ANSWER at once, and makes case 77: a pending transfer of 100 from member 2001
// to issuer 1000, checked after 1 s, at most 2 checks. With POINTEX_TEST_CRASH_AT=check:<step>
// in its environment the engine SIGKILLs the process right after that step is durable
// (docs/workflows.md); without it, it waits until the case settles or parks and prints its
// status.
//
// usage: pointex-checkback-crash-child DATA_DIR ANSWER   (ANSWER: commit | rollback | unknown)

#include <chrono>
#include <cstdio>
#include <pointex/engine.hpp>
#include <string>
#include <thread>

using namespace pointex;

namespace {

/// Answers every check with one answer, from its own thread.
class FixedClient final : public CheckBackClient {
 public:
  explicit FixedClient(CheckAnswer answer) : answer_(answer) {}
  void check(const CheckRequest&, CheckCallback done) override {
    std::thread([done = std::move(done), a = answer_] { done(a, "fixed"); }).detach();
  }

 private:
  CheckAnswer answer_;
};

int fail(const char* what, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", what, s.to_string().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DATA_DIR ANSWER\n", argv[0]);
    return 2;
  }
  const std::string a = argv[2];
  const CheckAnswer answer = a == "commit"     ? CheckAnswer::commit
                             : a == "rollback" ? CheckAnswer::rollback
                                               : CheckAnswer::unknown;
  EngineOptions options;
  options.data_dir = argv[1];
  options.check_back_client = std::make_shared<FixedClient>(answer);
  options.check_back_backoff_base_ms = 100;
  options.check_back_backoff_max_ms = 100;
  std::unique_ptr<Engine> engine;
  Status s = Engine::open(options, &engine);
  if (!s.is_ok()) return fail("open", s);
  CheckedTransfer c;
  c.transfer = {77, 2001, 1000, 100, 1, 7, transfer_flags::pending, 0, 0, 0};
  c.url = "http://127.0.0.1:9/check";
  c.check_after_s = 1;
  c.checks_max = 2;
  CheckBackOutcome o;
  s = engine->create_checked_transfer(c, &o);
  if (!s.is_ok()) return fail("create_checked_transfer", s);
  std::optional<CheckBackInfo> info;
  for (int i = 0; i < 1000; ++i) {
    s = engine->lookup_check_back(77, &info);
    if (!s.is_ok()) return fail("lookup_check_back", s);
    if (info->settled || info->status == CheckBackStatus::parked) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("%s\n", std::string(to_string(info->status)).c_str());
  return 0;
}

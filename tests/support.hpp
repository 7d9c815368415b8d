#pragma once
// Helpers for engine tests: temporary data dirs and a clock the test moves by hand.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <pointex/engine.hpp>
#include <string>
#include <thread>
#include <vector>

#include "builders.hpp"

namespace pointex::test {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = (std::filesystem::temp_directory_path() /
             ("pointex-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++)))
                .string();
    std::filesystem::remove_all(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Unix ns, starting at a fixed instant; advance() moves it.
class ManualClock {
 public:
  std::uint64_t now() const { return now_.load(); }
  void advance_s(std::uint64_t s) { now_ += s * 1'000'000'000ULL; }
  std::function<std::uint64_t()> fn() {
    return [this] { return now_.load(); };
  }

 private:
  std::atomic<std::uint64_t> now_{1'800'000'000'000'000'000ULL};
};

/// The answer of an asynchronous engine call: callback() is what to pass, then wait for it.
template <typename Result>
class Awaited {
 public:
  ResultCallback<Result> callback() {
    return [this](const Status& s, Result r) {
      thread_ = std::this_thread::get_id();
      promise_.set_value({s, std::move(r)});
    };
  }
  /// Whether it came within `timeout` (a bound for a hung test, not a performance check).
  bool ready(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    return future_.wait_for(timeout) == std::future_status::ready;
  }
  std::pair<Status, Result> get() { return future_.get(); }
  /// Waits for it and requires it ok: the result.
  Result value() {
    REQUIRE(ready());
    auto [s, r] = get();
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    return std::move(r);
  }
  /// Waits for it: the status alone.
  Status status() {
    REQUIRE(ready());
    return get().first;
  }
  /// The thread the callback ran on (once ready).
  std::thread::id thread() const { return thread_; }

 private:
  std::promise<std::pair<Status, Result>> promise_;
  std::future<std::pair<Status, Result>> future_ = promise_.get_future();
  std::thread::id thread_;
};

/// Opens an engine on `dir` with the options `adjust` sets (data_dir is set before).
inline std::unique_ptr<Engine> open_engine_with(const std::string& dir,
                                                const std::function<void(EngineOptions&)>& adjust) {
  EngineOptions options;
  options.data_dir = dir;
  adjust(options);
  std::unique_ptr<Engine> engine;
  const Status s = Engine::open(options, &engine);
  INFO(s.to_string());
  REQUIRE(s.is_ok());
  return engine;
}

inline std::unique_ptr<Engine> open_engine(const std::string& dir,
                                           std::function<std::uint64_t()> clock = {}) {
  EngineOptions options;
  options.data_dir = dir;
  options.threads = 2;
  options.clock_ns = std::move(clock);
  std::unique_ptr<Engine> engine;
  const Status s = Engine::open(options, &engine);
  INFO(s.to_string());
  REQUIRE(s.is_ok());
  return engine;
}

/// Audits a closed data dir with Engine::verify: the audit must run and find nothing (its
/// problems are shown when it does). The report is returned for the caller's own checks.
inline VerifyReport verified(const std::string& dir) {
  VerifyReport report;
  REQUIRE(Engine::verify(dir, &report).is_ok());
  std::string problems;
  for (const std::string& p : report.problems) problems += p + "\n";
  INFO(problems);
  CHECK(report.ok);
  return report;
}

/// Runs `program` with `args` in a child process, with POINTEX_TEST_CRASH_AT=`crash_at` when
/// not empty (the step after which the child SIGKILLs itself), and waits for it: true when
/// SIGKILL ended it.
inline bool killed_child(const char* program, const std::vector<std::string>& args,
                         const std::string& crash_at = "") {
  std::vector<char*> argv{const_cast<char*>(program)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!crash_at.empty()) setenv("POINTEX_TEST_CRASH_AT", crash_at.c_str(), 1);
    execv(program, argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

}  // namespace pointex::test

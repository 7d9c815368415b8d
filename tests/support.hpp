#pragma once
// Helpers for engine tests: temporary data dirs and a clock the test moves by hand.

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

}  // namespace pointex::test

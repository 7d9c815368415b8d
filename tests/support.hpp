#pragma once
// Helpers for engine tests: temporary data dirs and a clock the test moves by hand.

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <pointex/engine.hpp>
#include <string>

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

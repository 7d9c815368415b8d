#pragma once
// End-to-end helpers: run the real `pointexd` binary on a free loopback port with a temporary
// config and data dir, and talk to it over HTTP.

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "server/http_client.hpp"
#include "support.hpp"

namespace pointex::test {

inline constexpr const char* admin_key = "e2e-admin-key-0123456789";
inline constexpr const char* issuer_key = "e2e-issuer-key-ledger1-0123";

inline client::Headers auth(const char* key = admin_key) {
  return {{"Authorization", std::string("Bearer ") + key}};
}

/// A pointexd process. The config is written to `dir/pointexd.json`; `extra` is merged over
/// the defaults of these tests.
class Daemon {
 public:
  explicit Daemon(const std::string& dir, const nlohmann::json& extra = nlohmann::json::object())
      : dir_(dir) {
    std::filesystem::create_directories(dir);
    nlohmann::json config = {
        {"listen", "127.0.0.1:0"},
        {"data_dir", dir + "/data"},
        {"durability", "sync"},
        {"threads", 2},
        {"log_level", "info"},
        {"server", {{"body_bytes_max", 65536}, {"io_threads", 1}, {"worker_threads", 2}}},
        {"engine", {{"read_wait_ms_max", 1000}}},
        {"api_keys",
         {{{"key", admin_key}, {"role", "admin"}},
          {{"key", issuer_key}, {"role", "issuer"}, {"ledgers", {1}}}}}};
    config.merge_patch(extra);
    std::ofstream(dir + "/pointexd.json") << config.dump(2);
    start();
  }

  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  /// Starts the process and waits until /healthz answers 200.
  void start() {
    const std::string port_file = dir_ + "/port";
    std::remove(port_file.c_str());
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const std::string log = dir_ + "/pointexd.log";
      FILE* out = std::freopen(log.c_str(), "a", stderr);
      (void)out;
      const std::string config = dir_ + "/pointexd.json";
      execl(POINTEXD, POINTEXD, "--config", config.c_str(), "--port-file", port_file.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(port_file);
      if (in >> port_ && port_ > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(port_ > 0);
    client::HttpClient c("127.0.0.1", port_);
    while (std::chrono::steady_clock::now() < deadline) {
      if (c.request("GET", "/healthz").status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("pointexd did not become ready; log:\n" << log());
  }

  /// Sends `sig` and returns the exit status (or 128 + signal).
  int signal_and_wait(int sig) {
    REQUIRE(pid_ > 0);
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    port_ = 0;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
  }

  std::uint16_t port() const { return static_cast<std::uint16_t>(port_); }
  pid_t pid() const { return pid_; }
  std::string log() const {
    std::ifstream in(dir_ + "/pointexd.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

struct Answer {
  int status = 0;
  nlohmann::json body;
  std::string text;
  std::map<std::string, std::string> headers;
};

/// One request; the body parsed as JSON when it is JSON.
inline Answer call(client::HttpClient& c, const std::string& method, const std::string& target,
                   const std::string& body = {}, const client::Headers& headers = auth()) {
  client::HttpResult r = c.request(method, target, body, headers);
  INFO(r.error);
  Answer a;
  a.status = r.status;
  a.text = r.body;
  a.headers = r.headers;
  a.body = nlohmann::json::parse(r.body, nullptr, false);
  return a;
}

}  // namespace pointex::test

#pragma once
/// pointexd's check-back client (docs/workflows.md, "Check-backs"): each check is a
/// `POST <url>` with `{"transfer_id","debit_account","credit_account","amount","ledger","code",
/// "user_data","attempt"}`, signed `X-Signature: <hex HMAC-SHA256 of the body with the
/// configured secret>`; the answer `{"outcome":"commit"|"rollback"|"unknown"}` (2xx) decides.
/// Anything else (no answer, another status, another body) counts as unknown, with why. Checks
/// run on the client's own threads, never the engine's.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <pointex/checkback.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace pointex::server {

struct CheckBackConfig {
  /// The HMAC key of every check's signature (16 bytes at least; empty: checks unsigned).
  std::string secret;
  /// Time to connect, send and get an answer. Default: 5000 ms.
  std::uint32_t timeout_ms = 5000;
  /// Checks in flight at once. Default: 2.
  std::uint32_t threads = 2;
};

class HttpCheckBackClient final : public pointex::CheckBackClient {
 public:
  explicit HttpCheckBackClient(CheckBackConfig config);
  ~HttpCheckBackClient() override;
  HttpCheckBackClient(const HttpCheckBackClient&) = delete;
  HttpCheckBackClient& operator=(const HttpCheckBackClient&) = delete;

  void check(const CheckRequest& request, CheckCallback done) override;

  /// The body a check sends (tests sign and compare it).
  static std::string body(const CheckRequest& request);
  /// What an HTTP answer means: `status` 0 is no answer (`error` says why).
  static CheckAnswer answer_of(int status, const std::string& body, std::string* detail);

 private:
  void run();

  const CheckBackConfig config_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<CheckRequest, CheckCallback>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace pointex::server

#pragma once
/// Transactional messages with check-back (docs/workflows.md, "Check-backs"; RocketMQ's half
/// messages): a pending transfer that carries a URL. Its client posts or voids it as usual; if
/// neither comes before its check time, the engine asks the URL for the outcome (commit,
/// rollback, unknown) and posts or voids it, asking again with backoff while the answer is
/// unknown; after the last check it voids the transfer and parks the case for an operator.
/// No CAF or RocksDB type appears here.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pointex/types.hpp"

namespace pointex {

/// A check-back URL: http://host[:port][/path], at most this long.
inline constexpr std::size_t check_back_url_bytes_max = 2048;
inline constexpr std::size_t check_back_note_bytes_max = 1024;
/// The most checks a case may ask for.
inline constexpr std::uint32_t check_back_checks_max = 100;
/// The longest wait before the first check: 30 days.
inline constexpr std::uint32_t check_back_after_s_max = 30U * 86'400U;

/// A pending transfer with a check-back. Two submissions are the same when every field is
/// equal. The case's id is the transfer's id (1 to process_id_max): one check-back per id.
struct CheckedTransfer {
  /// Must carry transfer_flags::pending, and timeout_s 0 (the check-back decides its end).
  Transfer transfer;
  std::string url;
  /// Seconds after the pending transfer is made before the first check (1 to
  /// check_back_after_s_max).
  std::uint32_t check_after_s = 60;
  /// Checks before the case is parked (1 to check_back_checks_max); 0: the engine's default
  /// (EngineOptions::check_back_checks_default).
  std::uint32_t checks_max = 0;

  bool operator==(const CheckedTransfer& o) const {
    return transfer == o.transfer && url == o.url && check_after_s == o.check_after_s &&
           checks_max == o.checks_max;
  }
  bool operator!=(const CheckedTransfer& o) const { return !(*this == o); }
};

/// What the URL said. Stable numbers.
enum class CheckAnswer : std::uint8_t { commit = 0, rollback = 1, unknown = 2 };
std::string_view to_string(CheckAnswer answer);

/// Where a case is. Stable numbers.
enum class CheckBackStatus : std::uint8_t {
  /// The transfer is pending: waiting for its client or its next check (or its post or void
  /// is under way).
  pending = 0,
  /// Posted: by a check's `commit`, or by its client.
  committed = 1,
  /// Voided: by a check's `rollback`, or by its client.
  rolled_back = 2,
  /// No answer but unknown after the last check: voided, waiting for an operator.
  parked = 3,
  /// Parked, then resolved by an operator (with a note).
  resolved = 4,
  /// The pending transfer was refused (see transfer_result): nothing was made.
  failed = 5,
};
std::string_view to_string(CheckBackStatus status);

/// Answer of create_checked_transfer and resolve_check_back. Stable numbers.
enum class CheckBackResult : std::uint32_t {
  ok = 0,
  exists = 1,
  exists_with_different_fields = 2,
  /// The transfer is not a valid pending transfer without timeout (transfer_result says why,
  /// or it lacks the pending flag, or has a timeout).
  transfer_invalid = 3,
  id_reserved = 4,
  url_invalid = 5,
  check_after_invalid = 6,
  checks_max_invalid = 7,
  /// resolve: no such case.
  not_found = 8,
  /// resolve: the case is not parked.
  not_parked = 9,
  note_too_long = 10,
};
inline constexpr std::uint32_t check_back_result_count = 11;
std::string_view to_string(CheckBackResult result);

/// One check as recorded.
struct CheckRecord {
  std::uint32_t attempt = 0;
  CheckAnswer answer = CheckAnswer::unknown;
  /// Why it counted as unknown when the URL did not answer a valid outcome ("503", "no
  /// answer: ...", "invalid answer").
  std::string detail;
  std::uint64_t timestamp = 0;
};

/// A case as a lookup shows it.
struct CheckBackInfo {
  CheckedTransfer request;
  CheckBackStatus status = CheckBackStatus::pending;
  /// failed: the pending transfer's result.
  TransferResult transfer_result = TransferResult::ok;
  /// Engine clock (Unix ns) of the next check while pending.
  std::uint64_t next_check_at = 0;
  std::vector<CheckRecord> checks;
  /// committed / rolled_back: whether its client did it (true) or a check's answer (false).
  bool by_client = false;
  std::string note;
  /// Nothing more happens to it (posted or voided; parked ones once resolved).
  bool settled = false;
  std::uint64_t created_at = 0;
  std::uint64_t updated_at = 0;
  std::uint64_t position = 0;
};

struct CheckBackOutcome {
  CheckBackResult result = CheckBackResult::ok;
  /// transfer_invalid: why, when the transfer's own checks refused it.
  TransferResult transfer_result = TransferResult::ok;
  std::optional<CheckBackInfo> check_back;
};

/// What a check sends to its URL.
struct CheckRequest {
  Transfer transfer;
  std::string url;
  std::uint32_t attempt = 0;
};
/// Runs once per check, on any thread, never inside check().
using CheckCallback = std::function<void(CheckAnswer answer, std::string detail)>;

/// Asks check-back URLs. The engine calls it from its flows thread: no call may block. pointexd
/// has an HTTP one (signed POSTs); an embedder may plug its own.
class CheckBackClient {
 public:
  virtual ~CheckBackClient() = default;
  virtual void check(const CheckRequest& request, CheckCallback done) = 0;
};

}  // namespace pointex

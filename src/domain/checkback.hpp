#pragma once
/// Check-backs as pure functions (docs/workflows.md, "Check-backs"): the checks of a case, the
/// encoding and fold of its steps, the decisions on the client's state and each check's
/// answer, the backoff, and the case's transfers. No I/O, no clock reads.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/codec.hpp"
#include "domain/process.hpp"
#include "pointex/checkback.hpp"

namespace pointex::domain {

/// A case's steps (ProcessStepped::step). Stable numbers.
enum class CheckStep : std::uint8_t {
  /// The request (checks_max resolved) and when the first check is due.
  started = 0,
  /// The pending transfer is made.
  made = 1,
  /// One check's answer (and when the next is due, if any).
  checked = 2,
  /// The outcome: post, void, park (void), or the pending transfer refused.
  decided = 3,
  /// The post or void is done: the transfer's final state.
  completed = 4,
  /// An operator resolved a parked case.
  resolved = 5,
};

/// What decided a case. Stable numbers.
enum class CheckOutcome : std::uint8_t {
  commit = 0,
  rollback = 1,
  /// Unknown after the last check: void and park.
  park = 2,
  /// The pending transfer was refused: nothing to resolve.
  fail = 3,
  /// Its client posted or voided it before a check.
  client_committed = 4,
  client_rolled_back = 5,
};

/// Checks of a request that need nothing but its fields (the transfer's own checks are
/// validate_transfer's): `*transfer_result` says why when transfer_invalid.
CheckBackResult validate_checked_transfer(const CheckedTransfer& request,
                                          TransferResult* transfer_result);

struct CheckStarted {
  CheckedTransfer request;  // checks_max resolved (never 0)
  std::uint64_t first_check_at = 0;
};
struct CheckChecked {
  CheckRecord check;  // timestamp from the step
  /// Unknown with checks left: when the next check is due; else 0.
  std::uint64_t next_check_at = 0;
};
struct CheckDecided {
  CheckOutcome outcome = CheckOutcome::commit;
  TransferResult transfer_result = TransferResult::ok;
};
struct CheckCompleted {
  /// The transfer's final state: posted (else voided).
  bool posted = false;
};
struct CheckResolved {
  std::string note;
};

std::string encode_step(const CheckStarted& s);
std::string encode_step(const CheckChecked& c);
std::string encode_step(const CheckDecided& d);
std::string encode_step(const CheckCompleted& c);
std::string encode_step(const CheckResolved& r);
std::string encode_empty_check_step();
[[nodiscard]] DecodeError decode_step(std::string_view data, CheckStarted* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, CheckChecked* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, CheckDecided* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, CheckCompleted* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, CheckResolved* out);

/// A case as the fold of its steps.
struct CheckState {
  CheckStarted started;
  bool made = false;
  std::vector<CheckRecord> checks;
  std::uint64_t next_check_at = 0;
  bool decided = false;
  CheckDecided decision;
  bool completed = false;
  CheckCompleted final;
  bool resolved = false;
  std::string note;
  std::uint64_t created_at = 0;
  std::uint64_t updated_at = 0;
  std::uint64_t last_position = 0;
};
/// Valid histories: started, made (unless decided fail), checks (each with the next
/// attempt number, at most checks_max), decided, completed, then resolved for a park.
[[nodiscard]] DecodeError fold_check_back(const ProcessRecord& record, CheckState* state);
/// Completed, and resolved if it was parked.
bool check_back_finished(const ProcessRecord& record);
CheckBackInfo check_back_info(const CheckState& state);
CheckBackStatus check_back_status(const CheckState& state);

/// The case's pending transfer, as requested.
Transfer check_back_pending(const CheckStarted& started);
/// Its post or void: id = workflow_transfer_id_min | transfer id, on the debit account.
Transfer check_back_resolution(const CheckStarted& started, bool post);
/// Whether the post or void answered is final: `*posted` is the transfer's state then.
/// ok / exists: as asked; already posted / voided / expired: the client's (false otherwise).
bool check_back_resolution_final(bool post, TransferResult result, bool* posted);

/// The pending transfer answered: nullopt when made (ok, or exists: before a crash); else the
/// case fails with that result.
std::optional<CheckDecided> decide_after_pending(TransferResult result);
/// Due for a check (made, not decided, time reached).
bool check_due(const CheckState& state, std::uint64_t now_ns);
/// Before a check: the client's transfer state, if it resolved the transfer itself.
std::optional<CheckDecided> decide_from_client(TransferState state);
/// A check answered at `now_ns`: the step to record, and the decision it makes (none while
/// unknown with checks left). The next check waits backoff_base_ms * 2^(attempt - 1), at most
/// backoff_max_ms.
struct CheckAnswered {
  CheckChecked step;
  std::optional<CheckDecided> decided;
};
CheckAnswered decide_check(const CheckState& state, CheckAnswer answer, std::string detail,
                           std::uint64_t now_ns, std::uint32_t backoff_base_ms,
                           std::uint32_t backoff_max_ms);
/// The decision the last recorded check made (commit, rollback, or park after the last
/// unknown), or nullopt while the next check is awaited.
std::optional<CheckDecided> decided_by_last_check(const CheckState& state);
/// An operator's resolve: ok, not_parked, or note_too_long.
CheckBackResult decide_resolve(const CheckState& state, std::string_view note);

}  // namespace pointex::domain

#pragma once
/// The alliance exchange as pure functions (docs/workflows.md): rates, amounts and rounding,
/// daily caps, the two pending legs, the decision after the legs answered (or after a crash),
/// and the encoding of its steps. No I/O, no clock reads: the engine passes the day.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/codec.hpp"
#include "domain/process.hpp"
#include "pointex/types.hpp"

namespace pointex::domain {

inline constexpr std::uint64_t ns_per_day = 86'400ULL * 1'000'000'000ULL;
inline constexpr std::uint32_t fee_bps_max = 10'000;

/// The UTC day (days since 1970-01-01) of a Unix-nanosecond time.
inline std::uint32_t utc_day(std::uint64_t ns) {
  return static_cast<std::uint32_t>(ns / ns_per_day);
}

/// Checks of a rate that need nothing but its fields (ledgers and accounts are checked by the
/// caller, in the order of RateResult's numbers, after these).
RateResult validate_rate(const Rate& rate);
/// The exchange accounts: `from`/`to` are their definitions, or null when not found.
RateResult check_rate_accounts(const Rate& rate, const AccountSpec* from, const AccountSpec* to);

/// Checks of an exchange that need nothing but its fields.
ExchangeResult validate_exchange(const Exchange& exchange);

/// The amounts of exchanging `amount` A-points at `rate`:
///   gross = floor(amount * numerator / denominator), fee = ceil(gross * fee_bps / 10000),
///   credited = gross - fee.
/// `result` is ok, overflow (gross over 2^64 - 1) or amount_too_small (credited 0).
struct ExchangeQuote {
  ExchangeResult result = ExchangeResult::ok;
  std::uint64_t gross = 0;
  std::uint64_t fee = 0;
  std::uint64_t credited = 0;
};
ExchangeQuote quote_exchange(const Rate& rate, std::uint64_t amount);

CounterKey member_counter(std::uint32_t day, AccountId member);
CounterKey pair_counter(std::uint32_t day, LedgerId from_ledger, LedgerId to_ledger);
/// ok, member_daily_cap_exceeded or pair_daily_cap_exceeded: whether `amount` more A-points
/// by `member` on `day` stay within the rate's caps, given what is counted already.
ExchangeResult check_caps(const Rate& rate, const CounterTable& counted, AccountId member,
                          std::uint32_t day, std::uint64_t amount);

/// The steps of an exchange (ProcessStepped::step).
inline constexpr std::uint8_t step_started = static_cast<std::uint8_t>(ExchangeStep::started);
inline constexpr std::uint8_t step_decided = static_cast<std::uint8_t>(ExchangeStep::decided);
inline constexpr std::uint8_t step_completed = static_cast<std::uint8_t>(ExchangeStep::completed);

/// `started`: everything later steps and recovery need, fixed when it began (a rate set later
/// changes nothing of it).
struct ExchangeStarted {
  Exchange request;
  LedgerId from_ledger = 0;
  LedgerId to_ledger = 0;
  AccountId from_exchange_account = 0;
  AccountId to_exchange_account = 0;
  std::uint64_t gross = 0;
  std::uint64_t fee = 0;
  std::uint64_t credited = 0;
  std::uint32_t day = 0;
};

/// Legs as a bit set: bit 0 = leg 1, bit 1 = leg 2.
inline constexpr std::uint8_t leg1_bit = 1;
inline constexpr std::uint8_t leg2_bit = 2;

/// `decided`: commit (post both legs) or abort (void the legs in `legs`).
struct ExchangeDecided {
  bool commit = false;
  ExchangeResult result = ExchangeResult::ok;
  std::uint32_t leg = 0;
  TransferResult leg_result = TransferResult::ok;
  /// The legs to post (commit: both) or to void (abort: those that were made).
  std::uint8_t legs = 0;
};

/// `completed`: the final outcome (the decided one).
struct ExchangeCompleted {
  ExchangeResult result = ExchangeResult::ok;
};

std::string encode_step(const ExchangeStarted& started);
std::string encode_step(const ExchangeDecided& decided);
std::string encode_step(const ExchangeCompleted& completed);
[[nodiscard]] DecodeError decode_step(std::string_view data, ExchangeStarted* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, ExchangeDecided* out);
[[nodiscard]] DecodeError decode_step(std::string_view data, ExchangeCompleted* out);

/// An exchange as the fold of its steps.
struct ExchangeState {
  ExchangeStarted started;
  ExchangeStep step = ExchangeStep::started;
  ExchangeDecided decided;
  ExchangeCompleted completed;
  std::uint64_t started_at = 0;
  std::uint64_t updated_at = 0;
  std::uint64_t last_position = 0;
};
/// Folds a record (its steps must be started, then optionally decided, then completed).
[[nodiscard]] DecodeError fold_exchange(const ProcessRecord& record, ExchangeState* state);
ExchangeInfo exchange_info(const ExchangeState& state);

/// The two pending legs (no timeout; code exchange_transfer_code; id = the exchange id):
///   leg 1: from_account -> from_exchange_account, amount, on from_ledger;
///   leg 2: to_exchange_account -> to_account, credited, on to_ledger.
std::array<Transfer, 2> exchange_legs(const ExchangeStarted& started);
/// The post (commit) or void of leg `index` (0 or 1): id = workflow_transfer_id_min | exchange
/// id, on the leg's debit account.
Transfer leg_resolution(const ExchangeStarted& started, std::size_t index, bool post);

/// After both legs answered: commit when both are ok; else abort with the first failing leg's
/// result, voiding the leg that succeeded.
ExchangeDecided decide_after_legs(TransferResult leg1, TransferResult leg2);

/// After a crash between `started` and `decided` (nobody was answered): the legs as the
/// accounts hold them (null: no transfer with that id). A leg is the exchange's own when it
/// equals exchange_legs() exactly. Commit when both are its own and pending; else abort, voiding
/// its own pending legs (interrupted, or leg_failed with exists_with_different_fields when a
/// transfer of a client holds a leg's id).
ExchangeDecided decide_after_crash(const ExchangeStarted& started,
                                   const std::optional<TransferInfo>& leg1,
                                   const std::optional<TransferInfo>& leg2);

/// Whether a post (commit) or void of a leg is done: ok, exists (done before a crash), or
/// the pending transfer already in the wanted state.
bool resolution_done(bool commit, TransferResult result);

/// The answer to the caller who started the exchange (`first`) or to a retry of it.
ExchangeOutcome exchange_outcome(const ExchangeState& state, bool first);

}  // namespace pointex::domain

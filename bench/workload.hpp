#pragma once
/// The bench workloads, defined once for the embedded bench and the HTTP mode (the PostgreSQL
/// baseline in bench/postgres/ implements the same definitions in SQL):
///
///   W1 uniform      member -> random member, amount 1
///   W2 hot          the ONE issuer account -> random member (a campaign), amount 1
///   W3 earn-redeem  70% earn (issuer -> member, amount 1), 30% redeem (member -> issuer). A
///                   redeem is for 1 point, except a set share (`redeem_fail_share`, default
///                   10%) that asks for more than any member can hold (`overdraw_amount`) and
///                   so must fail with `exceeds_credits`: the number of failures is known in
///                   advance and checked exactly.
///   W4 two-phase    member -> random member pending (amount 1), then, once answered, post or
///                   void it (`post_share`, default 50%). One two-phase transfer is the pending
///                   transfer and its post or void (two commits).
///
/// Every member is funded with `member_funding` at setup, which no workload can exhaust with
/// amounts of 1: a failure other than W3's planned ones is a bug and fails the run.

#include <array>
#include <cstdint>
#include <optional>
#include <pointex/types.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace pointex::bench {

enum class Workload : std::uint8_t { uniform = 0, hot = 1, earn_redeem = 2, two_phase = 3 };
inline constexpr std::array<Workload, 4> all_workloads = {
    Workload::uniform, Workload::hot, Workload::earn_redeem, Workload::two_phase};

/// `uniform`, `hot`, `earn-redeem`, `two-phase`, or their aliases `w1`..`w4`.
std::optional<Workload> parse_workload(std::string_view name);
std::string_view to_string(Workload workload);
/// "W1".."W4".
std::string_view short_name(Workload workload);

// The bench's ledger and accounts: the same ids in every mode.
inline constexpr LedgerId bench_ledger = 1;
inline constexpr AccountId issuer_id = 1;
inline constexpr AccountId first_member = 1'000'001;
inline constexpr std::uint64_t member_funding = 1'000'000'000;
/// W3's planned failures redeem this much: more than any member can hold during a run.
inline constexpr std::uint64_t overdraw_amount = 1'000'000'000'000'000ULL;

/// What one submitted item is, for counting results.
enum class OpKind : std::uint8_t {
  transfer = 0,
  earn = 1,
  redeem = 2,
  pending = 3,
  post = 4,
  void_pending = 5
};
inline constexpr std::size_t op_kind_count = 6;
std::string_view to_string(OpKind kind);

struct WorkloadOptions {
  Workload workload = Workload::uniform;
  /// Members used: the first `active` of them.
  std::uint32_t active = 2;
  /// W3: share of operations that are earns (the rest are redeems).
  double earn_share = 0.7;
  /// W3: share of redeems that ask for `overdraw_amount` and must fail.
  double redeem_fail_share = 0.1;
  /// W4: share of pending transfers that are posted (the rest are voided).
  double post_share = 0.5;
};

/// Makes the transfers of a workload. Not thread-safe: one generator per submitting thread.
class Generator {
 public:
  Generator(const WorkloadOptions& options, std::uint64_t seed, std::uint64_t first_id);

  /// The first (for W1-W3 the only) phase of an operation: `count` transfers, and what each is.
  void first_phase(std::uint32_t count, std::vector<Transfer>* transfers,
                   std::vector<OpKind>* kinds);
  /// W4: a post or void for every pending transfer in `pendings` answered `ok`. Empty for the
  /// other workloads.
  void second_phase(const std::vector<Transfer>& pendings,
                    const std::vector<TransferResult>& results, std::vector<Transfer>* transfers,
                    std::vector<OpKind>* kinds);

  bool two_phase() const { return options_.workload == Workload::two_phase; }
  /// Items made so far that must fail (W3's overdrawing redeems).
  std::uint64_t planned_failures() const { return planned_failures_; }
  std::uint64_t next_id() const { return next_id_; }

 private:
  AccountId member();
  WorkloadOptions options_;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<std::uint32_t> member_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  std::uint64_t next_id_;
  std::uint64_t planned_failures_ = 0;
};

/// Results counted by kind of item and result code.
class Tally {
 public:
  void add(OpKind kind, TransferResult result) {
    ++counts_[static_cast<std::size_t>(kind)][static_cast<std::size_t>(result)];
  }
  std::uint64_t count(OpKind kind, TransferResult result) const {
    return counts_[static_cast<std::size_t>(kind)][static_cast<std::size_t>(result)];
  }
  /// Items of this kind, any result.
  std::uint64_t total(OpKind kind) const;
  /// Items, any kind, any result other than ok.
  std::uint64_t failures() const;
  /// Checks the results against the workload's definition: every item `ok` except exactly
  /// `planned_failures` redeems answered `exceeds_credits`. Empty when they agree, else what
  /// did not.
  std::string check(std::uint64_t planned_failures) const;
  /// "kind result=count ..." for the non-zero counts.
  std::string summary() const;
  /// Visits every non-zero count.
  template <class F>
  void for_each(F f) const {
    for (std::size_t k = 0; k < op_kind_count; ++k) {
      for (std::size_t r = 0; r < transfer_result_count; ++r) {
        if (counts_[k][r] != 0) {
          f(static_cast<OpKind>(k), static_cast<TransferResult>(r), counts_[k][r]);
        }
      }
    }
  }

 private:
  std::array<std::array<std::uint64_t, transfer_result_count>, op_kind_count> counts_{};
};

/// A transfer as the JSON item of POST /v1/transfers.
void append_json(const Transfer& t, std::string* out);

}  // namespace pointex::bench

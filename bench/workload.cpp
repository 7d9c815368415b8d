#include "workload.hpp"

#include <fmt/core.h>
#include <fmt/format.h>

#include <iterator>

namespace pointex::bench {

std::optional<Workload> parse_workload(std::string_view name) {
  if (name == "uniform" || name == "w1" || name == "W1") return Workload::uniform;
  if (name == "hot" || name == "w2" || name == "W2") return Workload::hot;
  if (name == "earn-redeem" || name == "w3" || name == "W3") return Workload::earn_redeem;
  if (name == "two-phase" || name == "w4" || name == "W4") return Workload::two_phase;
  return std::nullopt;
}

std::string_view to_string(Workload workload) {
  switch (workload) {
    case Workload::uniform:
      return "uniform";
    case Workload::hot:
      return "hot";
    case Workload::earn_redeem:
      return "earn-redeem";
    case Workload::two_phase:
      return "two-phase";
  }
  return "?";
}

std::string_view short_name(Workload workload) {
  switch (workload) {
    case Workload::uniform:
      return "W1";
    case Workload::hot:
      return "W2";
    case Workload::earn_redeem:
      return "W3";
    case Workload::two_phase:
      return "W4";
  }
  return "?";
}

std::string_view to_string(OpKind kind) {
  switch (kind) {
    case OpKind::transfer:
      return "transfer";
    case OpKind::earn:
      return "earn";
    case OpKind::redeem:
      return "redeem";
    case OpKind::pending:
      return "pending";
    case OpKind::post:
      return "post";
    case OpKind::void_pending:
      return "void";
  }
  return "?";
}

Generator::Generator(const WorkloadOptions& options, std::uint64_t seed, std::uint64_t first_id)
    : options_(options), rng_(seed), member_(0, options.active - 1), next_id_(first_id) {}

AccountId Generator::member() {
  return first_member + member_(rng_);
}

void Generator::first_phase(std::uint32_t count, std::vector<Transfer>* transfers,
                            std::vector<OpKind>* kinds) {
  transfers->clear();
  kinds->clear();
  transfers->reserve(count);
  kinds->reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    Transfer t;
    t.id = next_id_++;
    t.amount = 1;
    t.ledger = bench_ledger;
    t.code = 3;
    OpKind kind = OpKind::transfer;
    switch (options_.workload) {
      case Workload::uniform:
      case Workload::two_phase:
        t.credit_account = member();
        do {
          t.debit_account = member();
        } while (t.debit_account == t.credit_account);
        if (options_.workload == Workload::two_phase) {
          t.flags = transfer_flags::pending;
          kind = OpKind::pending;
        }
        break;
      case Workload::hot:
        t.debit_account = issuer_id;
        t.credit_account = member();
        break;
      case Workload::earn_redeem:
        if (unit_(rng_) < options_.earn_share) {
          kind = OpKind::earn;
          t.code = 1;
          t.debit_account = issuer_id;
          t.credit_account = member();
        } else {
          kind = OpKind::redeem;
          t.code = 2;
          t.debit_account = member();
          t.credit_account = issuer_id;
          if (unit_(rng_) < options_.redeem_fail_share) {
            t.amount = overdraw_amount;
            ++planned_failures_;
          }
        }
        break;
    }
    transfers->push_back(t);
    kinds->push_back(kind);
  }
}

void Generator::second_phase(const std::vector<Transfer>& pendings,
                             const std::vector<TransferResult>& results,
                             std::vector<Transfer>* transfers, std::vector<OpKind>* kinds) {
  transfers->clear();
  kinds->clear();
  if (!two_phase()) return;
  for (std::size_t i = 0; i < pendings.size() && i < results.size(); ++i) {
    if (results[i] != TransferResult::ok) continue;
    Transfer t;
    t.id = next_id_++;
    t.debit_account = pendings[i].debit_account;
    t.pending_id = pendings[i].id;
    const bool post = unit_(rng_) < options_.post_share;
    t.flags = post ? transfer_flags::post_pending : transfer_flags::void_pending;
    transfers->push_back(t);
    kinds->push_back(post ? OpKind::post : OpKind::void_pending);
  }
}

std::uint64_t Tally::total(OpKind kind) const {
  std::uint64_t n = 0;
  for (std::uint64_t c : counts_[static_cast<std::size_t>(kind)]) n += c;
  return n;
}

std::uint64_t Tally::failures() const {
  std::uint64_t n = 0;
  for (const auto& by_result : counts_) {
    for (std::size_t r = 1; r < by_result.size(); ++r) n += by_result[r];
  }
  return n;
}

std::string Tally::check(std::uint64_t planned_failures) const {
  std::string problems;
  for_each([&](OpKind kind, TransferResult result, std::uint64_t n) {
    if (result == TransferResult::ok) return;
    if (kind == OpKind::redeem && result == TransferResult::exceeds_credits) return;
    problems += fmt::format("{}{} {} answered {}", problems.empty() ? "" : "; ", n, to_string(kind),
                            to_string(result));
  });
  const std::uint64_t refused = count(OpKind::redeem, TransferResult::exceeds_credits);
  if (refused != planned_failures) {
    problems += fmt::format("{}{} redeems answered exceeds_credits, {} were planned to",
                            problems.empty() ? "" : "; ", refused, planned_failures);
  }
  return problems;
}

std::string Tally::summary() const {
  std::string out;
  for_each([&](OpKind kind, TransferResult result, std::uint64_t n) {
    out +=
        fmt::format("{}{} {}={}", out.empty() ? "" : ", ", to_string(kind), to_string(result), n);
  });
  return out;
}

void append_json(const Transfer& t, std::string* out) {
  auto it = std::back_inserter(*out);
  if ((t.flags & (transfer_flags::post_pending | transfer_flags::void_pending)) != 0) {
    fmt::format_to(it, R"({{"id":{},"debit_account":{},"pending_id":{},"flags":["{}"]}})", t.id,
                   t.debit_account, t.pending_id,
                   (t.flags & transfer_flags::post_pending) != 0 ? "post_pending" : "void_pending");
    return;
  }
  fmt::format_to(it,
                 R"({{"id":{},"debit_account":{},"credit_account":{},"amount":{},"ledger":{},)"
                 R"("code":{}{}}})",
                 t.id, t.debit_account, t.credit_account, t.amount, t.ledger, t.code,
                 (t.flags & transfer_flags::pending) != 0 ? R"(,"flags":["pending"])" : "");
}

}  // namespace pointex::bench

// The process the crash test kills: it opens an engine on a data dir and submits transfers in
// a loop until SIGKILLed, printing one line per acknowledged item to stdout:
//   A <result> <debit_account> <id> <position>
// Every line is printed only after the engine answered it, so whatever the parent reads was
// acknowledged. A first line `R` says the engine is open and set up. Retries of earlier
// acknowledged transfers must answer `exists`: anything else prints `E ...` and exits 3.
//
// usage: pointex-crash-child DATA_DIR SEED

#include <cstdio>
#include <cstdlib>
#include <pointex/engine.hpp>
#include <random>
#include <string>
#include <vector>

using namespace pointex;

namespace {
constexpr LedgerId ledger = 1;
constexpr AccountId issuer = 1;
constexpr AccountId first_member = 100;
constexpr std::uint32_t members = 20;

[[noreturn]] void die(const char* what, const Status& s) {
  std::fprintf(stderr, "crash-child: %s: %s\n", what, s.to_string().c_str());
  std::exit(2);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: pointex-crash-child DATA_DIR SEED\n");
    return 2;
  }
  const std::uint64_t seed = std::strtoull(argv[2], nullptr, 10);
  EngineOptions options;
  options.data_dir = argv[1];
  // Small caches and a small lag bound, so that record eviction, passivation and commits
  // waiting for the projector all happen while the process may be killed.
  options.account_records_cached_max = 8;
  options.live_actors_max = 8;
  options.accounts_in_memory_max = 12;
  options.projection_lag_max = 5000;
  std::unique_ptr<Engine> engine;
  Status s = Engine::open(options, &engine);
  if (!s.is_ok()) die("open", s);
  LedgerResult lr{};
  s = engine->create_ledger({ledger, "CRASH", "crash test", 0, 0}, &lr);
  if (!s.is_ok()) die("ledger", s);
  std::vector<AccountSpec> specs{{issuer, ledger, AccountKind::issuer, 0, 0, "issuer"}};
  for (std::uint32_t i = 0; i < members; ++i) {
    specs.push_back({first_member + i, ledger, AccountKind::member,
                     account_flags::debits_must_not_exceed_credits, 0, "m"});
  }
  std::vector<AccountResult> ar;
  s = engine->create_accounts(specs, &ar);
  if (!s.is_ok()) die("accounts", s);

  std::printf("R\n");  // ready: the parent times the kill from here
  std::fflush(stdout);

  std::mt19937_64 rng(seed);
  auto pick = [&](std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng);
  };
  std::uint64_t counter = 0;
  std::vector<Transfer> acked;    // for retries
  std::vector<Transfer> pending;  // acknowledged pending transfers, to post or void
  for (;;) {
    std::vector<Transfer> batch;
    std::vector<bool> retry;
    for (int i = 0; i < 64; ++i) {
      Transfer t;
      t.id = (seed << 32) | ++counter;
      t.ledger = ledger;
      t.code = 1;
      const std::uint64_t dice = pick(100);
      const AccountId m1 = first_member + pick(members);
      AccountId m2 = first_member + pick(members);
      if (m2 == m1) m2 = first_member + (m1 - first_member + 1) % members;
      bool is_retry = false;
      if (dice < 30) {
        t.debit_account = issuer, t.credit_account = m1, t.amount = 1 + pick(100);
      } else if (dice < 70) {
        t.debit_account = m1, t.credit_account = m2, t.amount = 1 + pick(50);
      } else if (dice < 80) {
        t.debit_account = m1, t.credit_account = issuer, t.amount = 1 + pick(20);
        t.flags = transfer_flags::pending, t.timeout_s = 1;
      } else if (dice < 90 && !pending.empty()) {
        const std::size_t k = pick(pending.size());
        const Transfer p = pending[k];
        pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(k));
        t.debit_account = p.debit_account;
        t.pending_id = p.id;
        t.ledger = 0, t.code = 0;
        t.flags = pick(2) == 0 ? transfer_flags::post_pending : transfer_flags::void_pending;
      } else if (!acked.empty()) {
        t = acked[pick(acked.size())];
        is_retry = true;
      } else {
        continue;
      }
      batch.push_back(t);
      retry.push_back(is_retry);
    }
    std::vector<TransferOutcome> outcomes;
    s = engine->submit_transfers(batch, &outcomes);
    if (!s.is_ok()) die("submit", s);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const TransferOutcome& o = outcomes[i];
      if (retry[i] && o.result != TransferResult::exists) {
        std::printf("E retry of %llu answered %s\n", static_cast<unsigned long long>(batch[i].id),
                    std::string(to_string(o.result)).c_str());
        std::fflush(stdout);
        return 3;
      }
      if (o.result != TransferResult::ok && o.result != TransferResult::exists) continue;
      std::printf("A %s %llu %llu %llu\n", std::string(to_string(o.result)).c_str(),
                  static_cast<unsigned long long>(batch[i].debit_account),
                  static_cast<unsigned long long>(batch[i].id),
                  static_cast<unsigned long long>(o.position));
      if (o.result == TransferResult::ok) {
        if (acked.size() < 4096) acked.push_back(batch[i]);
        if (batch[i].flags == transfer_flags::pending) pending.push_back(batch[i]);
      }
    }
    std::fflush(stdout);
  }
}

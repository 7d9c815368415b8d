// pointex-demo: opens an engine on a data dir, creates a ledger and accounts, runs transfers
// (earn, give, pending then post, redeem) and prints balances. Ids are fixed, so running it
// again shows idempotency: every command answers `exists` and the balances stay the same.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <pointex/engine.hpp>

using namespace pointex;

namespace {

constexpr LedgerId mall = 1;
constexpr AccountId issuance = 1000;
constexpr AccountId redemption = 1001;
constexpr AccountId alice = 2001;
constexpr AccountId bob = 2002;
constexpr std::uint16_t code_earn = 1;
constexpr std::uint16_t code_redeem = 2;
constexpr std::uint16_t code_p2p = 3;

int fail(const Status& s) {
  fmt::print(stderr, "pointex-demo: {}\n", s.to_string());
  return 1;
}

void print_outcomes(const std::vector<Transfer>& transfers,
                    const std::vector<TransferOutcome>& outcomes) {
  for (std::size_t i = 0; i < transfers.size(); ++i) {
    fmt::print("  transfer {:>3} {:>5} -> {:<5} {:>5} pts: {:<32} position {}\n", transfers[i].id,
               transfers[i].debit_account, transfers[i].credit_account, transfers[i].amount,
               to_string(outcomes[i].result), outcomes[i].position);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"PointEx demo: a ledger, accounts, transfers and balances"};
  std::string data_dir = "./data";
  app.add_option("--data-dir", data_dir, "engine data directory")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  EngineOptions options;
  options.data_dir = data_dir;
  std::unique_ptr<Engine> engine;
  Status s = Engine::open(options, &engine);
  if (!s.is_ok()) return fail(s);
  fmt::print("opened {} ({} events recovered)\n", data_dir, engine->stats().recovered_events);

  LedgerResult lr{};
  s = engine->create_ledger({mall, "MALL", "Mall points", 365, 0}, &lr);
  if (!s.is_ok()) return fail(s);
  fmt::print("ledger MALL: {}\n", to_string(lr));

  std::vector<AccountSpec> specs = {
      {issuance, mall, AccountKind::issuer, 0, 0, "mall issuance"},
      {redemption, mall, AccountKind::issuer, 0, 0, "mall redemption"},
      {alice, mall, AccountKind::member, account_flags::debits_must_not_exceed_credits, 0, "alice"},
      {bob, mall, AccountKind::member, account_flags::debits_must_not_exceed_credits, 0, "bob"},
  };
  std::vector<AccountResult> ar;
  s = engine->create_accounts(specs, &ar);
  if (!s.is_ok()) return fail(s);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    fmt::print("account {} ({}): {}\n", specs[i].id, specs[i].owner, to_string(ar[i]));
  }

  // Earn, give, and an overdraft that must fail.
  std::vector<Transfer> first = {
      {1, issuance, alice, 500, mall, code_earn, 0, 0, 0, 0},
      {2, issuance, bob, 300, mall, code_earn, 0, 0, 0, 0},
      {3, alice, bob, 9999, mall, code_p2p, 0, 0, 0, 0},
  };
  std::vector<TransferOutcome> outcomes;
  s = engine->submit_transfers(first, &outcomes);
  if (!s.is_ok()) return fail(s);
  print_outcomes(first, outcomes);

  // Give, reserve (pending), post part of the reservation, redeem.
  std::vector<Transfer> second = {
      {4, alice, bob, 120, mall, code_p2p, 0, 0, 0, 0},
      {5, bob, redemption, 200, mall, code_redeem, transfer_flags::pending, 0, 3600, 0},
  };
  s = engine->submit_transfers(second, &outcomes);
  if (!s.is_ok()) return fail(s);
  print_outcomes(second, outcomes);
  std::vector<Transfer> third = {{6, bob, 0, 150, 0, 0, transfer_flags::post_pending, 5, 0, 0}};
  s = engine->submit_transfers(third, &outcomes);
  if (!s.is_ok()) return fail(s);
  print_outcomes(third, outcomes);

  std::vector<std::optional<Account>> accounts;
  s = engine->lookup_accounts({issuance, redemption, alice, bob}, &accounts);
  if (!s.is_ok()) return fail(s);
  fmt::print("\n{:<18} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "account", "debits", "credits", "pending",
             "balance", "available");
  std::int64_t sum = 0;
  for (const auto& a : accounts) {
    fmt::print("{:<18} {:>9} {:>9} {:>9} {:>9} {:>9}\n", a->spec.owner, a->debits_posted,
               a->credits_posted, a->debits_pending, a->balance(), a->available());
    sum += a->balance();
  }
  fmt::print("sum of balances: {} (double entry: always 0)\n", sum);
  return sum == 0 ? 0 : 1;
}

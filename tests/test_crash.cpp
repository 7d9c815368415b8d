// Crash test: a child process runs transfers through the library and prints every
// acknowledged one; we SIGKILL it at a random moment, several rounds on the same data dir, and
// after each kill reopen the data dir and check that
//   - every acknowledged transfer is present, at the position it was acknowledged with;
//   - no transfer was applied twice (the log holds each (debit account, id) once);
//   - per ledger the balances sum to zero and no member is below zero;
//   - pending amounts match the open pending transfers, and none is left once timeouts ran;
//   - the read models equal the fold of the log (Engine::verify).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <pointex/engine.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "domain/codec.hpp"
#include "store/event_log.hpp"

using namespace pointex;

namespace {

struct Ack {
  std::string result;
  AccountId debit = 0;
  TransferId id = 0;
  std::uint64_t position = 0;
};

/// Runs the child for `run_ms`, SIGKILLs it, returns every line it printed.
std::string run_and_kill(const std::string& dir, std::uint64_t seed, int run_ms) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    const std::string seed_text = std::to_string(seed);
    execl(POINTEX_CRASH_CHILD, POINTEX_CRASH_CHILD, dir.c_str(), seed_text.c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  std::mutex mutex;
  std::string output;
  std::thread reader([&] {
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      std::lock_guard<std::mutex> lock(mutex);
      output.append(buf, static_cast<std::size_t>(n));
    }
  });
  // The kill is timed from the moment the child is open (its recovery grows every round and
  // is slow under sanitizers), waiting at most a minute for that.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (bool ready = false; !ready && std::chrono::steady_clock::now() < give_up;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::lock_guard<std::mutex> lock(mutex);
    ready = output.rfind("R\n", 0) == 0;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(run_ms));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  reader.join();
  close(fds[0]);
  INFO("child output tail: " << output.substr(output.size() > 300 ? output.size() - 300 : 0));
  REQUIRE(WIFSIGNALED(status));  // killed by us, not exited on its own (exit 3 = bad retry)
  REQUIRE(WTERMSIG(status) == SIGKILL);
  return output;
}

std::vector<Ack> parse_acks(const std::string& output) {
  std::vector<Ack> acks;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // the last line may be cut by the kill
    if (line == "R") continue;
    std::istringstream l(line);
    std::string tag;
    Ack a;
    l >> tag >> a.result >> a.debit >> a.id >> a.position;
    REQUIRE(tag == "A");
    acks.push_back(a);
  }
  return acks;
}

void check_log_has_no_duplicates(const std::string& dir) {
  std::unique_ptr<store::EventLog> log;
  REQUIRE(store::EventLog::open(dir, &log).is_ok());
  std::set<std::pair<AccountId, TransferId>> seen;
  std::uint64_t transfers = 0;
  const Status s = log->scan(1, [&](std::uint64_t, std::string_view bytes) {
    domain::Event e;
    REQUIRE(domain::decode_event(bytes, &e) == domain::DecodeError::none);
    if (const auto* t = std::get_if<domain::TransferEvent>(&e); t && t->request.id != 0) {
      ++transfers;
      const bool fresh = seen.insert({t->request.debit_account, t->request.id}).second;
      INFO("transfer " << t->request.id << " of account " << t->request.debit_account);
      REQUIRE(fresh);
    }
    return true;
  });
  REQUIRE(s.is_ok());
  REQUIRE(transfers > 0);
}

struct Totals {
  std::int64_t balance_sum = 0;
  std::uint64_t debits_pending = 0;
  std::uint64_t credits_pending = 0;
  std::int64_t lowest_member = 0;
};

Totals totals(Engine& engine) {
  std::vector<AccountId> ids{1};
  for (AccountId m = 100; m < 120; ++m) ids.push_back(m);
  std::vector<std::optional<Account>> accounts;
  REQUIRE(engine.lookup_accounts(ids, &accounts).is_ok());
  Totals t;
  for (const auto& a : accounts) {
    REQUIRE(a.has_value());
    t.balance_sum += a->balance();
    t.debits_pending += a->debits_pending;
    t.credits_pending += a->credits_pending;
    if (a->spec.kind == AccountKind::member)
      t.lowest_member = std::min(t.lowest_member, a->balance());
  }
  return t;
}

}  // namespace

TEST_CASE("SIGKILL at random moments loses no acknowledged transfer and doubles none", "[crash]") {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("pointex-crash-" + std::to_string(getpid())))
          .string();
  std::filesystem::remove_all(dir);
  std::mt19937 rng(std::random_device{}());
  std::vector<Ack> all_acks;
  constexpr int rounds = 5;
  for (int round = 0; round < rounds; ++round) {
    const int run_ms = std::uniform_int_distribution<int>(400, 1500)(rng);
    const std::string output = run_and_kill(dir, 1000 + round, run_ms);
    std::vector<Ack> acks = parse_acks(output);
    INFO("round " << round << " ran " << run_ms << " ms, " << acks.size() << " acks");
    REQUIRE(acks.size() > 0);
    all_acks.insert(all_acks.end(), acks.begin(), acks.end());

    check_log_has_no_duplicates(dir);

    EngineOptions options;
    options.data_dir = dir;
    std::unique_ptr<Engine> engine;
    REQUIRE(Engine::open(options, &engine).is_ok());
    for (const Ack& a : all_acks) {
      std::optional<TransferInfo> t;
      REQUIRE(engine->lookup_transfer(a.debit, a.id, &t).is_ok());
      INFO("acknowledged " << a.result << " transfer " << a.id << " of " << a.debit);
      REQUIRE(t.has_value());
      if (a.result == "ok") REQUIRE(t->position == a.position);
    }
    Totals t = totals(*engine);
    REQUIRE(t.balance_sum == 0);
    REQUIRE(t.lowest_member >= 0);
    REQUIRE(t.debits_pending == t.credits_pending);
    // Pending transfers time out after 1 s; after that nothing may stay reserved.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((t.debits_pending != 0 || t.credits_pending != 0) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      t = totals(*engine);
    }
    REQUIRE(t.debits_pending == 0);
    REQUIRE(t.credits_pending == 0);
    REQUIRE(t.balance_sum == 0);
    // The read models (projected while the child ran, then caught up at open) agree with the
    // fold of the log: the kill never applied an event to them twice or skipped one.
    engine.reset();
    VerifyReport report;
    REQUIRE(Engine::verify(dir, &report).is_ok());
    INFO((report.problems.empty() ? std::string() : report.problems.front()));
    REQUIRE(report.ok);
    REQUIRE(report.events > 0);
  }
  std::filesystem::remove_all(dir);
}

// The `pointex` command line, run as a separate process on a real data dir.

#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <pointex/engine.hpp>
#include <sstream>
#include <string>

#include "store/read_model.hpp"
#include "support.hpp"

using namespace pointex;
using pointex::test::open_engine;
using pointex::test::TempDir;

namespace {

struct Run {
  int status = -1;
  std::string out;
};

/// Runs `pointex ARGS` and returns its exit status and stdout (stderr discarded).
Run pointex_cli(const std::string& args) {
  Run r;
  const std::string command = std::string(POINTEX_CLI) + " " + args + " 2>/dev/null";
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  REQUIRE(WIFEXITED(status));
  r.status = WEXITSTATUS(status);
  return r;
}

void make_data_dir(const std::string& dir) {
  auto e = open_engine(dir);
  LedgerResult lr{};
  REQUIRE(e->create_ledger({1, "MALL", "Mall", 0, 0}, &lr).is_ok());
  std::vector<AccountResult> ar;
  REQUIRE(e->create_accounts({{10, 1, AccountKind::issuer, 0, 0, "issuer"},
                              {20, 1, AccountKind::member, 0, 0, "member"}},
                             &ar)
              .is_ok());
  std::vector<TransferOutcome> out;
  REQUIRE(e->submit_transfers({{1, 10, 20, 5, 1, 1, 0, 0, 0, 0}}, &out).is_ok());
  REQUIRE(out[0].result == TransferResult::ok);
}

}  // namespace

TEST_CASE("pointex verify, rebuild and events on a data dir", "[cli]") {
  TempDir dir;
  make_data_dir(dir.path());
  Run r = pointex_cli("verify --data-dir " + dir.path());
  CHECK(r.status == 0);
  CHECK(r.out.find("4 events, 1 ledgers, 2 accounts") != std::string::npos);
  CHECK(r.out.find("ok\n") != std::string::npos);

  r = pointex_cli("events --data-dir " + dir.path() + " --after 1 --limit 2");
  CHECK(r.status == 0);
  std::istringstream lines(r.out);
  std::string first;
  std::string second;
  std::string third;
  std::getline(lines, first);
  std::getline(lines, second);
  CHECK_FALSE(std::getline(lines, third));
  CHECK(first.find("\"position\":2") != std::string::npos);
  CHECK(first.find("\"type\":\"account_created\"") != std::string::npos);
  CHECK(second.find("\"owner\":\"member\"") != std::string::npos);

  {
    std::unique_ptr<store::ReadModel> rm;
    REQUIRE(store::ReadModel::open(dir.path(), &rm).is_ok());
    REQUIRE(rm->drop_all().is_ok());
  }
  r = pointex_cli("verify --data-dir " + dir.path());
  CHECK(r.status == 1);
  CHECK(r.out.find("problem: read models end at position 0") != std::string::npos);
  r = pointex_cli("rebuild --data-dir " + dir.path());
  CHECK(r.status == 0);
  r = pointex_cli("verify --data-dir " + dir.path());
  CHECK(r.status == 0);
}

TEST_CASE("pointex refuses bad arguments with exit status 2 and changes nothing", "[cli]") {
  TempDir dir;
  make_data_dir(dir.path());
  CHECK(pointex_cli("").status == 2);
  CHECK(pointex_cli("frobnicate").status == 2);
  CHECK(pointex_cli("verify").status == 2);
  CHECK(pointex_cli("verify --data-dir /nonexistent/pointex").status == 2);
  CHECK(pointex_cli("events --data-dir " + dir.path() + " --limit 0").status == 2);
  CHECK(pointex_cli("events --data-dir " + dir.path() + " --limit abc").status == 2);
  // A data dir an engine has open is refused (RocksDB's lock), not audited half-way.
  auto e = open_engine(dir.path());
  CHECK(pointex_cli("verify --data-dir " + dir.path()).status == 2);
  e.reset();
  CHECK(pointex_cli("verify --data-dir " + dir.path()).status == 0);
  CHECK(pointex_cli("--help").status == 0);
}

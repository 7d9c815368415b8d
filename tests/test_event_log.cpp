// The event log's storage: blocks of consecutive events (log format 2), scans from any
// position, the last position, corrupt blocks, and logs of format 1 (one event per key).

#include <rocksdb/db.h>

#include <catch2/catch.hpp>
#include <pointex/engine.hpp>
#include <string>
#include <vector>

#include "domain/codec.hpp"
#include "store/db.hpp"
#include "store/event_log.hpp"
#include "support.hpp"

using namespace pointex;
using pointex::test::TempDir;

namespace {

/// A distinct, decodable event for each position.
std::string event_at(std::uint64_t position) {
  std::string bytes;
  domain::encode_event(domain::AccountClosed{position, 1'000'000 + position}, bytes);
  return bytes;
}

/// Events first..first+n-1 back to back, and where each ends.
void events_from(std::uint64_t first, std::size_t n, std::string* bytes,
                 std::vector<std::uint32_t>* ends) {
  bytes->clear();
  ends->clear();
  for (std::size_t i = 0; i < n; ++i) {
    *bytes += event_at(first + i);
    ends->push_back(static_cast<std::uint32_t>(bytes->size()));
  }
}

/// Every (position, bytes) a scan from `from` yields.
std::vector<std::pair<std::uint64_t, std::string>> scanned(const store::EventLog& log,
                                                           std::uint64_t from) {
  std::vector<std::pair<std::uint64_t, std::string>> out;
  const Status s = log.scan(from, [&](std::uint64_t position, std::string_view bytes) {
    out.emplace_back(position, std::string(bytes));
    return true;
  });
  INFO(s.to_string());
  REQUIRE(s.is_ok());
  return out;
}

/// The log's RocksDB opened directly (the EventLog must be closed): `default` and `events`.
struct RawLog {
  RawLog(const std::string& dir, bool writable) {
    const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {"events", rocksdb::ColumnFamilyOptions()}};
    const rocksdb::Status s =
        writable ? rocksdb::DB::Open(rocksdb::DBOptions(), dir, families, &handles, &db)
                 : rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir, families, &handles, &db);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  ~RawLog() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  RawLog(const RawLog&) = delete;
  RawLog& operator=(const RawLog&) = delete;
  /// Writes and flushes: the log's next open replays nothing into a memtable it inserts into
  /// with a hint (a replayed range deletion there trips RocksDB 7.8's assertion; docs/
  /// performance.md, session 11).
  void write(rocksdb::WriteBatch& batch) {
    REQUIRE(db->Write(rocksdb::WriteOptions(), &batch).ok());
    REQUIRE(db->Flush(rocksdb::FlushOptions(), handles).ok());
  }
  rocksdb::ColumnFamilyHandle* meta() const { return handles[0]; }
  rocksdb::ColumnFamilyHandle* events() const { return handles[1]; }

  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
};

/// The raw keys and values of the `events` family.
std::vector<std::pair<std::string, std::string>> raw_events(const std::string& dir) {
  const RawLog raw(dir, /*writable=*/false);
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(raw.db->NewIterator(rocksdb::ReadOptions(), raw.events()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    out.emplace_back(it->key().ToString(), it->value().ToString());
  }
  REQUIRE(it->status().ok());
  return out;
}

std::string be64(std::uint64_t v) {
  std::string s;
  store::put_be64(s, v);
  return s;
}

/// Rewrites the log in `dir` as format 1 wrote it: one event per key, format "pointex-log-1".
void rewrite_as_format_1(const std::string& dir) {
  std::vector<std::pair<std::uint64_t, std::string>> events;
  {
    std::unique_ptr<store::EventLog> log;
    REQUIRE(store::EventLog::open(dir, &log).is_ok());
    events = scanned(*log, 1);
  }
  RawLog raw(dir, /*writable=*/true);
  rocksdb::WriteBatch batch;
  REQUIRE(batch.DeleteRange(raw.events(), be64(0), be64(~0ULL)).ok());
  for (const auto& [position, bytes] : events) {
    REQUIRE(batch.Put(raw.events(), be64(position), bytes).ok());
  }
  REQUIRE(batch.Put(raw.meta(), "format", std::string(store::log_format_v1)).ok());
  raw.write(batch);
}

std::string format_of(const std::string& dir) {
  const RawLog raw(dir, /*writable=*/false);
  std::string format;
  REQUIRE(raw.db->Get(rocksdb::ReadOptions(), raw.meta(), "format", &format).ok());
  return format;
}

}  // namespace

TEST_CASE("the event log keeps consecutive events in blocks and scans from any position", "[log]") {
  TempDir dir;
  std::string bytes;
  std::vector<std::uint32_t> ends;
  {
    std::unique_ptr<store::EventLog> log;
    REQUIRE(store::EventLog::open(dir.path(), &log).is_ok());
    std::uint64_t last = 99;
    REQUIRE(log->last_position(&last).is_ok());
    CHECK(last == 0);
    CHECK(scanned(*log, 1).empty());

    auto batch = log->new_batch();
    events_from(1, 600, &bytes, &ends);  // 256 + 256 + 88
    batch->put(1, bytes, ends);
    REQUIRE(log->write(*batch, true).is_ok());
    batch->clear();
    batch->put(601, event_at(601));  // one event
    REQUIRE(log->write(*batch, false).is_ok());
    batch->clear();
    events_from(602, 300, &bytes, &ends);  // 256 + 44
    batch->put(602, bytes, ends);
    REQUIRE(log->write(*batch, true).is_ok());

    REQUIRE(log->last_position(&last).is_ok());
    CHECK(last == 901);
    for (const std::uint64_t from : {0, 1, 2, 255, 256, 257, 258, 512, 513, 600, 601, 602, 603, 857,
                                     858, 900, 901, 902, 5000}) {
      INFO("from " << from);
      const auto got = scanned(*log, from);
      const std::uint64_t first = from == 0 ? 1 : from;
      REQUIRE(got.size() == (first > 901 ? 0 : 901 - first + 1));
      for (std::size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i].first == first + i);
        CHECK(got[i].second == event_at(first + i));
      }
    }
    // A scan stops where its callback says so.
    std::vector<std::uint64_t> seen;
    REQUIRE(log->scan(250,
                      [&](std::uint64_t p, std::string_view) {
                        seen.push_back(p);
                        return p < 260;
                      })
                .is_ok());
    CHECK(seen ==
          std::vector<std::uint64_t>{250, 251, 252, 253, 254, 255, 256, 257, 258, 259, 260});
  }
  // One key per block, never one per event.
  const auto raw = raw_events(dir.path());
  std::vector<std::string> keys;
  for (const auto& kv : raw) keys.push_back(kv.first);
  CHECK(keys ==
        std::vector<std::string>{be64(1), be64(257), be64(513), be64(601), be64(602), be64(858)});
  CHECK(format_of(dir.path()) == std::string(store::log_format));
}

TEST_CASE("a corrupt block is reported with its position, never skipped", "[log]") {
  TempDir dir;
  {
    std::unique_ptr<store::EventLog> log;
    REQUIRE(store::EventLog::open(dir.path(), &log).is_ok());
    auto batch = log->new_batch();
    std::string bytes;
    std::vector<std::uint32_t> ends;
    events_from(1, 10, &bytes, &ends);
    batch->put(1, bytes, ends);
    REQUIRE(log->write(*batch, true).is_ok());
  }
  const std::string good = raw_events(dir.path()).at(0).second;
  const auto damage = [&](const std::string& value) {
    RawLog raw(dir.path(), /*writable=*/true);
    rocksdb::WriteBatch batch;
    REQUIRE(batch.Put(raw.events(), be64(1), value).ok());
    raw.write(batch);
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a byte cut off the last event", good.substr(0, good.size() - 1)},
      {"a byte more than its lengths say", good + "x"},
      {"a count of zero", std::string(1, '\0') + std::string(1, '\0')},
      {"a count above the block limit", std::string(1, '\0') + "\x81\x04"},  // 513
      {"a truncated header", std::string(1, '\0') + "\x0a\x05"},
      {"an empty value", std::string()},
  };
  for (const auto& [what, value] : cases) {
    INFO(what);
    damage(value);
    std::unique_ptr<store::EventLog> log;
    REQUIRE(store::EventLog::open(dir.path(), &log).is_ok());
    std::size_t calls = 0;
    const Status s = log->scan(1, [&](std::uint64_t, std::string_view) {
      ++calls;
      return true;
    });
    CHECK(s.code() == Status::Code::corruption);
    CHECK(s.message().find("position 1") != std::string::npos);
    CHECK(calls == 0);  // nothing of a block is handed out before the whole block checks out
    std::uint64_t last = 0;
    CHECK(log->last_position(&last).code() == Status::Code::corruption);
  }
  // And the engine refuses to open over it rather than replay around it.
  std::unique_ptr<Engine> e;
  EngineOptions o;
  o.data_dir = dir.path();
  CHECK(Engine::open(o, &e).code() == Status::Code::corruption);
  CHECK(e == nullptr);
}

TEST_CASE("a log of format 1 (one event per key) opens, replays, and is marked format 2", "[log]") {
  TempDir dir;
  constexpr LedgerId mall = 1;
  constexpr AccountId issuer = 10;
  constexpr AccountId alice = 21;
  {
    auto e = test::open_engine(dir.path());
    LedgerResult lr{};
    REQUIRE(e->create_ledger({mall, "MALL", "Mall", 0, 0}, &lr).is_ok());
    std::vector<AccountResult> ar;
    REQUIRE(e->create_accounts({{issuer, mall, AccountKind::issuer, 0, 0, "issuer"},
                                {alice, mall, AccountKind::member, 0, 0, "alice"}},
                               &ar)
                .is_ok());
    std::vector<Transfer> transfers;
    for (TransferId id = 1; id <= 20; ++id) {
      const Transfer t = test::single_transfer(id, issuer, alice, id, mall);
      transfers.push_back(t);
    }
    std::vector<TransferOutcome> out;
    REQUIRE(e->submit_transfers(transfers, &out).is_ok());
    for (const auto& o : out) REQUIRE(o.result == TransferResult::ok);
  }
  rewrite_as_format_1(dir.path());
  std::filesystem::remove_all(dir.path() + "/read-models");  // rebuilt from the old log
  REQUIRE(raw_events(dir.path()).size() == 23);              // 1 ledger + 2 accounts + 20 transfers
  {
    // The values of format 1 read as events of their own; this writable open marks the log.
    std::unique_ptr<store::EventLog> log;
    REQUIRE(store::EventLog::open(dir.path(), &log).is_ok());
    std::uint64_t last = 0;
    REQUIRE(log->last_position(&last).is_ok());
    CHECK(last == 23);
    const auto got = scanned(*log, 10);
    REQUIRE(got.size() == 14);
    CHECK(got.front().first == 10);
  }
  CHECK(format_of(dir.path()) == std::string(store::log_format));
  {
    auto e = test::open_engine(dir.path());
    std::vector<std::optional<Account>> accounts;
    REQUIRE(e->lookup_accounts({alice}, &accounts).is_ok());
    REQUIRE(accounts[0].has_value());
    CHECK(accounts[0]->credits_posted == 210);
    const Transfer t = test::single_transfer(21, alice, issuer, 10, mall, 2);
    std::vector<TransferOutcome> out;
    REQUIRE(e->submit_transfers({t}, &out).is_ok());
    CHECK(out[0].result == TransferResult::ok);
    CHECK(out[0].position == 24);
  }
  // The log now mixes single-event values and a block; both replay.
  CHECK(raw_events(dir.path()).size() == 24);
  const VerifyReport report = test::verified(dir.path());
  CHECK(report.events == 24);
  auto e = test::open_engine(dir.path());
  std::vector<std::optional<Account>> accounts;
  REQUIRE(e->lookup_accounts({alice}, &accounts).is_ok());
  CHECK(accounts[0]->debits_posted == 10);
}

#include "store/event_log.hpp"

#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <vector>

#include "domain/assert.hpp"
#include "domain/codec.hpp"
#include "domain/varint.hpp"
#include "store/db.hpp"

namespace pointex::store {
namespace {

constexpr const char* format_key = "format";
constexpr const char* event_schema_key = "event_schema";

/// The first byte of a block (format 2); a format-1 value is one event, whose first byte is
/// its type (never 0).
constexpr char block_marker = 0;

/// One value of the `events` family, taken apart: `ends.size()` events, event i at
/// `body[ends[i-1], ends[i])`.
struct Block {
  std::string_view body;
  std::vector<std::uint32_t> ends;
};

/// Splits a value (a block, or a format-1 single event); corruption names the position.
Status parse_block(std::uint64_t key, std::string_view value, Block* out) {
  out->ends.clear();
  if (value.empty()) {
    return Status::corruption("event log: empty value at position " + std::to_string(key));
  }
  if (value[0] != block_marker) {  // format 1: one event
    out->body = value;
    out->ends.push_back(static_cast<std::uint32_t>(value.size()));
    return Status::ok();
  }
  domain::Reader r(value.substr(1));
  const std::uint64_t count = r.varint();
  if (r.error() != domain::DecodeError::none || count == 0 || count > block_events_max) {
    return Status::corruption("event log: bad block header at position " + std::to_string(key));
  }
  std::uint64_t end = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t length = r.varint();
    if (r.error() != domain::DecodeError::none || length == 0 || length > value.size()) {
      return Status::corruption("event log: bad event length in the block at position " +
                                std::to_string(key));
    }
    end += length;
    out->ends.push_back(static_cast<std::uint32_t>(end));
  }
  out->body = r.rest();
  if (out->body.size() != end) {
    return Status::corruption("event log: the block at position " + std::to_string(key) +
                              " holds " + std::to_string(out->body.size()) +
                              " bytes of events, its lengths say " + std::to_string(end));
  }
  return Status::ok();
}

/// The block under `it` (valid): its first position and its events.
Status block_at(const rocksdb::Iterator& it, std::uint64_t* first, Block* block) {
  if (it.key().size() != 8) return Status::corruption("event log key of wrong size");
  *first = get_be64(it.key().data());
  const rocksdb::Slice v = it.value();
  return parse_block(*first, std::string_view(v.data(), v.size()), block);
}

/// Read models are keyed by an 8-byte prefix (account id, or transfer id) and read within it:
/// point lookups and per-account scans. The projector writes each family's updates in key
/// order, and each insert starts from where the previous one ended (a memtable insert hint, one
/// per family). Without the hint RocksDB keeps that position too, but drops it and searches from
/// the top whenever the next key is not right after the previous one. That is almost every key
/// of rm_accounts and rm_history, whose memtables hold earlier writes of the same accounts
/// between any two keys of this one: under uniform load an insert cost 1.4-1.6 us against
/// 0.8-0.9 us with the hint (docs/performance.md, session 12). A hash of skiplists by prefix
/// made inserts cheaper but re-sorted every memtable at flush: a third of all CPU.
/// A hinted family must never take a range deletion into a memtable that also takes hinted
/// inserts: RocksDB 7.8 keeps one hint map for a memtable's point entries and its range
/// deletions alike (ReadModel::drop_all flushes around its range deletions).
/// Bloom filters keep Gets for absent keys cheap. In the tables every family filters prefixes;
/// `lookups` (rm_transfers, where the account actors look up ids they no longer hold, most of
/// them absent) filters whole keys too, and only it has a memtable filter: adding a key to a
/// memtable filter is a random write into a megabytes-long array (a cache miss per insert,
/// 80% of MemTable::Add), and rm_accounts' and rm_history's memtables are read by queries and
/// account loads, far rarer than their inserts. rm_transfers' memtable filter holds prefixes
/// only: a prefix is a transfer id, which already tells the keys apart.
rocksdb::ColumnFamilyOptions read_model_options(bool lookups) {
  rocksdb::ColumnFamilyOptions o;
  o.write_buffer_size = 64ULL << 20;
  o.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(8));
  o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(0));
  o.memtable_prefix_bloom_size_ratio = lookups ? 0.05 : 0;
  o.memtable_whole_key_filtering = false;
  // The young levels are rewritten soonest: compressing them costs CPU the writes need.
  o.compression_per_level = {rocksdb::kNoCompression, rocksdb::kNoCompression,
                             rocksdb::kSnappyCompression};
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = lookups;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // History keys spread over every account, so each L0 -> L1 compaction rewrites all of L1:
  // merging 8 flushes at a time instead of 4 halves how often (a 30 s uniform run: compaction
  // CPU 12.8 -> 9.2 s; Gets check at most 8 more L0 files, behind their bloom filters).
  o.level0_file_num_compaction_trigger = 8;
  return o;
}

/// The read-model families after `default`, in the order of Db's handles.
const std::vector<std::string>& read_model_families() {
  static const std::vector<std::string> names = {"rm_accounts", "rm_transfers", "rm_history",
                                                 "rm_stats",    "rm_ledgers",   "rm_expiries",
                                                 "rm_rates",    "rm_processes", "rm_open_processes",
                                                 "rm_counters", "rm_webhooks",  "rm_rules"};
  return names;
}

/// True when `dir` holds a database whose families are not `default` + `expected` (read
/// models of another format: they are dropped before the open that would refuse them).
bool other_families(const std::string& dir, const std::vector<std::string>& expected) {
  std::vector<std::string> existing;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &existing).ok()) {
    return false;  // no database yet (or unreadable: the open says why)
  }
  std::vector<std::string> want = expected;
  want.push_back(rocksdb::kDefaultColumnFamilyName);
  std::sort(existing.begin(), existing.end());
  std::sort(want.begin(), want.end());
  return existing != want;
}

}  // namespace

Status from_rocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::ok();
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::corruption(message);
  if (s.IsInvalidArgument()) return Status::invalid_argument(message);
  return Status::io_error(message);
}

Db::~Db() {
  // A clean close leaves nothing in the write-ahead logs, so the next open need not replay
  // them (with 64 MiB memtables that replay took seconds). A failure here only costs that.
  if (db && !read_only) (void)flush("closing");
  for (auto* h : handles) {
    if (db) db->DestroyColumnFamilyHandle(h);
  }
}

Status Db::flush(std::string_view what) const {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return from_rocks(db->Flush(fo, handles), what);
}

Status Db::open(const std::string& dir, Kind kind, std::shared_ptr<Db>* out) {
  bool reset = false;
  Status s = open_once(dir, kind, /*read_only=*/false, out, &reset);
  if (!reset) return s;
  // Read models are derived from the log: in another format they are dropped and rebuilt.
  s = from_rocks(rocksdb::DestroyDB(dir, rocksdb::Options()), "dropping " + dir);
  if (!s.is_ok()) return s;
  s = open_once(dir, kind, /*read_only=*/false, out, &reset);
  if (s.is_ok()) (*out)->format_reset = true;
  return s;
}

Status Db::open_read_only(const std::string& dir, Kind kind, std::shared_ptr<Db>* out) {
  bool reset = false;
  return open_once(dir, kind, /*read_only=*/true, out, &reset);
}

Status Db::open_once(const std::string& dir, Kind kind, bool read_only, std::shared_ptr<Db>* out,
                     bool* reset) {
  *reset = false;
  Status s;
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = !read_only;
  db_options.create_missing_column_families = !read_only;
  db_options.max_background_jobs = 2;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()}};
  std::string expected_format;
  if (kind == Kind::event_log) {
    // Memtable insert hints are used only by non-concurrent inserts (one journal thread writes).
    db_options.allow_concurrent_memtable_write = false;
    // Bounds the write-ahead log replayed after a crash (the default family holds only the
    // format key and would otherwise keep old logs alive).
    db_options.max_total_wal_size = 128ULL << 20;
    rocksdb::ColumnFamilyOptions events_options;
    // Keys are positions, appended in order: one hint for all (every key's prefix is empty).
    // Never DeleteRange this family: RocksDB 7.8 keeps one hint per prefix for a memtable's
    // point entries and its range deletions alike, so a range deletion in the same memtable
    // leaves the hint pointing into the other skiplist (its debug build asserts; session 11).
    events_options.memtable_insert_with_hint_prefix_extractor.reset(
        rocksdb::NewFixedPrefixTransform(0));
    events_options.write_buffer_size = 64ULL << 20;
    events_options.compression = rocksdb::kNoCompression;
    families.emplace_back("events", events_options);
    expected_format = std::string(log_format);
  } else {
    // Writes come from the projector's one thread.
    db_options.allow_concurrent_memtable_write = false;
    // No write-ahead log (the projector writes with disableWAL): the read models are derived
    // from the log, and a crash loses only what no flush had written yet, which recovery
    // replays from the log. Atomic flushes keep every family at the same checkpoint.
    db_options.atomic_flush = true;
    // At most this much memtable across the read-model families (then all are flushed), so
    // memory stays bounded, and so does the log tail a crash leaves to replay.
    db_options.db_write_buffer_size = 64ULL << 20;
    for (std::size_t i = 0; i < read_model_families().size(); ++i) {
      // The first three hold one or more keys per event; the rest are small.
      families.emplace_back(read_model_families()[i], i < 3 ? read_model_options(/*lookups=*/i == 1)
                                                            : rocksdb::ColumnFamilyOptions());
    }
    expected_format = std::string(read_models_format);
    if (other_families(dir, read_model_families())) {
      *reset = !read_only;
      return Status::corruption(dir + " holds other column families than format '" +
                                expected_format + "'");
    }
  }
  auto db = std::make_shared<Db>();
  rocksdb::DB* raw = nullptr;
  s = from_rocks(read_only
                     ? rocksdb::DB::OpenForReadOnly(db_options, dir, families, &db->handles, &raw)
                     : rocksdb::DB::Open(db_options, dir, families, &db->handles, &raw),
                 "opening " + dir);
  if (!s.is_ok()) return s;
  db->db.reset(raw);
  db->read_only = read_only;
  db->meta = db->handles[0];
  if (kind == Kind::event_log) {
    db->events = db->handles[1];
  } else {
    db->accounts = db->handles[1];
    db->transfers = db->handles[2];
    db->history = db->handles[3];
    db->stats = db->handles[4];
    db->ledgers = db->handles[5];
    db->expiries = db->handles[6];
    db->rates = db->handles[7];
    db->processes = db->handles[8];
    db->open_processes = db->handles[9];
    db->counters = db->handles[10];
    db->webhooks = db->handles[11];
    db->rules = db->handles[12];
  }

  std::string format;
  const rocksdb::Status got = db->db->Get(rocksdb::ReadOptions(), format_key, &format);
  if (got.IsNotFound() && read_only) {
    return Status::corruption(dir + " holds no format key");
  }
  if (got.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = from_rocks(db->db->Put(wo, format_key, expected_format), "writing format");
    if (!s.is_ok()) return s;
  } else if (!got.ok()) {
    return from_rocks(got, "reading format");
  } else if (kind == Kind::event_log && format == log_format_v1) {
    // Format 1 (one event per key) reads as blocks of one. A writable open marks the log
    // format 2 at once, so that an older build refuses it rather than misread later blocks.
    if (!read_only) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      s = from_rocks(db->db->Put(wo, format_key, expected_format), "upgrading the log format");
      if (!s.is_ok()) return s;
    }
  } else if (format != expected_format) {
    if (kind == Kind::read_models) {
      *reset = !read_only;
      return Status::corruption(dir + " holds format '" + format + "', expected '" +
                                expected_format + "'");
    }
    return Status::corruption(dir + " holds format '" + format + "', expected '" + expected_format +
                              "'");
  }
  if (kind == Kind::read_models && !read_only) {
    // Whatever the write-ahead log replayed (only ReadModel::drop_all's range deletions are
    // logged) goes to a table now, so that hinted inserts start in a memtable of their own
    // (see read_model_options).
    s = db->flush("flushing recovered read models");
    if (!s.is_ok()) return s;
  }
  *out = std::move(db);
  return Status::ok();
}

struct EventLog::Batch::Impl {
  rocksdb::WriteBatch batch;
  rocksdb::ColumnFamilyHandle* family = nullptr;
  /// A block's header (reused).
  std::string header;
};

struct EventLog::Impl {
  std::shared_ptr<Db> db;
};

EventLog::Batch::Batch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventLog::Batch::~Batch() = default;
void EventLog::Batch::clear() {
  impl_->batch.Clear();
}

EventLog::EventLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventLog::~EventLog() = default;

Status EventLog::open(const std::string& dir, std::unique_ptr<EventLog>* log) {
  auto impl = std::make_unique<Impl>();
  Status s = Db::open(dir, Db::Kind::event_log, &impl->db);
  if (!s.is_ok()) return s;
  auto opened = std::unique_ptr<EventLog>(new EventLog(std::move(impl)));
  std::uint32_t generation = 0;
  s = opened->event_schema(&generation);
  if (!s.is_ok()) return s;
  if (generation > domain::event_schema) {
    return Status::corruption(dir + " was written by a newer PointEx (event schema " +
                              std::to_string(generation) + "; this build reads up to " +
                              std::to_string(domain::event_schema) + ")");
  }
  if (generation < domain::event_schema) {
    s = opened->record_event_schema(domain::event_schema);
    if (!s.is_ok()) return s;
  }
  *log = std::move(opened);
  return Status::ok();
}

Status EventLog::event_schema(std::uint32_t* generation) const {
  std::string v;
  const rocksdb::Status s =
      impl_->db->db->Get(rocksdb::ReadOptions(), impl_->db->meta, event_schema_key, &v);
  *generation = 0;
  if (s.IsNotFound()) return Status::ok();
  if (!s.ok()) return from_rocks(s, "reading the event schema");
  if (v.size() != 8) return Status::corruption("bad event schema record");
  *generation = static_cast<std::uint32_t>(get_be64(v.data()));
  return Status::ok();
}

Status EventLog::record_event_schema(std::uint32_t generation) {
  std::string v;
  put_be64(v, generation);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return from_rocks(impl_->db->db->Put(wo, impl_->db->meta, event_schema_key, v),
                    "writing the event schema");
}

void EventLog::Batch::put(std::uint64_t position, std::string_view event_bytes) {
  put(position, event_bytes, {static_cast<std::uint32_t>(event_bytes.size())});
}

void EventLog::Batch::put(std::uint64_t first_position, std::string_view bytes,
                          const std::vector<std::uint32_t>& ends) {
  std::string& header = impl_->header;
  std::uint32_t begin = 0;
  for (std::size_t first = 0; first < ends.size(); first += block_events_max) {
    const std::size_t last = std::min(ends.size(), first + block_events_max);
    header.clear();
    header.push_back(block_marker);
    domain::put_varint(header, last - first);
    std::uint32_t at = begin;
    for (std::size_t i = first; i < last; ++i) {
      POINTEX_ASSERT(ends[i] > at && ends[i] <= bytes.size());  // events are never empty
      domain::put_varint(header, ends[i] - at);
      at = ends[i];
    }
    char key[8];
    write_be64(key, first_position + first);
    const rocksdb::Slice key_slice(key, 8);
    const rocksdb::Slice value[2] = {rocksdb::Slice(header),
                                     rocksdb::Slice(bytes.data() + begin, at - begin)};
    const rocksdb::Status s = impl_->batch.Put(impl_->family, rocksdb::SliceParts(&key_slice, 1),
                                               rocksdb::SliceParts(value, 2));
    (void)s;  // WriteBatch::Put fails only past its 4 GiB size limit; groups are far smaller.
    begin = at;
  }
}

std::unique_ptr<EventLog::Batch> EventLog::new_batch() const {
  auto impl = std::make_unique<Batch::Impl>();
  impl->family = impl_->db->events;
  return std::unique_ptr<Batch>(new Batch(std::move(impl)));
}

Status EventLog::write(Batch& batch, bool sync) {
  for (std::int64_t left = fail_after_.load(); left >= 0;) {
    if (left == 0) return Status::io_error("writing event log: injected failure");
    if (fail_after_.compare_exchange_weak(left, left - 1)) break;
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return from_rocks(impl_->db->db->Write(wo, &batch.impl_->batch), "writing event log");
}

Status EventLog::scan(std::uint64_t from,
                      const std::function<bool(std::uint64_t, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.total_order_seek = true;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->db->NewIterator(ro, impl_->db->events));
  char key[8];
  write_be64(key, from);
  // `from` may lie inside a block: start at the block at or before it.
  it->SeekForPrev(rocksdb::Slice(key, 8));
  if (!it->Valid()) {
    if (!it->status().ok()) return from_rocks(it->status(), "scanning event log");
    it->Seek(rocksdb::Slice(key, 8));
  }
  Block block;
  std::uint64_t next = 0;  // the lowest position the next block may start at
  for (; it->Valid(); it->Next()) {
    std::uint64_t first = 0;
    const Status s = block_at(*it, &first, &block);
    if (!s.is_ok()) return s;
    if (first < next) {
      return Status::corruption("event log: the block at position " + std::to_string(first) +
                                " overlaps the one before it");
    }
    std::uint32_t begin = 0;
    for (std::size_t i = 0; i < block.ends.size(); ++i) {
      const std::uint32_t end = block.ends[i];
      if (first + i >= from &&
          !fn(first + i, std::string_view(block.body.data() + begin, end - begin))) {
        return Status::ok();
      }
      begin = end;
    }
    next = first + block.ends.size();
  }
  return from_rocks(it->status(), "scanning event log");
}

Status EventLog::last_position(std::uint64_t* position) const {
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->db->NewIterator(rocksdb::ReadOptions(), impl_->db->events));
  it->SeekToLast();
  *position = 0;
  if (!it->Valid()) return from_rocks(it->status(), "reading last position");
  std::uint64_t first = 0;
  Block block;
  const Status s = block_at(*it, &first, &block);
  if (!s.is_ok()) return s;
  *position = first + block.ends.size() - 1;
  return Status::ok();
}

}  // namespace pointex::store

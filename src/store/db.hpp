#pragma once
/// The RocksDB database of a data dir and its column families. Internal to src/store: only
/// src/store/*.cpp include this (it pulls in RocksDB headers).

#include <rocksdb/db.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pointex/status.hpp"

namespace pointex::store {

/// Two databases per data dir: the event log (`<data_dir>`) and the read models
/// (`<data_dir>/read-models`), so that projecting never sits in the commit path's write queue.
struct Db {
  enum class Kind { event_log, read_models };

  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* meta = nullptr;  // the default family of either database
  // The event log database:
  rocksdb::ColumnFamilyHandle* events = nullptr;
  // The read-model database:
  rocksdb::ColumnFamilyHandle* accounts = nullptr;
  rocksdb::ColumnFamilyHandle* transfers = nullptr;
  rocksdb::ColumnFamilyHandle* history = nullptr;
  rocksdb::ColumnFamilyHandle* stats = nullptr;
  rocksdb::ColumnFamilyHandle* ledgers = nullptr;
  rocksdb::ColumnFamilyHandle* expiries = nullptr;
  rocksdb::ColumnFamilyHandle* rates = nullptr;
  rocksdb::ColumnFamilyHandle* processes = nullptr;
  rocksdb::ColumnFamilyHandle* open_processes = nullptr;
  rocksdb::ColumnFamilyHandle* counters = nullptr;
  rocksdb::ColumnFamilyHandle* webhooks = nullptr;
  rocksdb::ColumnFamilyHandle* rules = nullptr;
  /// Read models only: they were in another format and were dropped at open (to be rebuilt).
  bool format_reset = false;
  /// Opened with open_read_only (nothing is written, not even at close).
  bool read_only = false;

  /// The read-model families, in the order rebuild drops them.
  std::vector<rocksdb::ColumnFamilyHandle*> read_models() const {
    return {accounts, transfers, history,        stats,    ledgers,  expiries,
            rates,    processes, open_processes, counters, webhooks, rules};
  }

  /// Writes every family's memtable to a table and waits for it (`what` names the step in
  /// an error).
  Status flush(std::string_view what) const;

  static Status open(const std::string& dir, Kind kind, std::shared_ptr<Db>* out);
  /// Opens an existing database without writing to it (for audits): another format or
  /// family set is `corruption`, never dropped.
  static Status open_read_only(const std::string& dir, Kind kind, std::shared_ptr<Db>* out);
  /// One attempt; `*reset` when read models are in another format (the caller drops them).
  static Status open_once(const std::string& dir, Kind kind, bool read_only,
                          std::shared_ptr<Db>* out, bool* reset);
  ~Db();
};

Status from_rocks(const rocksdb::Status& s, std::string_view what);

inline void write_be64(char* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * (7 - i))) & 0xFF);
}
inline void put_be64(std::string& out, std::uint64_t v) {
  char bytes[8];
  write_be64(bytes, v);
  out.append(bytes, sizeof bytes);
}
inline std::uint64_t get_be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace pointex::store

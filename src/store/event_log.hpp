#pragma once
/// The RocksDB event log. Private to the library: no RocksDB type leaves src/store.
///
/// Key layout (docs/storage.md):
///   column family `events`: key = the position of a block's first event, 8 bytes big-endian;
///     value = a block of consecutive events (domain/codec.hpp encodings, at most
///     `block_events_max`): [u8 0][varint count][count x varint length][the events back to
///     back]. Positions start at 1, are unique and increase in commit order; a crash may leave
///     a gap after the last durable position, never inside it. A block never spans a gap or a
///     write. One key per block instead of per event: the memtable insert and its comparisons
///     were ~6% of all CPU under uniform load (docs/performance.md, session 11).
///     Log format 1 stored one event per key (its first byte is the event's type, never 0):
///     such values are still read, and a writable open marks the log format 2 (an older build
///     then refuses it instead of misreading blocks).
///     It is written in key order: its memtable inserts with a hint (each insert starts at the
///     previous one), so nothing has to sort it at flush.
///   column family `default`: metadata; key "format" = "pointex-log-2".
/// The read models live in a database of their own, `<dir>/read-models` (read_model.hpp).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pointex/status.hpp"

namespace pointex::store {

struct Db;

inline constexpr std::string_view log_format = "pointex-log-2";
/// The format before blocks (one event per key): read, and upgraded by a writable open.
inline constexpr std::string_view log_format_v1 = "pointex-log-1";
/// Events per block at most (a scan from a position inside one skips at most this many).
inline constexpr std::size_t block_events_max = 256;
inline constexpr std::string_view read_models_format = "pointex-read-models-8";

class EventLog {
 public:
  /// A batch of events written atomically; made by new_batch().
  class Batch {
   public:
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    /// One event at `position`.
    void put(std::uint64_t position, std::string_view event_bytes);
    /// `ends.size()` events at consecutive positions from `first_position`: event i is
    /// `bytes[ends[i-1], ends[i])` (event 0 starts at 0); copied into the batch once, in
    /// blocks.
    void put(std::uint64_t first_position, std::string_view bytes,
             const std::vector<std::uint32_t>& ends);
    void clear();

   private:
    friend class EventLog;
    struct Impl;
    explicit Batch(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };

  /// Opens or creates the log in `dir`. Fails with corruption on a foreign format.
  [[nodiscard]] static Status open(const std::string& dir, std::unique_ptr<EventLog>* log);
  ~EventLog();

  std::unique_ptr<Batch> new_batch() const;

  /// Writes `batch` atomically; with `sync`, fsyncs the write-ahead log before returning.
  [[nodiscard]] Status write(Batch& batch, bool sync);

  /// Calls `fn(position, bytes)` for every event with position >= `from`, in order. Stops early
  /// when `fn` returns false. The bytes are valid only during the call.
  [[nodiscard]] Status scan(std::uint64_t from,
                            const std::function<bool(std::uint64_t, std::string_view)>& fn) const;

  /// Fault injection for tests: after `writes` more successful writes, every write fails with
  /// io_error (as a full or failing disk would). Negative: never (the default).
  void fail_writes_after(std::int64_t writes) { fail_after_.store(writes); }

  /// Highest stored position (0 when the log is empty).
  [[nodiscard]] Status last_position(std::uint64_t* position) const;
  /// The newest event schema generation that wrote to this log (see domain::event_schema).
  [[nodiscard]] Status event_schema(std::uint32_t* generation) const;
  /// Records that `generation` writes to this log (open does it for this build's).
  [[nodiscard]] Status record_event_schema(std::uint32_t generation);

 private:
  struct Impl;
  explicit EventLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<std::int64_t> fail_after_{-1};
};

}  // namespace pointex::store

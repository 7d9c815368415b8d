#pragma once
/// The RocksDB event log. Private to the library: no RocksDB type leaves src/store.
///
/// Key layout (docs/storage.md):
///   column family `events`: key = position as 8 bytes big-endian, value = one encoded event
///     (domain/codec.hpp). Positions start at 1, are unique and increase in commit order; a
///     crash may leave a gap after the last durable position, never inside it.
///     It is written in key order: its memtable inserts with a hint (each insert starts at the
///     previous one), so nothing has to sort it at flush.
///   column family `default`: metadata; key "format" = "pointex-log-1".
/// The read models live in a database of their own, `<dir>/read-models` (read_model.hpp).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "pointex/status.hpp"

namespace pointex::store {

struct Db;

inline constexpr std::string_view log_format = "pointex-log-1";
inline constexpr std::string_view read_models_format = "pointex-read-models-8";

class EventLog {
 public:
  /// A batch of events written atomically; made by new_batch().
  class Batch {
   public:
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    void put(std::uint64_t position, std::string_view event_bytes);
    void clear();
    std::size_t size() const;

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

#pragma once
/// Binary encoding of events: [u8 type][u8 schema version][fields as LEB128 varints / length-
/// prefixed bytes]. The layout of every version ever written is kept readable: a new shape gets
/// a new version and an upcaster in decode_event, and tests/fixtures holds golden encodings.
/// docs/storage.md describes the bytes.

#include <cstdint>
#include <string>
#include <string_view>

#include "domain/events.hpp"

namespace pointex::domain {

enum class EventType : std::uint8_t {
  ledger_created = 1,
  account_created = 2,
  account_closed = 3,
  transfer = 4,
  rate_set = 5,
  process_stepped = 6,
  webhook_created = 7,
  webhook_deleted = 8,
  webhook_progressed = 9,
  rules_set = 10,
};

/// The event schema generation of this build: raised whenever any type gets a new version.
/// The event log records the newest generation that wrote to it, and a build older than that
/// refuses to open it, also when recovery would not decode the newer events themselves (they
/// may lie before the read models' checkpoint).
/// 2: rate_set and process_stepped (new types; older builds would not decode them).
/// 3: webhook_created, webhook_deleted and webhook_progressed (new types).
/// 4: rules_set (a new type), and process_stepped of kind 4 (rebates).
inline constexpr std::uint32_t event_schema = 4;

/// The newest schema version of each type: what encode_event writes.
inline constexpr std::uint8_t ledger_created_version = 1;
inline constexpr std::uint8_t account_created_version = 1;
inline constexpr std::uint8_t account_closed_version = 1;
inline constexpr std::uint8_t transfer_version = 1;
inline constexpr std::uint8_t rate_set_version = 1;
inline constexpr std::uint8_t process_stepped_version = 1;
inline constexpr std::uint8_t webhook_created_version = 1;
inline constexpr std::uint8_t webhook_deleted_version = 1;
inline constexpr std::uint8_t webhook_progressed_version = 1;
inline constexpr std::uint8_t rules_set_version = 1;

/// Longest `data` of a process step.
inline constexpr std::size_t process_data_bytes_max = 4096;

/// Appends the encoding of `event` to `out`.
void encode_event(const Event& event, std::string& out);

enum class DecodeError : std::uint8_t {
  none = 0,
  truncated,
  trailing_bytes,
  unknown_type,
  /// A version newer than this build knows: written by a newer PointEx.
  unknown_version,
  invalid_field,
};
std::string_view to_string(DecodeError error);

/// Decodes one event; on error `*event` is unspecified. Never skips anything silently.
[[nodiscard]] DecodeError decode_event(std::string_view bytes, Event* event);

}  // namespace pointex::domain

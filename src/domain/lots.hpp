#pragma once
/// Points lots of a ledger with an expiry policy (issue 6, docs/expiry.md): pure functions, no
/// I/O, no clock reads.
///
/// A member account on a ledger with `expiry_days > 0` holds its posted points as lots, oldest
/// first. A posted credit at time `t` adds a lot expiring at the start of the UTC day after the
/// day of `t + expiry_days` (never earlier than `t + expiry_days`): all credits of one UTC day
/// share one expiry instant, so they merge into one lot and an account holds at most one lot per
/// day. A posted debit consumes the oldest lots first; what the lots do not cover (an account
/// without the debit limit going negative) consumes nothing more.

#include <cstdint>
#include <vector>

#include "pointex/types.hpp"

namespace pointex::domain {

inline constexpr std::uint64_t lot_day_ns = 86'400ULL * 1'000'000'000ULL;
/// Lots expire at most this many days after earning (t + days must stay far below 2^64 ns); a
/// ledger's larger expiry_days counts as this many.
inline constexpr std::uint32_t lot_expiry_days_max = 36'500;

/// A stored account with more lots than this is corrupt (one lot per day: 2^20 days is far
/// more than lot_expiry_days_max, even with lots never swept).
inline constexpr std::uint64_t lots_decoded_max = 1ULL << 20;

/// A lot: `amount` still held, due to expire at `at` (Unix ns, a UTC day boundary).
using Lot = ExpiringLot;

/// Oldest first; `at` strictly increasing; every amount > 0.
using Lots = std::vector<Lot>;

/// The expiry duration in ns of a ledger's `expiry_days` (0: never, no lots), at most
/// lot_expiry_days_max days.
std::uint64_t lot_expiry_ns(std::uint32_t expiry_days);

/// When a lot of a credit at `timestamp_ns` expires, for an expiry duration `expiry_ns` > 0.
std::uint64_t lot_expires_at(std::uint64_t timestamp_ns, std::uint64_t expiry_ns);

/// Adds a posted credit of `amount` at `timestamp_ns` (merged into the newest lot when it
/// expires at the same instant). REQUIRES: expiry_ns > 0, and timestamps increasing per account
/// (a lot never expires before the newest one).
void add_lot(Lots& lots, std::uint64_t amount, std::uint64_t timestamp_ns, std::uint64_t expiry_ns);

/// Consumes a posted debit of `amount`, oldest lots first; returns what the lots covered.
std::uint64_t consume_lots(Lots& lots, std::uint64_t amount);

/// The sum of the remaining of the lots due at `now_ns` (expires_at <= now_ns).
std::uint64_t lots_due(const Lots& lots, std::uint64_t now_ns);

/// Whether `lots` keep their invariants (oldest first, `at` strictly increasing, no amount 0).
bool lots_valid(const Lots& lots);

}  // namespace pointex::domain

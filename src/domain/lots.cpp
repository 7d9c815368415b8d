#include "domain/lots.hpp"

#include <algorithm>
#include <cstddef>

#include "domain/assert.hpp"

namespace pointex::domain {

std::uint64_t lot_expiry_ns(std::uint32_t expiry_days) {
  return static_cast<std::uint64_t>(std::min(expiry_days, lot_expiry_days_max)) * lot_day_ns;
}

std::uint64_t lot_expires_at(std::uint64_t timestamp_ns, std::uint64_t expiry_ns) {
  POINTEX_ASSERT(expiry_ns > 0);
  const std::uint64_t day_start = timestamp_ns / lot_day_ns * lot_day_ns;
  // The start of the day after the day of timestamp + expiry (expiry_ns is whole days).
  return day_start + expiry_ns + lot_day_ns;
}

void add_lot(Lots& lots, std::uint64_t amount, std::uint64_t timestamp_ns,
             std::uint64_t expiry_ns) {
  if (amount == 0) return;
  const std::uint64_t at = lot_expires_at(timestamp_ns, expiry_ns);
  if (!lots.empty() && lots.back().at == at) {
    POINTEX_ASSERT(lots.back().amount <= UINT64_MAX - amount);
    lots.back().amount += amount;
    return;
  }
  POINTEX_ASSERT(lots.empty() || lots.back().at < at);
  lots.push_back({amount, at});
}

std::uint64_t consume_lots(Lots& lots, std::uint64_t amount) {
  std::uint64_t covered = 0;
  std::size_t spent = 0;  // lots emptied, from the front
  while (spent < lots.size() && covered < amount) {
    Lot& lot = lots[spent];
    const std::uint64_t take = std::min(lot.amount, amount - covered);
    lot.amount -= take;
    covered += take;
    if (lot.amount == 0) ++spent;
  }
  lots.erase(lots.begin(), lots.begin() + static_cast<std::ptrdiff_t>(spent));
  return covered;
}

std::uint64_t lots_due(const Lots& lots, std::uint64_t now_ns) {
  std::uint64_t due = 0;
  for (const Lot& lot : lots) {
    if (lot.at > now_ns) break;
    due += lot.amount;
  }
  return due;
}

bool lots_valid(const Lots& lots) {
  for (std::size_t i = 0; i < lots.size(); ++i) {
    if (lots[i].amount == 0) return false;
    if (i > 0 && lots[i - 1].at >= lots[i].at) return false;
  }
  return true;
}

}  // namespace pointex::domain

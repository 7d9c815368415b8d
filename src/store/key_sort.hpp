#pragma once
/// Sorting the read-model writer's updates by key: a stable LSD radix sort over (hi, lo).
///
/// A write of the read models collects a few hundred thousand updates (two u64s of key each)
/// and writes them in key order. std::sort spent ~17 compares per update with a branch it could
/// not predict (keys spread over every account): 12% of the projector's time under uniform
/// load. The keys of one write differ in a few bytes only (account ids, transfer ids and
/// positions from one range), so a radix sort over the bytes that differ does 4-6 passes that
/// read and write each update once.

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace pointex::store {

/// Sorts `items` by (hi, lo) ascending, keeping the order they had among equal keys (so the
/// last update of a key stays last). T has members `std::uint64_t hi, lo`. `scratch` is working
/// space, kept by the caller to reuse its memory.
template <typename T>
void sort_by_key(std::vector<T>& items, std::vector<T>& scratch) {
  const std::size_t n = items.size();
  if (n < 2) return;
  constexpr int digits = 16;  // the bytes of lo (least significant first), then of hi
  // 16 KiB of counters: they stay in the first-level cache.
  std::array<std::array<std::uint32_t, 256>, digits> counts{};
  for (const T& item : items) {
    for (int b = 0; b < 8; ++b) {
      ++counts[b][(item.lo >> (8 * b)) & 0xFF];
      ++counts[8 + b][(item.hi >> (8 * b)) & 0xFF];
    }
  }
  scratch.resize(n);
  std::vector<T>* from = &items;
  std::vector<T>* to = &scratch;
  for (int d = 0; d < digits; ++d) {
    std::array<std::uint32_t, 256>& count = counts[d];
    const std::uint64_t first = d < 8 ? (*from)[0].lo : (*from)[0].hi;
    const int shift = 8 * (d % 8);
    if (count[(first >> shift) & 0xFF] == n) continue;  // every key has this byte: no pass
    std::uint32_t sum = 0;
    for (std::uint32_t& c : count) sum += std::exchange(c, sum);  // counts -> first places
    for (const T& item : *from) {
      const std::uint64_t key = d < 8 ? item.lo : item.hi;
      (*to)[count[(key >> shift) & 0xFF]++] = item;
    }
    std::swap(from, to);
  }
  if (from != &items) items.swap(scratch);
}

}  // namespace pointex::store

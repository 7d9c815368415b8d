#pragma once
/// IdMap: values by a 64-bit id (transfer or account), flat in memory.
///
/// The hot maps of the write path (an account's transfer records, the directory's entries, the
/// projector's accounts) are looked up several times per transfer, mostly with cache misses:
/// std::unordered_map reaches a value through a bucket, the node before it and its own node, and
/// allocates a node per insert. Here the values sit in one vector in insertion order and an
/// open-addressing index (linear probing over {id, place}) maps ids to them: a lookup reads one
/// index slot and the value, a lookup of an absent id (deciding a new transfer) the index only.
/// Erasing moves the last value into the hole, so references and iterators are valid only until
/// the next emplace or erase (erase(iterator) returns where to go on when erasing while walking).

#include <cstdint>
#include <utility>
#include <vector>

#include "domain/assert.hpp"

namespace pointex::domain {

template <class Value>
class IdMap {
 public:
  using value_type = std::pair<std::uint64_t, Value>;
  using iterator = value_type*;
  using const_iterator = const value_type*;

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  iterator begin() { return entries_.data(); }
  iterator end() { return entries_.data() + entries_.size(); }
  const_iterator begin() const { return entries_.data(); }
  const_iterator end() const { return entries_.data() + entries_.size(); }

  iterator find(std::uint64_t id) {
    const std::size_t s = slot_of(id);
    return s == npos ? end() : &entries_[slots_[s].place - 1];
  }
  const_iterator find(std::uint64_t id) const {
    const std::size_t s = slot_of(id);
    return s == npos ? end() : &entries_[slots_[s].place - 1];
  }
  /// find() for each of ids[0, n) into out[0, n), overlapping their cache misses: the index
  /// slot of each id is fetched a few lookups ahead, and each value found is fetched before it
  /// is used. For many lookups at once into a map much larger than the cache (routing a batch).
  void find_many(const std::uint64_t* ids, std::size_t n, iterator* out) {
    constexpr std::size_t ahead = 8;
    if (slots_.empty()) {
      for (std::size_t i = 0; i < n; ++i) out[i] = end();
      return;
    }
    for (std::size_t i = 0; i < n && i < ahead; ++i) __builtin_prefetch(&slots_[home(ids[i])]);
    for (std::size_t i = 0; i < n; ++i) {
      if (i + ahead < n) __builtin_prefetch(&slots_[home(ids[i + ahead])]);
      out[i] = find(ids[i]);
      if (out[i] != end()) __builtin_prefetch(out[i]);
    }
  }
  /// Where `it` sits, 1-based (0 for end()): a hint for find_hinted, valid until an erase.
  std::uint32_t place_of(const_iterator it) const {
    return it == end() ? 0 : static_cast<std::uint32_t>(it - begin() + 1);
  }
  /// find(id), trying `hint` (place_of an earlier find or emplace) first: no index lookup
  /// when the value is still there.
  iterator find_hinted(std::uint64_t id, std::uint32_t hint) {
    if (hint != 0 && hint <= entries_.size() && entries_[hint - 1].first == id) {
      return &entries_[hint - 1];
    }
    return find(id);
  }
  std::size_t count(std::uint64_t id) const { return slot_of(id) == npos ? 0 : 1; }
  Value& at(std::uint64_t id) {
    const iterator it = find(id);
    POINTEX_ASSERT(it != end());
    return it->second;
  }
  const Value& at(std::uint64_t id) const {
    const const_iterator it = find(id);
    POINTEX_ASSERT(it != end());
    return it->second;
  }

  /// The value of `id`, value-initialized first if there is none.
  Value& operator[](std::uint64_t id) { return emplace(id, Value{}).first->second; }

  /// Adds `value` under `id` unless one is there: (where it is, whether it was added).
  template <class V>
  std::pair<iterator, bool> emplace(std::uint64_t id, V&& value) {
    if ((entries_.size() + 1) * 4 > slots_.size() * 3) grow();
    std::size_t s = home(id);
    while (slots_[s].place != 0) {
      if (slots_[s].id == id) return {&entries_[slots_[s].place - 1], false};
      s = (s + 1) & mask();
    }
    entries_.emplace_back(id, std::forward<V>(value));
    slots_[s] = {id, static_cast<std::uint32_t>(entries_.size())};
    return {&entries_.back(), true};
  }

  std::size_t erase(std::uint64_t id) {
    const std::size_t s = slot_of(id);
    if (s == npos) return 0;
    const std::uint32_t place = slots_[s].place;
    remove_slot(s);
    if (place != entries_.size()) {  // the last record fills the hole
      entries_[place - 1] = std::move(entries_.back());
      slots_[slot_of(entries_[place - 1].first)].place = place;
    }
    entries_.pop_back();
    // Give memory back once mostly empty (passivated accounts, evicted records): at most half
    // full afterwards, so growing again takes as many inserts as it had erases.
    if (slots_.size() > 64 && entries_.size() * 8 < slots_.size()) {
      entries_.shrink_to_fit();
      std::size_t n = 8;
      while (n < entries_.size() * 2) n *= 2;
      rehash(n);
    }
    return 1;
  }
  /// Erases the value at `it`; returns `it` again, now holding the value not yet walked that
  /// moved there (or end()).
  iterator erase(const_iterator it) {
    const auto at = static_cast<std::size_t>(it - entries_.data());
    erase(it->first);
    return entries_.data() + at;
  }

  /// Empties the map and frees its memory.
  void clear() {
    std::vector<value_type>().swap(entries_);
    std::vector<Slot>().swap(slots_);
  }

 private:
  struct Slot {
    std::uint64_t id = 0;
    std::uint32_t place = 0;  // 1 + index into entries_; 0: empty
  };
  static constexpr std::size_t npos = ~std::size_t{0};

  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t home(std::uint64_t id) const {
    // Fibonacci hashing: ids may be sequential or share low bits.
    return static_cast<std::size_t>((id * 0x9E3779B97F4A7C15ULL) >> 32) & mask();
  }

  std::size_t slot_of(std::uint64_t id) const {
    if (slots_.empty()) return npos;
    for (std::size_t s = home(id);; s = (s + 1) & mask()) {
      if (slots_[s].place == 0) return npos;
      if (slots_[s].id == id) return s;
    }
  }

  /// Backward-shift deletion: the slots after `s` up to the next empty one move back if their
  /// home is not between `s` and where they are, so every probe sequence stays unbroken.
  void remove_slot(std::size_t s) {
    std::size_t next = s;
    for (;;) {
      next = (next + 1) & mask();
      if (slots_[next].place == 0) break;
      const std::size_t h = home(slots_[next].id);
      const bool stays = s <= next ? (s < h && h <= next) : (s < h || h <= next);
      if (stays) continue;
      slots_[s] = slots_[next];
      s = next;
    }
    slots_[s] = Slot{};
  }

  void grow() { rehash(slots_.empty() ? 8 : slots_.size() * 2); }

  /// Rebuilds the index with `n` slots (a power of two, more than the values).
  void rehash(std::size_t n) {
    std::vector<Slot>(n).swap(slots_);
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      std::size_t s = home(entries_[i].first);
      while (slots_[s].place != 0) s = (s + 1) & mask();
      slots_[s] = {entries_[i].first, static_cast<std::uint32_t>(i + 1)};
    }
  }

  std::vector<value_type> entries_;
  std::vector<Slot> slots_;
};

}  // namespace pointex::domain

#include "histogram.hpp"

#include <algorithm>
#include <cmath>

namespace pointex::bench {

Histogram::Histogram() : buckets_((64 - sub_bits + 1) << sub_bits, 0) {}

std::size_t Histogram::bucket_of(std::uint64_t v) {
  constexpr std::uint64_t linear = 1ULL << sub_bits;
  if (v < linear) return static_cast<std::size_t>(v);
  const int msb = 63 - __builtin_clzll(v);
  const int shift = msb - sub_bits;
  const std::uint64_t sub = (v >> shift) & (linear - 1);
  return static_cast<std::size_t>(((shift + 1) << sub_bits) + sub);
}

std::uint64_t Histogram::upper_of(std::size_t bucket) {
  constexpr std::uint64_t linear = 1ULL << sub_bits;
  if (bucket < linear) return bucket;
  const int shift = static_cast<int>(bucket >> sub_bits) - 1;
  const std::uint64_t sub = bucket & (linear - 1);
  return ((linear + sub + 1) << shift) - 1;
}

void Histogram::record(std::uint64_t value_ns) {
  ++buckets_[bucket_of(value_ns)];
  ++count_;
  max_ = std::max(max_, value_ns);
}

void Histogram::merge(const Histogram& other) {
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

std::uint64_t Histogram::quantile(double q) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= std::max<std::uint64_t>(rank, 1)) return std::min(upper_of(i), max_);
  }
  return max_;
}

}  // namespace pointex::bench

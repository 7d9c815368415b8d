#pragma once
/// A latency histogram in the HDR style: log-linear buckets with 1/64 relative precision
/// (better than 2%), so p99 and p999 are exact to two significant digits at any magnitude.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace pointex::bench {

class Histogram {
 public:
  Histogram();
  void record(std::uint64_t value_ns);
  void merge(const Histogram& other);
  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  /// The value at quantile q (0..1), in ns; 0 when empty.
  std::uint64_t quantile(double q) const;

 private:
  static constexpr int sub_bits = 6;  // 64 sub-buckets per power of two
  static std::size_t bucket_of(std::uint64_t v);
  static std::uint64_t upper_of(std::size_t bucket);
  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

/// Nanoseconds as milliseconds.
inline double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

/// `{"count","p50","p99","p999","max"}` in ms: every run's `latency_ms` in the JSON reports.
inline nlohmann::json latency_json(const Histogram& h) {
  return {{"count", h.count()},
          {"p50", ms(h.quantile(0.5))},
          {"p99", ms(h.quantile(0.99))},
          {"p999", ms(h.quantile(0.999))},
          {"max", ms(h.max())}};
}

}  // namespace pointex::bench

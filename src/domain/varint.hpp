#pragma once
/// Varint (LEB128) and length-prefixed byte encoding, shared by the event codec and the read
/// models. The reader is strict: truncation, overlong or out-of-range values are errors, and
/// after the first error every read returns zero.

#include <cstdint>
#include <string>
#include <string_view>

#include "domain/codec.hpp"

namespace pointex::domain {

inline void put_u8(std::string& out, std::uint8_t v) {
  out.push_back(static_cast<char>(v));
}

inline void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void put_bytes(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s.data(), s.size());
}

class Reader {
 public:
  explicit Reader(std::string_view bytes)
      : p_(reinterpret_cast<const std::uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  std::uint8_t u8() {
    if (p_ == end_) return fail(DecodeError::truncated), 0;
    return *p_++;
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return fail(DecodeError::truncated), 0;
      const std::uint8_t b = *p_++;
      if (shift == 63 && b > 1) return fail(DecodeError::invalid_field), 0;
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return fail(DecodeError::invalid_field), 0;
  }
  template <class T>
  T bounded(std::uint64_t max) {
    const std::uint64_t v = varint();
    if (v > max) fail(DecodeError::invalid_field);
    return static_cast<T>(v);
  }
  std::string bytes(std::size_t max) {
    const std::uint64_t n = varint();
    if (n > max) return fail(DecodeError::invalid_field), std::string();
    if (static_cast<std::uint64_t>(end_ - p_) < n)
      return fail(DecodeError::truncated), std::string();
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  DecodeError error() const { return error_; }
  DecodeError finish() {
    if (error_ == DecodeError::none && p_ != end_) error_ = DecodeError::trailing_bytes;
    return error_;
  }
  void fail(DecodeError e) {
    if (error_ == DecodeError::none) error_ = e;
    p_ = end_;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  DecodeError error_ = DecodeError::none;
};

}  // namespace pointex::domain

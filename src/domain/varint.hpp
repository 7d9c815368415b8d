#pragma once
/// Varint (LEB128) and length-prefixed byte encoding, shared by the event codec and the read
/// models. The reader is strict: truncation, overlong or out-of-range values are errors, and
/// after the first error every read returns zero.

#include <cstdint>
#include <string>
#include <string_view>

#include "domain/codec.hpp"
#include "pointex/types.hpp"

namespace pointex::domain {

inline void put_u8(std::string& out, std::uint8_t v) {
  out.push_back(static_cast<char>(v));
}

inline void put_varint(std::string& out, std::uint64_t v) {
  if (v < 0x80) return out.push_back(static_cast<char>(v));  // flags, kinds, codes, zeros
  // Into a local buffer, then one append: a push_back per byte checks the capacity, writes the
  // terminator and reloads the string's fields each time (the bytes written may alias them).
  char buf[10];
  std::size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
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
  /// The bytes not read yet.
  std::string_view rest() const {
    return std::string_view(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(end_ - p_));
  }
  DecodeError error() const { return error_; }
  bool at_end() const { return p_ == end_; }
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

/// A transfer as submitted: its ten fields in order (events and read models both store it).
inline void put_transfer_request(std::string& out, const Transfer& r) {
  for (std::uint64_t x :
       {r.id, r.debit_account, r.credit_account, r.amount, r.ledger, std::uint64_t{r.code},
        std::uint64_t{r.flags}, r.pending_id, std::uint64_t{r.timeout_s}, r.user_data}) {
    put_varint(out, x);
  }
}

inline Transfer read_transfer_request(Reader& in) {
  Transfer r;
  r.id = in.varint();
  r.debit_account = in.varint();
  r.credit_account = in.varint();
  r.amount = in.varint();
  r.ledger = in.varint();
  r.code = in.bounded<std::uint16_t>(UINT16_MAX);
  r.flags = in.bounded<std::uint32_t>(transfer_flags::all);
  r.pending_id = in.varint();
  r.timeout_s = in.bounded<std::uint32_t>(UINT32_MAX);
  r.user_data = in.varint();
  return r;
}

}  // namespace pointex::domain

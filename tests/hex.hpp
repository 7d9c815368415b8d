#pragma once
// Lower-case hex of bytes, for golden encodings in tests.

#include <string>

namespace pointex::test {

inline std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out.push_back(digits[static_cast<unsigned char>(c) >> 4]);
    out.push_back(digits[static_cast<unsigned char>(c) & 0xF]);
  }
  return out;
}

}  // namespace pointex::test

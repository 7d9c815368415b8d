#include "server/hmac.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cctype>
#include <stdexcept>

namespace pointex::client {
namespace {

using Digest = std::array<unsigned char, 32>;

Digest digest(std::string_view secret, std::string_view body) {
  Digest out{};
  unsigned int length = 0;
  const unsigned char* ok =
      HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(body.data()), body.size(), out.data(), &length);
  if (ok == nullptr || length != out.size()) throw std::runtime_error("HMAC-SHA256 failed");
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower >= 'a' && lower <= 'f') return lower - 'a' + 10;
  return -1;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view secret, std::string_view body) {
  static constexpr char digits[] = "0123456789abcdef";
  const Digest d = digest(secret, body);
  std::string hex;
  hex.reserve(d.size() * 2);
  for (unsigned char b : d) {
    hex.push_back(digits[b >> 4]);
    hex.push_back(digits[b & 0xf]);
  }
  return hex;
}

bool hmac_sha256_verify(std::string_view secret, std::string_view body,
                        std::string_view signature) {
  if (signature.size() != 64) return false;
  Digest given{};
  for (std::size_t i = 0; i < given.size(); ++i) {
    const int hi = hex_value(signature[2 * i]);
    const int lo = hex_value(signature[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    given[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  const Digest expected = digest(secret, body);
  return CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

}  // namespace pointex::client

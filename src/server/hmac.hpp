#pragma once
/// HMAC-SHA256 signatures (OpenSSL) for what travels between PointEx and other systems over
/// HTTP: payment-provider callbacks (verified) and webhook deliveries (signed). A signature is
/// the lower-case hex of HMAC-SHA256(secret, raw body), carried in `X-Signature`.

#include <string>
#include <string_view>

namespace pointex::client {

/// The 64 lower-case hex digits of HMAC-SHA256(secret, body).
std::string hmac_sha256_hex(std::string_view secret, std::string_view body);

/// Whether `signature` (hex, either case) is HMAC-SHA256(secret, body). Compares in constant
/// time, so an attacker learns nothing from how long a refusal took.
bool hmac_sha256_verify(std::string_view secret, std::string_view body, std::string_view signature);

}  // namespace pointex::client

#pragma once
// Byte encodings and random tokens that carry no secret meaning by themselves.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wmk::util {

std::string hex_encode(std::span<const std::uint8_t> bytes);
// The value (0-15) of one hex digit, either case; nullopt if c is not one.
std::optional<std::uint8_t> hex_digit_value(char c);
// Returns nullopt if text is not even-length lowercase/uppercase hex.
std::optional<std::vector<std::uint8_t>> hex_decode(std::string_view text);

// RFC 4648 §5 base64url without padding (cookie- and URL-safe).
std::string base64url_encode(std::span<const std::uint8_t> bytes);
std::optional<std::vector<std::uint8_t>> base64url_decode(std::string_view text);
// The value of one base64url digit, or -1 (for decoders that must not copy, such as
// the secret cookies').
int base64url_digit(char c);
// RFC 4648 §4 base64 (MIME, armor): whitespace is skipped, '=' padding is optional
// but nothing may follow it. nullopt on any other character or a dangling 6 bits.
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);

// size random bytes from the CSPRNG. Throws std::runtime_error if it fails.
std::vector<std::uint8_t> random_bytes(std::size_t size);
// A random identifier: bytes random bytes as base64url.
std::string random_token(std::size_t bytes = 16);

// SHA-256 of data, lowercase hex.
std::string sha256_hex(std::span<const std::uint8_t> data);
std::string sha256_hex(std::string_view data);

inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace wmk::util

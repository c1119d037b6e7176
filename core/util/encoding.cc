#include "core/util/encoding.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "core/util/clock.h"

namespace wmk::util {

const Clock& system_clock() {
  static const SystemClock clock;
  return clock;
}

std::string hex_encode(std::span<const std::uint8_t> bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

std::optional<std::uint8_t> hex_digit_value(char c) {
  if (c >= '0' && c <= '9')
    return static_cast<std::uint8_t>(c - '0');
  if (c >= 'a' && c <= 'f')
    return static_cast<std::uint8_t>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F')
    return static_cast<std::uint8_t>(c - 'A' + 10);
  return std::nullopt;
}

namespace {

// The value of one base64 digit, with c62 and c63 the alphabet's last two digits
// ('+' '/' for base64, '-' '_' for base64url); -1 for anything else.
int base64_digit(char c, char c62, char c63) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == c62)
    return 62;
  if (c == c63)
    return 63;
  return -1;
}

}  // namespace

int base64url_digit(char c) {
  return base64_digit(c, '-', '_');
}

std::optional<std::vector<std::uint8_t>> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0)
    return std::nullopt;
  std::vector<std::uint8_t> out(text.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto hi = hex_digit_value(text[2 * i]), lo = hex_digit_value(text[2 * i + 1]);
    if (!hi || !lo)
      return std::nullopt;
    out[i] = static_cast<std::uint8_t>(*hi << 4 | *lo);
  }
  return out;
}

static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url_encode(std::span<const std::uint8_t> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    std::uint32_t v = bytes[i] << 16 | bytes[i + 1] << 8 | bytes[i + 2];
    out += {kB64[v >> 18 & 63], kB64[v >> 12 & 63], kB64[v >> 6 & 63], kB64[v & 63]};
  }
  if (bytes.size() - i == 1) {
    std::uint32_t v = bytes[i] << 16;
    out += {kB64[v >> 18 & 63], kB64[v >> 12 & 63]};
  } else if (bytes.size() - i == 2) {
    std::uint32_t v = bytes[i] << 16 | bytes[i + 1] << 8;
    out += {kB64[v >> 18 & 63], kB64[v >> 12 & 63], kB64[v >> 6 & 63]};
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1)
    return std::nullopt;
  std::vector<std::uint8_t> out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = base64_digit(c, '-', '_');
    if (v < 0)
      return std::nullopt;
    acc = acc << 6 | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits & 0xff));
    }
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
  std::vector<std::uint8_t> out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t digits = 0;
  bool padded = false;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
      continue;
    if (c == '=') {
      padded = true;
      continue;
    }
    if (padded)
      return std::nullopt;
    int v = base64_digit(c, '+', '/');
    if (v < 0)
      return std::nullopt;
    ++digits;
    acc = acc << 6 | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits & 0xff));
    }
  }
  if (digits % 4 == 1)
    return std::nullopt;
  return out;
}

std::vector<std::uint8_t> random_bytes(std::size_t size) {
  std::vector<std::uint8_t> out(size);
  if (size > 0 && RAND_bytes(out.data(), static_cast<int>(size)) != 1) {
    throw std::runtime_error("the system random number generator failed");
  }
  return out;
}

std::string random_token(std::size_t bytes) {
  return base64url_encode(random_bytes(bytes));
}

std::string sha256_hex(std::span<const std::uint8_t> data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return hex_encode({md, len});
}

std::string sha256_hex(std::string_view data) {
  return sha256_hex(as_bytes(data));
}

}  // namespace wmk::util

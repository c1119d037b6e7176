#include "core/util/secret_cookie.h"

#include "core/util/encoding.h"

#include <cstdint>
#include <string>

namespace wmk::util {

namespace {

// base64url is done here rather than with util::base64url_* because those return
// std::string / std::vector, which would leave copies of the secret in the heap.
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::size_t encoded_size(std::size_t n) {
  return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

// Writes the base64url of in to out (which has encoded_size(in.size()) bytes).
void encode_into(const SecretBuffer& in, std::uint8_t* out) {
  const std::uint8_t* b = in.data();
  const std::size_t n = in.size();
  std::size_t o = 0;
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    std::uint32_t v = static_cast<std::uint32_t>(b[i]) << 16 |
                      static_cast<std::uint32_t>(b[i + 1]) << 8 | b[i + 2];
    out[o++] = static_cast<std::uint8_t>(kB64[v >> 18 & 63]);
    out[o++] = static_cast<std::uint8_t>(kB64[v >> 12 & 63]);
    out[o++] = static_cast<std::uint8_t>(kB64[v >> 6 & 63]);
    out[o++] = static_cast<std::uint8_t>(kB64[v & 63]);
    v = 0;
  }
  if (n - i == 1) {
    std::uint32_t v = static_cast<std::uint32_t>(b[i]) << 16;
    out[o++] = static_cast<std::uint8_t>(kB64[v >> 18 & 63]);
    out[o++] = static_cast<std::uint8_t>(kB64[v >> 12 & 63]);
  } else if (n - i == 2) {
    std::uint32_t v = static_cast<std::uint32_t>(b[i]) << 16 | static_cast<std::uint32_t>(b[i + 1])
                                                                   << 8;
    out[o++] = static_cast<std::uint8_t>(kB64[v >> 18 & 63]);
    out[o++] = static_cast<std::uint8_t>(kB64[v >> 12 & 63]);
    out[o++] = static_cast<std::uint8_t>(kB64[v >> 6 & 63]);
  }
}

}  // namespace

SecretBuffer encode_secret_cookie(const SecretBuffer& secret) {
  SecretBuffer out(encoded_size(secret.size()));
  encode_into(secret, out.data());
  return out;
}

Result<SecretBuffer> decode_secret_cookie(std::string_view value, std::size_t size,
                                          std::string_view what) {
  const std::string not_it = "the " + std::string(what) + " cookie is not a secret of this server";
  if (value.size() != encoded_size(size))
    return make_error(Errc::invalid_argument, not_it);
  SecretBuffer out(size);
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t o = 0;
  for (char c : value) {
    int v = base64url_digit(c);
    if (v < 0) {
      acc = 0;
      return make_error(Errc::invalid_argument,
                        "the " + std::string(what) + " cookie is not base64url");
    }
    acc = acc << 6 | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o == out.size()) {
        acc = 0;
        return make_error(Errc::invalid_argument,
                          "the " + std::string(what) + " cookie is too long");
      }
      out.data()[o++] = static_cast<std::uint8_t>(acc >> bits & 0xff);
    }
  }
  // Non-canonical trailing bits mean the value was not made by encode_secret_cookie.
  const bool canonical = o == out.size() && (acc & ((1u << bits) - 1)) == 0;
  acc = 0;
  if (!canonical)
    return make_error(Errc::invalid_argument, not_it);
  return out;
}

}  // namespace wmk::util

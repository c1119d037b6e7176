#include "core/crypto/kdf.h"

#include <argon2.h>

#include <cstdio>
#include <stdexcept>
#include <vector>

#include "core/util/encoding.h"

namespace wmk::crypto {

std::string KdfParams::to_string() const {
  return "m=" + std::to_string(memory_kib) + ",t=" + std::to_string(iterations) +
         ",p=" + std::to_string(parallelism);
}

std::optional<KdfParams> KdfParams::parse(const std::string& text) {
  unsigned m = 0, t = 0, p = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "m=%u,t=%u,p=%u%n", &m, &t, &p, &consumed) != 3 ||
      static_cast<std::size_t>(consumed) != text.size()) {
    return std::nullopt;
  }
  if (m < 8 || m > 4u * 1024 * 1024 || t < 1 || t > 100 || p < 1 || p > 16)
    return std::nullopt;
  return KdfParams{m, t, p};
}

util::SecretBuffer derive_key(const util::SecretBuffer& secret, std::span<const std::uint8_t> salt,
                              const KdfParams& params) {
  util::SecretBuffer out(32);
  int rc =
      argon2id_hash_raw(params.iterations, params.memory_kib, params.parallelism, secret.data(),
                        secret.size(), salt.data(), salt.size(), out.data(), out.size());
  if (rc != ARGON2_OK) {
    throw std::runtime_error(std::string("Argon2id failed: ") + argon2_error_message(rc));
  }
  return out;
}

std::string hash_password(const util::SecretBuffer& password, const KdfParams& params) {
  auto salt = util::random_bytes(16);
  constexpr std::size_t kHashLen = 32;
  std::size_t len = argon2_encodedlen(params.iterations, params.memory_kib, params.parallelism,
                                      static_cast<std::uint32_t>(salt.size()), kHashLen, Argon2_id);
  std::vector<char> encoded(len);
  int rc = argon2id_hash_encoded(params.iterations, params.memory_kib, params.parallelism,
                                 password.data(), password.size(), salt.data(), salt.size(),
                                 kHashLen, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) {
    throw std::runtime_error(std::string("Argon2id failed: ") + argon2_error_message(rc));
  }
  return std::string(encoded.data());
}

bool verify_password(const util::SecretBuffer& password, const std::string& phc) {
  if (phc.rfind("$argon2id$", 0) != 0)
    return false;
  return argon2id_verify(phc.c_str(), password.data(), password.size()) == ARGON2_OK;
}

}  // namespace wmk::crypto

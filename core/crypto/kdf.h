#pragma once
// Argon2id: the memory-hard KDF for key passphrases (raw 32-byte KEKs) and for
// login passwords (PHC-encoded hashes with their parameters).

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::crypto {

struct KdfParams {
  std::uint32_t memory_kib = 131072;
  std::uint32_t iterations = 2;
  std::uint32_t parallelism = 1;

  // "m=131072,t=2,p=1", as stored beside a key.
  std::string to_string() const;
  // Parses to_string()'s format; nullopt if malformed or out of range.
  static std::optional<KdfParams> parse(const std::string& text);
};

// Derives a 32-byte key from secret and salt (16+ bytes).
// Throws std::runtime_error if Argon2 fails (out of memory).
util::SecretBuffer derive_key(const util::SecretBuffer& secret, std::span<const std::uint8_t> salt,
                              const KdfParams& params);

// Hashes a login password into a PHC string ($argon2id$v=19$m=..,t=..,p=..$salt$hash).
std::string hash_password(const util::SecretBuffer& password, const KdfParams& params);

// Checks password against a PHC string made by hash_password. False on mismatch or a
// malformed hash; constant-time in the password.
bool verify_password(const util::SecretBuffer& password, const std::string& phc);

}  // namespace wmk::crypto

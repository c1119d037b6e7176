#pragma once
// Authenticated encryption (AES-256-GCM) for wrapping secrets at rest: key secrets
// under a passphrase-derived KEK, and key secrets under a grant secret.
// Blob layout: 1 byte version (1) | 12 bytes nonce | ciphertext | 16 bytes tag.
// The associated data binds a blob to its context (fingerprint, session, expiry),
// so a blob moved to another row does not open.

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::crypto {

inline constexpr std::size_t kAeadKeySize = 32;

// Encrypts plaintext under key (32 bytes) with a fresh random nonce.
// Throws std::runtime_error if OpenSSL fails (never expected).
std::vector<std::uint8_t> seal(const util::SecretBuffer& key,
                               std::span<const std::uint8_t> plaintext,
                               std::string_view associated_data);

// Decrypts and authenticates. Errc::crypto if the key, the data or the associated
// data do not match (wrong passphrase, tampering, wrong row); Errc::corrupt if the
// blob is malformed.
Result<util::SecretBuffer> open(const util::SecretBuffer& key, std::span<const std::uint8_t> blob,
                                std::string_view associated_data);

}  // namespace wmk::crypto

#include "core/crypto/aead.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>

namespace wmk::crypto {

namespace {
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kNonce = 12;
constexpr std::size_t kTag = 16;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

CipherCtx new_ctx() {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx)
    throw std::runtime_error("EVP_CIPHER_CTX_new failed");
  return ctx;
}
}  // namespace

std::vector<std::uint8_t> seal(const util::SecretBuffer& key,
                               std::span<const std::uint8_t> plaintext,
                               std::string_view associated_data) {
  if (key.size() != kAeadKeySize)
    throw std::invalid_argument("AEAD key must be 32 bytes");
  std::vector<std::uint8_t> out(1 + kNonce + plaintext.size() + kTag);
  out[0] = kVersion;
  std::uint8_t* nonce = out.data() + 1;
  if (RAND_bytes(nonce, kNonce) != 1)
    throw std::runtime_error("RAND_bytes failed");
  auto ctx = new_ctx();
  int len = 0;
  bool ok = EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                              reinterpret_cast<const unsigned char*>(associated_data.data()),
                              static_cast<int>(associated_data.size())) == 1 &&
            EVP_EncryptUpdate(ctx.get(), out.data() + 1 + kNonce, &len, plaintext.data(),
                              static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), out.data() + 1 + kNonce + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag,
                                out.data() + 1 + kNonce + plaintext.size()) == 1;
  if (!ok)
    throw std::runtime_error("AES-256-GCM encryption failed");
  return out;
}

Result<util::SecretBuffer> open(const util::SecretBuffer& key, std::span<const std::uint8_t> blob,
                                std::string_view associated_data) {
  if (key.size() != kAeadKeySize)
    throw std::invalid_argument("AEAD key must be 32 bytes");
  if (blob.size() < 1 + kNonce + kTag || blob[0] != kVersion) {
    return make_error(Errc::corrupt, "the wrapped secret is malformed");
  }
  const std::size_t ct_len = blob.size() - 1 - kNonce - kTag;
  util::SecretBuffer plain(ct_len);
  auto ctx = new_ctx();
  int len = 0;
  std::vector<std::uint8_t> tag(blob.end() - kTag, blob.end());
  bool ok =
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), blob.data() + 1) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(associated_data.data()),
                        static_cast<int>(associated_data.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), plain.data(), &len, blob.data() + 1 + kNonce,
                        static_cast<int>(ct_len)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) == 1;
  if (!ok)
    throw std::runtime_error("AES-256-GCM decryption setup failed");
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &final_len) != 1) {
    return make_error(Errc::crypto, "authentication failed: wrong key or tampered data");
  }
  return plain;
}

}  // namespace wmk::crypto

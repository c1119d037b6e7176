#pragma once
// The S/MIME engine (key_engine.h): OpenSSL CMS with the PKCS#8 the store keeps sealed
// under the key secret (AES-256-GCM) and the certificate chain beside it. Internal to
// core/keys.

#include <string>

#include "core/keys/key_engine.h"
#include "core/store/db.h"
#include "core/util/clock.h"

namespace wmk::keys::detail {

// The associated data of keys.private_blob: the sealed key opens only in its own row.
std::string smime_blob_ad(const std::string& fingerprint);

class SmimeEngine final : public KeyEngine {
 public:
  SmimeEngine(store::Db& db, const util::Clock& clock);

  Status prepare(const KeyInfo& key) override;
  Status erase(const KeyInfo& key) override;
  void forget(const std::string& fingerprint) override;
  Status check_key_secret(const KeyInfo& key, const util::SecretBuffer& key_secret) override;
  Result<DecryptResult> decrypt(const KeyInfo& key, const util::SecretBuffer& key_secret,
                                std::string_view ciphertext) override;
  Result<SignResult> sign(const KeyInfo& key, const util::SecretBuffer& key_secret,
                          std::string_view data) override;
  Result<std::string> export_secret(const KeyInfo& key, const util::SecretBuffer& key_secret,
                                    const util::SecretBuffer& export_passphrase) override;
  Result<VerifyResult> verify(std::string_view signed_data, std::string_view signature) override;
  Result<std::string> encrypt(const std::vector<std::string>& recipient_keys,
                              std::string_view plaintext, SmimeCipher cipher) override;
  Result<std::vector<PublicKey>> read_public(std::string_view data) override;
  Result<std::vector<PublicKey>> import_public(std::string_view data) override;

 private:
  struct OpenedKey {
    util::SecretBuffer der;  // the PKCS#8 DER, opened with the key secret
    std::string chain;       // the PEM certificate chain, leaf first
  };
  // The key's row, read once. Errc::not_found if the row is gone, Errc::crypto if the
  // key secret does not open the key.
  Result<OpenedKey> open_key(const KeyInfo& key, const util::SecretBuffer& key_secret);

  store::Db& db_;
  const util::Clock& clock_;
};

}  // namespace wmk::keys::detail

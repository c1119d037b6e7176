#pragma once
// One engine per key technology behind one interface (STYLE.md point 13): OpenPGP
// through GPGME (openpgp_engine.cc), S/MIME through OpenSSL CMS (smime_engine.cc).
// Internal to core/keys. KeyStore keeps what both share — the rows, the key secret
// wrapped under the passphrase, the expiry and revocation rules, the audit — and asks
// the key's engine for what differs. Generation and import stay in KeyStore: their
// inputs differ by technology already (import_openpgp, import_smime).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/keys/types.h"
#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::keys::detail {

class KeyEngine {
 public:
  virtual ~KeyEngine() = default;

  // Makes the key usable on this node (OpenPGP: the GnuPG home holds the store's
  // version, docs/security.md "Key material in the store"; S/MIME: nothing to do).
  // Errc::not_found if its row is gone; Errc::disabled when this node cannot have it.
  virtual Status prepare(const KeyInfo& key) = 0;

  // The key is being deleted (its row, in the caller's transaction): what the engine
  // keeps of it outside the store goes. Missing is fine.
  virtual Status erase(const KeyInfo& key) = 0;

  // The key's row is gone (deleted on another node): what this node keeps of it goes.
  virtual void forget(const std::string& fingerprint) = 0;

  // Ok if key_secret opens the key, where that costs nothing (S/MIME: the sealed
  // PKCS#8); Errc::crypto if it does not.
  virtual Status check_key_secret(const KeyInfo& key, const util::SecretBuffer& key_secret) = 0;

  // As KeyStore::decrypt, sign and export_secret, after KeyStore's own checks.
  virtual Result<DecryptResult> decrypt(const KeyInfo& key, const util::SecretBuffer& key_secret,
                                        std::string_view ciphertext) = 0;
  virtual Result<SignResult> sign(const KeyInfo& key, const util::SecretBuffer& key_secret,
                                  std::string_view data) = 0;
  virtual Result<std::string> export_secret(const KeyInfo& key,
                                            const util::SecretBuffer& key_secret,
                                            const util::SecretBuffer& export_passphrase) = 0;

  // As KeyStore::verify, encrypt, read_public and import_public for this technology.
  virtual Result<VerifyResult> verify(std::string_view signed_data, std::string_view signature) = 0;
  virtual Result<std::string> encrypt(const std::vector<std::string>& recipient_keys,
                                      std::string_view plaintext, SmimeCipher cipher) = 0;
  virtual Result<std::vector<PublicKey>> read_public(std::string_view data) = 0;
  virtual Result<std::vector<PublicKey>> import_public(std::string_view data) = 0;
};

}  // namespace wmk::keys::detail

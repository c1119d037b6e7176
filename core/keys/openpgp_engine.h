#pragma once
// The OpenPGP engine (key_engine.h): GPGME against the node's GnuPG home, which is a
// cache of the key material the store holds (home_cache.h). Internal to core/keys.

#include <memory>
#include <string>

#include "core/config/config.h"
#include "core/keys/home_cache.h"
#include "core/keys/key_engine.h"
#include "core/keys/openpgp.h"
#include "core/store/db.h"

namespace wmk::keys::detail {

// A key as GnuPG lists it, as a correspondent's public key.
PublicKey public_of(const PgpKeyMeta& meta);

class OpenPgpEngine final : public KeyEngine {
 public:
  // db: the store; cfg: where the GnuPG home and the scratch directory are.
  OpenPgpEngine(store::Db& db, const config::Config& cfg);

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
  // A signer the home does not know is looked up in the store (users' and
  // correspondents' public keys), merged into the home, and the signature checked again.
  Result<VerifyResult> verify(std::string_view signed_data, std::string_view signature) override;
  Result<std::string> encrypt(const std::vector<std::string>& recipient_keys,
                              std::string_view plaintext, SmimeCipher cipher) override;
  Result<std::vector<PublicKey>> read_public(std::string_view data) override;
  Result<std::vector<PublicKey>> import_public(std::string_view data) override;

  // The GnuPG home is there (made again if it was removed) and configured as `init`
  // makes it; checked once per engine. Errc::config otherwise.
  Status check_home();
  // GPGME on the home, made on first use.
  OpenPgp& pgp();
  HomeCache cache();

 private:
  bool fetch_unknown_signers(const VerifyResult& result);

  store::Db& db_;
  const config::Config& cfg_;
  bool home_checked_ = false;
  std::unique_ptr<OpenPgp> pgp_;
};

}  // namespace wmk::keys::detail

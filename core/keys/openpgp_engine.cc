#include "core/keys/openpgp_engine.h"

#include "core/keys/gnupg_home.h"
#include "core/util/fs.h"

namespace wmk::keys::detail {

PublicKey public_of(const PgpKeyMeta& m) {
  PublicKey k;
  k.type = KeyType::openpgp;
  k.fingerprint = m.fingerprint;
  k.algorithm = m.algorithm;
  k.created = m.created;
  k.expires = m.expires;
  k.revoked = m.revoked;
  k.can_encrypt = m.can_encrypt && !m.revoked && !m.expired;
  k.user_ids = m.user_ids;
  k.emails = m.emails;
  return k;
}

OpenPgpEngine::OpenPgpEngine(store::Db& db, const config::Config& cfg) : db_(db), cfg_(cfg) {}

OpenPgp& OpenPgpEngine::pgp() {
  if (!pgp_)
    pgp_ = std::make_unique<OpenPgp>(cfg_.gnupg_home(), cfg_.data_dir + "/tmp");
  return *pgp_;
}

HomeCache OpenPgpEngine::cache() {
  return HomeCache(db_, pgp());
}

Status OpenPgpEngine::check_home() {
  if (home_checked_)
    return {};
  // The home is a cache of the store: a node whose home is gone makes a new one, with
  // the settings `init` gives it, and fills it from the store as keys are used.
  if (!util::path_exists(cfg_.gnupg_home()))
    WMK_TRY(ensure_gnupg_home(cfg_.gnupg_home()));
  WMK_TRY(check_gnupg_home(cfg_.gnupg_home()));
  home_checked_ = true;
  return {};
}

Status OpenPgpEngine::prepare(const KeyInfo& key) {
  WMK_TRY(check_home());
  return cache().ensure_secret(key.id, key.fingerprint);
}

Status OpenPgpEngine::erase(const KeyInfo& key) {
  WMK_TRY(check_home());
  // A correspondent's directory may hold the same public key (core/contacts): then only
  // the secret leaves the home, and their verdicts and encryption still work.
  auto held =
      db_.prepare("SELECT 1 FROM contact_keys WHERE fingerprint = ? AND type = 'openpgp' LIMIT 1");
  held.bind(1, key.fingerprint);
  const bool contact_holds = held.step();
  held.reset();
  Status gone =
      contact_holds ? pgp().remove_secret(key.fingerprint) : pgp().remove(key.fingerprint);
  if (!gone.ok() && gone.code() != Errc::not_found)
    return gone;
  return {};
}

void OpenPgpEngine::forget(const std::string& fingerprint) {
  if (check_home().ok())
    (void)cache().drop_if_gone(fingerprint);
}

Status OpenPgpEngine::check_key_secret(const KeyInfo&, const util::SecretBuffer&) {
  return {};  // only gpg-agent can tell, at the key's use
}

Result<DecryptResult> OpenPgpEngine::decrypt(const KeyInfo& key,
                                             const util::SecretBuffer& key_secret,
                                             std::string_view ciphertext) {
  WMK_TRY(prepare(key));
  return pgp().decrypt(key.fingerprint, key_secret, ciphertext);
}

Result<SignResult> OpenPgpEngine::sign(const KeyInfo& key, const util::SecretBuffer& key_secret,
                                       std::string_view data) {
  WMK_TRY(prepare(key));
  return pgp().sign(key.fingerprint, key_secret, data);
}

Result<std::string> OpenPgpEngine::export_secret(const KeyInfo& key,
                                                 const util::SecretBuffer& key_secret,
                                                 const util::SecretBuffer& export_passphrase) {
  WMK_TRY(prepare(key));
  return pgp().export_secret(key.fingerprint, key_secret, export_passphrase);
}

bool OpenPgpEngine::fetch_unknown_signers(const VerifyResult& result) {
  bool added = false;
  for (const auto& sig : result.signatures) {
    if (sig.status != SignatureStatus::no_public_key || sig.fingerprint.size() < 16)
      continue;
    // gpg names the unknown signer by fingerprint, or by key id (its last 16 digits).
    const std::string& id = sig.fingerprint;
    std::vector<std::string> found;
    {
      auto st = db_.prepare(
          "SELECT public_blob FROM keys WHERE type = 'openpgp' AND public_blob IS NOT NULL "
          "AND (fingerprint = ?1 OR substr(fingerprint, 25) = ?1) UNION ALL "
          "SELECT public_data FROM contact_keys WHERE type = 'openpgp' "
          "AND (fingerprint = ?1 OR substr(fingerprint, 25) = ?1)");
      st.bind(1, id);
      while (st.step()) {
        auto blob = st.column_blob(0);
        found.emplace_back(blob.begin(), blob.end());
      }
    }
    for (const auto& armored : found) {
      if (cache().ensure_public(armored).ok())
        added = true;
    }
  }
  return added;
}

Result<VerifyResult> OpenPgpEngine::verify(std::string_view signed_data,
                                           std::string_view signature) {
  WMK_TRY(check_home());
  auto out = pgp().verify(signed_data, signature);
  // A signer this node's home has not seen yet (a key imported on another node): its
  // public key comes from the store, and the signature is checked again.
  if (out && fetch_unknown_signers(*out))
    return pgp().verify(signed_data, signature);
  return out;
}

Result<std::string> OpenPgpEngine::encrypt(const std::vector<std::string>& recipient_keys,
                                           std::string_view plaintext, SmimeCipher) {
  return pgp().encrypt(recipient_keys, plaintext);
}

Result<std::vector<PublicKey>> OpenPgpEngine::read_public(std::string_view data) {
  WMK_TRY(check_home());
  auto metas = pgp().inspect(data);
  if (!metas)
    return metas.error();
  std::vector<PublicKey> out;
  for (const auto& m : *metas) {
    if (m.has_secret)
      return make_error(Errc::invalid_argument,
                        "the data holds a secret key: only public keys are taken (nothing was "
                        "imported)");
    out.push_back(public_of(m));
  }
  return out;
}

Result<std::vector<PublicKey>> OpenPgpEngine::import_public(std::string_view data) {
  WMK_TRY(check_home());
  auto metas = pgp().import_public(data);
  if (!metas)
    return metas.error();
  std::vector<PublicKey> out;
  for (const auto& m : *metas) {
    PublicKey k = public_of(m);
    auto armored = pgp().export_public(m.fingerprint);
    if (!armored)
      return armored.error();
    k.data = std::move(armored).value();
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace wmk::keys::detail

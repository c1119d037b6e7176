#include "core/keys/smime_engine.h"

#include "core/crypto/aead.h"
#include "core/keys/smime.h"

namespace wmk::keys::detail {

namespace {

PublicKey public_of(const PublicCertificate& c, std::int64_t now) {
  PublicKey k;
  k.type = KeyType::smime;
  k.fingerprint = c.cert.fingerprint;
  k.algorithm = c.cert.algorithm;
  k.created = c.cert.not_before;
  k.expires = c.cert.not_after;
  k.can_encrypt = now >= c.cert.not_before && now <= c.cert.not_after;
  k.user_ids = {c.cert.subject};
  k.emails = c.cert.emails;
  k.data = c.chain_pem;
  k.subject = c.cert.subject;
  k.issuer = c.cert.issuer;
  k.chain_trusted = c.chain_trusted;
  return k;
}

}  // namespace

std::string smime_blob_ad(const std::string& fingerprint) {
  return "webmailkey smime private key v1|" + fingerprint;
}

SmimeEngine::SmimeEngine(store::Db& db, const util::Clock& clock) : db_(db), clock_(clock) {}

Status SmimeEngine::prepare(const KeyInfo&) {
  return {};  // the key and its chain are read from the row at each use
}

Status SmimeEngine::erase(const KeyInfo&) {
  return {};  // all of it is in the row
}

void SmimeEngine::forget(const std::string&) {}

Result<SmimeEngine::OpenedKey> SmimeEngine::open_key(const KeyInfo& key,
                                                     const util::SecretBuffer& key_secret) {
  auto st =
      db_.prepare("SELECT private_blob, certificate FROM keys WHERE id = ? AND fingerprint = ?");
  st.bind_all(key.id, key.fingerprint);
  if (!st.step() || st.column_is_null(0))
    return make_error(Errc::not_found, "key " + key.fingerprint + " is gone");
  auto der = crypto::open(key_secret, st.column_blob(0), smime_blob_ad(key.fingerprint));
  if (!der)
    return make_error(Errc::crypto, "the key secret does not open S/MIME key " + key.fingerprint);
  auto blob = st.column_blob(1);
  std::string chain(blob.begin(), blob.end());
  st.reset();  // no read transaction held while the key works (KeyStore::unlock says why)
  return OpenedKey{std::move(der).value(), std::move(chain)};
}

Status SmimeEngine::check_key_secret(const KeyInfo& key, const util::SecretBuffer& key_secret) {
  auto opened = open_key(key, key_secret);
  if (!opened)
    return opened.error();
  return {};
}

Result<DecryptResult> SmimeEngine::decrypt(const KeyInfo& key, const util::SecretBuffer& key_secret,
                                           std::string_view ciphertext) {
  auto opened = open_key(key, key_secret);
  if (!opened)
    return opened.error();
  return detail::decrypt(opened->der, opened->chain, ciphertext);
}

Result<SignResult> SmimeEngine::sign(const KeyInfo& key, const util::SecretBuffer& key_secret,
                                     std::string_view data) {
  auto opened = open_key(key, key_secret);
  if (!opened)
    return opened.error();
  return detail::sign(opened->der, opened->chain, data);
}

Result<std::string> SmimeEngine::export_secret(const KeyInfo& key,
                                               const util::SecretBuffer& key_secret,
                                               const util::SecretBuffer& export_passphrase) {
  auto opened = open_key(key, key_secret);
  if (!opened)
    return opened.error();
  return detail::export_pkcs12(opened->der, opened->chain, export_passphrase);
}

Result<VerifyResult> SmimeEngine::verify(std::string_view signed_data, std::string_view signature) {
  return detail::verify(signed_data, signature);
}

Result<std::string> SmimeEngine::encrypt(const std::vector<std::string>& recipient_keys,
                                         std::string_view plaintext, SmimeCipher cipher) {
  return detail::encrypt(recipient_keys, plaintext, cipher);
}

Result<std::vector<PublicKey>> SmimeEngine::read_public(std::string_view data) {
  auto cert = parse_public_certificate(data);
  if (!cert)
    return cert.error();
  return std::vector<PublicKey>{public_of(*cert, clock_.now())};
}

Result<std::vector<PublicKey>> SmimeEngine::import_public(std::string_view data) {
  return read_public(data);  // certificates need no home: contact_keys keeps them
}

}  // namespace wmk::keys::detail

#pragma once
// KeyStore: custody of users' OpenPGP and S/MIME private keys (docs/security.md,
// "Key custody"). Each key has a random 256-bit key secret; the database keeps it
// only wrapped (AES-256-GCM) under a KEK that Argon2id derives from the key
// passphrase. The key secret opens the private key: for OpenPGP it is gpg-agent's
// passphrase for the key in the GnuPG home (hex), for S/MIME the AEAD key of the
// stored PKCS#8. The KDF runs once per unlock; every later operation costs
// milliseconds. Every key operation is audited. The store holds every key's material
// (OpenPGP: gpg-agent's key files, still under the key secret); the GnuPG home is a
// cache of it that each node fills before a key's use (detail::HomeCache).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.h"
#include "core/keys/key_audit.h"
#include "core/keys/types.h"
#include "core/store/db.h"
#include "core/store/purge.h"
#include "core/util/clock.h"
#include "core/util/fs.h"
#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::keys {

namespace detail {
class OpenPgp;
class HomeCache;
class KeyEngine;
class OpenPgpEngine;
class SmimeEngine;
}  // namespace detail

struct GenerateOptions {
  KeyType type = KeyType::openpgp;
  // The address the key is for; default: the user's primary address.
  std::optional<std::string> email;
  // OpenPGP: "ed25519" (ed25519 + cv25519, the default) or "rsa3072".
  // S/MIME: "rsa3072" (the default) or "p256".
  std::string algorithm;
  // OpenPGP: days until the key expires, nullopt = never (the default).
  // S/MIME: days the self-signed certificate is valid, default 365.
  std::optional<std::int64_t> valid_days;
  // S/MIME: also make a certificate signing request for a real CA.
  bool want_csr = false;
};

struct Generated {
  KeyInfo key;
  std::string csr_pem;  // S/MIME with want_csr only
};

class KeyStore {
 public:
  // Works on the store db (tables keys, key_emails; reads users); reads from config
  // the data directory (keys.lock, the scratch homes in tmp/, the GnuPG home), the KDF
  // cost and key_passphrase_min_length; clock dates keys and audit rows. All three
  // must outlive the KeyStore (an app::App holds them: KeyStore(app.db, app.config,
  // *app.clock)). actor is recorded in every audit row.
  KeyStore(store::Db& db, const config::Config& config, const util::Clock& clock,
           Actor actor = Actor::cli());
  ~KeyStore();
  KeyStore(KeyStore&&) noexcept;
  KeyStore& operator=(KeyStore&&) = delete;
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  // Creates a key for login, protected by passphrase. Errc::not_found for an unknown
  // login, Errc::invalid_argument for an address that is not the user's, a short
  // passphrase or an unknown algorithm.
  Result<Generated> generate(const std::string& login, const GenerateOptions& options,
                             const util::SecretBuffer& passphrase);

  // Imports an OpenPGP secret key (armored or binary, as `gpg --export-secret-keys`
  // writes it) protected by file_passphrase (empty if unprotected), and protects it
  // here by passphrase. The key serves the user's addresses among its user ids, and
  // email if given. Errc::wrong_passphrase if file_passphrase does not open it,
  // Errc::already_exists if held already, Errc::invalid_argument if the data holds
  // no secret key or no address of the user; nothing is kept on failure.
  Result<KeyInfo> import_openpgp(const std::string& login, std::string_view key_data,
                                 const util::SecretBuffer& file_passphrase,
                                 const util::SecretBuffer& passphrase,
                                 const std::optional<std::string>& email = std::nullopt);

  // Imports an S/MIME key with its certificate chain from PKCS#12 (DER) or PEM,
  // opened with file_passphrase, protected here by passphrase. Errors as
  // import_openpgp; Errc::corrupt for a damaged or truncated file.
  Result<KeyInfo> import_smime(const std::string& login, std::string_view key_data,
                               const util::SecretBuffer& file_passphrase,
                               const util::SecretBuffer& passphrase,
                               const std::optional<std::string>& email = std::nullopt);

  // Every key, or login's keys (Errc::not_found for an unknown login).
  Result<std::vector<KeyInfo>> list(const std::optional<std::string>& login = std::nullopt);

  // The key whose fingerprint is, or starts with, fingerprint_or_prefix (8 or more
  // hex digits, any case; spaces, colons and 0x ignored). Errc::not_found if none,
  // Errc::invalid_argument if it is not such a prefix or, listing the candidates, if
  // it matches several keys.
  Result<KeyInfo> find(const std::string& fingerprint_or_prefix);

  // The key with this database id (as grants and other tables refer to it).
  // Errc::not_found if there is none.
  Result<KeyInfo> find_by_id(std::int64_t id);

  // The default key of this type for an address. Errc::not_found if none.
  Result<KeyInfo> find_default(const std::string& email, KeyType type);

  // OpenPGP: the armored public key. S/MIME: the PEM certificate chain, leaf first.
  Result<std::string> export_public(const KeyInfo& key);

  // The Autocrypt keydata (binary OpenPGP) of the OpenPGP key for address: primary
  // key, encryption subkeys and the user ids for address, self-signatures only
  // (detail::OpenPgp::autocrypt_key). Errc::invalid_argument for an S/MIME key or an
  // address the key does not serve; Errc::revoked / Errc::expired for such a key;
  // Errc::not_found as autocrypt_key.
  Result<std::string> export_autocrypt(const KeyInfo& key, const std::string& address);

  // The private key protected under export_passphrase: OpenPGP armored (as gpg
  // exports it), S/MIME as PKCS#12 (DER). Needs the key passphrase.
  Result<std::string> export_secret(const KeyInfo& key, const util::SecretBuffer& passphrase,
                                    const util::SecretBuffer& export_passphrase);

  // Re-wraps the key secret under a KEK from new_passphrase, in one UPDATE: a crash
  // leaves the old or the new protection, never neither. Errc::wrong_passphrase,
  // Errc::conflict if it changed concurrently, Errc::invalid_argument if too short.
  Status change_passphrase(const KeyInfo& key, const util::SecretBuffer& old_passphrase,
                           const util::SecretBuffer& new_passphrase);

  // Deletes the key here and, for OpenPGP, its secret and public key from the GnuPG
  // home (only its secret when a correspondent's directory, core/contacts, holds the
  // same public key). Another key of the user for the same address becomes its default.
  Status remove(const KeyInfo& key);

  // Runs the KDF and opens the key secret. Errc::wrong_passphrase, Errc::revoked,
  // Errc::expired (an S/MIME certificate not valid yet), Errc::not_found (deleted
  // meanwhile). A key past its expiry still unlocks: it decrypts, but never signs.
  Result<UnlockedKey> unlock(const KeyInfo& key, const util::SecretBuffer& passphrase);

  // An UnlockedKey from a key secret kept elsewhere (a grant). Errors as unlock();
  // Errc::crypto if it does not open the S/MIME key.
  Result<UnlockedKey> from_key_secret(const KeyInfo& key, util::SecretBuffer key_secret);

  // Decrypts an OpenPGP message (armored or binary) or an S/MIME message (DER, PEM,
  // or the whole application/pkcs7-mime entity) with the key. The plaintext comes
  // back only when decryption finished and, for OpenPGP, integrity was verified.
  // A key past its expiry still decrypts (DecryptResult::key_expired says so).
  // Errc::crypto (not for this key, no integrity protection, altered), Errc::revoked.
  Result<DecryptResult> decrypt(const UnlockedKey& key, std::string_view ciphertext);

  // A detached signature over data (the canonical MIME part): armored OpenPGP, or
  // DER CMS; with the micalg for multipart/signed. Errc::expired for a key or
  // certificate past its expiry (the message says so in the user's words),
  // Errc::revoked.
  Result<SignResult> sign(const UnlockedKey& key, std::string_view data);

  // Checks a detached signature over signed_data, or an opaque one (signed_data
  // empty). OpenPGP signers are looked up in the GnuPG home; S/MIME chains are
  // checked against the system trust store.
  Result<VerifyResult> verify(KeyType type, std::string_view signed_data,
                              std::string_view signature);

  // Encrypts plaintext to the recipients' public keys (armored OpenPGP keys, or
  // PEM/DER certificates). OpenPGP: armored output. S/MIME: DER CMS with cipher.
  Result<std::string> encrypt(KeyType type, const std::vector<std::string>& recipient_keys,
                              std::string_view plaintext,
                              SmimeCipher cipher = SmimeCipher::aes256_gcm);

  // What a key import, generation or delete killed midway leaves: OpenPGP secret keys
  // in the GnuPG home with no row here (their key secret died with that process, so
  // nothing opens them) and the import's scratch GnuPG homes; and what a contact
  // import or delete killed midway leaves: OpenPGP public keys with no row here and
  // none in contact_keys (they bind nothing). Returns them and, with
  // PurgeMode::remove, deletes them (secret keys audited as key.delete; a scratch
  // home's agent is stopped first). Errc::busy while a key is being imported or
  // generated (its key has no row yet, its scratch home is in use).
  struct Orphans {
    std::vector<std::string> keys;         // fingerprints
    std::vector<std::string> public_keys;  // fingerprints
    int scratch_homes = 0;
  };
  Result<Orphans> remove_orphans(store::PurgeMode mode);

  // Fills the stored secret key material of OpenPGP keys made before the store held it
  // (keys.openpgp_secret) from this node's GnuPG home. Returns the fingerprints filled
  // (with PurgeMode::dry_run: that would be filled) and those this home lacks too (the
  // node that made them must fill them).
  struct MaterialFill {
    std::vector<std::string> filled;
    std::vector<std::string> missing;
  };
  Result<MaterialFill> fill_key_material(store::PurgeMode mode);

  // Makes the GnuPG home hold the store's version of an OpenPGP key (docs/security.md,
  // "Key material in the store"): imported, replaced or, when the row is gone,
  // removed. Cheap once a process has seen that version. Errc::not_found if the row is
  // gone; Errc::disabled when neither the store nor this home has its material.
  Status ensure_in_home(const KeyInfo& key);

  // Held (shared) while a public key is in the GnuPG home before its contact_keys row
  // is committed, so that remove_orphans never takes it for a leftover; released when
  // the descriptor goes. Blocks while remove_orphans runs.
  Result<util::Fd> hold_key_changes();

  // ---- correspondents' public keys (core/contacts keeps which addresses they are for)

  // The public keys (type openpgp: armored or binary) or the certificate (type smime:
  // PEM or DER, leaf first) in data, read without storing anything. Errc::invalid_argument
  // for data holding a secret key or no key; nothing is kept.
  Result<std::vector<PublicKey>> read_public(KeyType type, std::string_view data);

  // Makes the public keys in data usable for verifying: OpenPGP keys are imported into
  // the server's GnuPG home, merged with what it holds (new subkeys, expiry,
  // revocations); certificates need nothing here. Returns them as now known (OpenPGP:
  // data is the merged armored key). Errors as read_public; nothing is imported when
  // any part is refused.
  Result<std::vector<PublicKey>> import_public(KeyType type, std::string_view data);

  // An OpenPGP public key as the GnuPG home holds it now. Errc::not_found if absent.
  Result<PublicKey> public_openpgp(const std::string& fingerprint);

  // Merges an OpenPGP public key as the store keeps it (armored) into the GnuPG home,
  // once per process for the same bytes, so that what the home says about it (e.g. a
  // revocation another node imported) is at least what the store says.
  Status cache_public_openpgp(std::string_view armored);

  // Removes an OpenPGP public key from the GnuPG home when nobody needs it any more:
  // never a key of this server's users (whose secret is there too). Missing is fine.
  Status remove_public_openpgp(const std::string& fingerprint);

 private:
  // The engine of a key technology (key_engine.h), made on first use and kept (the
  // OpenPGP one with its GPGME context).
  detail::KeyEngine& engine(KeyType type);
  detail::OpenPgpEngine& openpgp();
  // The OpenPGP engine's parts that generation, import, delete and the orphan sweep use.
  Status check_home();
  detail::OpenPgp& pgp();
  detail::HomeCache cache();
  Result<KeyInfo> load(std::int64_t id);
  Result<KeyInfo> store_new_key(std::int64_t user_id, const std::string& login, KeyType type,
                                const std::string& fingerprint, const std::string& algorithm,
                                std::int64_t created, std::optional<std::int64_t> expires,
                                bool revoked, const std::vector<std::string>& emails,
                                const util::SecretBuffer& key_secret,
                                const util::SecretBuffer& passphrase,
                                const std::vector<std::uint8_t>* private_blob,
                                const std::string* certificate, const std::string* public_blob,
                                const std::string* openpgp_secret = nullptr);
  // Errc::revoked, or Errc::expired for a certificate not valid yet; for signing
  // also Errc::expired past the key's expiry, in words for the user.
  enum class KeyUse { decrypt, sign };
  Status usable_for(const KeyInfo& key, KeyUse use);
  void audit(const KeyInfo& key, const char* event, const Status& outcome,
             std::string_view detail = {});
  void audit_raw(std::string_view login, const char* event, const Status& outcome,
                 std::string_view fingerprint, std::string_view detail);

  store::Db& db_;
  const config::Config& config_;
  const util::Clock& clock_;
  Actor actor_;
  std::unique_ptr<detail::OpenPgpEngine> openpgp_;
  std::unique_ptr<detail::SmimeEngine> smime_;
};

}  // namespace wmk::keys

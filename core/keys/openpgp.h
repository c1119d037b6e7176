#pragma once
// OpenPGP through GPGME against the server's GnuPG home. Internal to core/keys:
// KeyStore owns the database side, this owns the GnuPG side. Every private-key
// operation answers gpg-agent's loopback passphrase request with the hex of the
// key's 256-bit key secret, from a SecretBuffer, through GPGME's passphrase
// callback (a pipe): never argv, environment or a file.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/keys/types.h"
#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::keys::detail {

struct PgpKeyMeta {
  std::string fingerprint;  // uppercase hex of the primary key
  std::string algorithm;    // e.g. "ed25519/cv25519"
  std::int64_t created = 0;
  std::optional<std::int64_t> expires;
  bool revoked = false;
  bool expired = false;  // the primary key is past its expiry
  bool has_secret = false;
  bool can_encrypt = false;
  std::vector<std::string> user_ids;
  std::vector<std::string> emails;    // lowercased, from the user ids
  std::vector<std::string> keyids;    // 16 hex digits, primary first
  std::vector<std::string> keygrips;  // primary first; empty when not listed
};

enum class PgpAlgorithm { ed25519, rsa3072 };

// One key's protection state as gpg-agent reports it (KEYINFO).
struct AgentKeyState {
  std::string keygrip;
  bool cached = false;    // the agent holds its passphrase in its cache
  char protection = '-';  // 'P' protected, 'C' clear (unprotected), '-' unknown
};

class OpenPgp {
 public:
  // home: the GnuPG home (made by ensure_gnupg_home). scratch_dir: a private
  // directory for short-lived GnuPG homes (export, encrypt), removed after use.
  // The GPGME context for home is made on first use and kept for the whole process,
  // shared by every OpenPgp on the same home in the same thread: making one runs `gpg --version`,
  // which would double the cost of every operation, and a FastCGI worker must not pay it per
  // request. Each operation starts by resetting the context (contexts()).
  OpenPgp(std::string home, std::string scratch_dir);
  ~OpenPgp();
  OpenPgp(OpenPgp&&) noexcept;
  OpenPgp& operator=(OpenPgp&&) = delete;
  OpenPgp(const OpenPgp&) = delete;
  OpenPgp& operator=(const OpenPgp&) = delete;

  // Creates a primary key (sign, certify) and an encryption subkey for user_id,
  // protected under the key secret. expires_in: seconds from now, nullopt = never.
  Result<PgpKeyMeta> generate(const std::string& user_id, PgpAlgorithm algorithm,
                              std::optional<std::int64_t> expires_in,
                              const util::SecretBuffer& key_secret);

  // The keys in data (armored or binary) without importing them.
  // Errc::invalid_argument if data holds no OpenPGP key.
  Result<std::vector<PgpKeyMeta>> inspect(std::string_view data);

  // The key with this fingerprint in the home. Errc::not_found if absent.
  Result<PgpKeyMeta> find(const std::string& fingerprint);

  // Imports the one secret key in data, protected by file_passphrase (empty if the
  // file is unprotected), re-protected under the key secret. The work is staged in a
  // scratch home; only the key under the key secret enters this home, so a killed
  // import leaves nothing the file's passphrase opens. Errc::wrong_passphrase if
  // file_passphrase does not open it; on any failure the key is removed again.
  Result<PgpKeyMeta> import_secret(std::string_view data, const util::SecretBuffer& file_passphrase,
                                   const util::SecretBuffer& key_secret);

  // Imports the public keys in data into the home, where gpg merges them with what it
  // holds (new subkeys, user ids, expiry, revocations; only what the key's own
  // signatures make valid). Data holding any secret key is refused before anything is
  // imported (Errc::invalid_argument). Returns the keys as now merged.
  Result<std::vector<PgpKeyMeta>> import_public(std::string_view data);

  // The armored public key.
  Result<std::string> export_public(const std::string& fingerprint);

  // The Autocrypt keydata (binary) of the key fingerprint for address: the primary
  // key, its valid encryption subkeys and the user ids for address only, each with its
  // self-signatures only. When the home's copy is already that (one user id, for
  // address; encryption subkeys only), gpg's export-minimal from the home; else
  // public_key (the same key) goes through gpg's export filters in a temporary home
  // (the server's home is not touched). Errc::not_found if no valid user id carries
  // address or no subkey can encrypt; Errc::invalid_argument if public_key is not
  // that one public key.
  Result<std::string> autocrypt_key(const std::string& fingerprint, std::string_view public_key,
                                    const std::string& address);

  // The armored secret key re-protected under export_passphrase (with gpg's calibrated
  // S2K), made in a temporary GnuPG home so that neither the unprotected key nor the
  // export passphrase touches the server's home.
  Result<std::string> export_secret(const std::string& fingerprint,
                                    const util::SecretBuffer& key_secret,
                                    const util::SecretBuffer& export_passphrase);

  // The fingerprints of every key with a secret part in the home.
  Result<std::vector<std::string>> secret_fingerprints();
  // The fingerprints of every key in the home (public part; with or without a secret).
  Result<std::vector<std::string>> all_fingerprints();

  // Deletes the secret and the public key. Errc::not_found if absent.
  Status remove(const std::string& fingerprint);

  // Deletes only the secret parts (gpg-agent's DELETE_KEY for each keygrip): the
  // public key stays in the home, e.g. for a correspondent who holds it too.
  // Errc::not_found if the key is absent.
  Status remove_secret(const std::string& fingerprint);

  // Decrypts with the key's secret subkeys only; plaintext comes back only after gpg
  // reported success and integrity protection. Errc::crypto for ciphertext without
  // integrity protection or not encrypted to this key; Errc::corrupt for damaged data.
  Result<DecryptResult> decrypt(const std::string& fingerprint,
                                const util::SecretBuffer& key_secret, std::string_view ciphertext);

  // A detached, armored signature over data made with this key.
  Result<SignResult> sign(const std::string& fingerprint, const util::SecretBuffer& key_secret,
                          std::string_view data);

  // Checks a detached signature over signed_data, or an opaque/clearsigned message
  // when signed_data is empty, against the public keys in the home.
  Result<VerifyResult> verify(std::string_view signed_data, std::string_view signature);

  // Encrypts plaintext (armored output) to the given armored public keys, in a
  // temporary home. Errc::invalid_argument if a key is unusable for encryption.
  Result<std::string> encrypt(const std::vector<std::string>& recipient_keys,
                              std::string_view plaintext);

  // gpg-agent's view of the key's secret parts (for checks and tests).
  Result<std::vector<AgentKeyState>> agent_state(const std::string& fingerprint);

  const std::string& home() const { return home_; }

 private:
  struct State;
  Result<std::vector<std::string>> list_fingerprints(bool secret_only);
  // The home's context, with no passphrase callback, signers, armor or text mode left
  // from an earlier operation (and a second one, made on demand, for key lookups
  // while an operation's result is still needed).
  Result<State*> contexts();
  std::string home_;
  std::string scratch_dir_;
  State* state_ = nullptr;  // owned by the process-wide table of contexts by home
};

}  // namespace wmk::keys::detail

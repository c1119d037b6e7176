#pragma once
// The values that key custody hands out: what a key is (KeyInfo), an unlocked key
// (UnlockedKey), and the structured results of decrypt, sign and verify. No GPGME or
// OpenSSL types appear here.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::keys {

enum class KeyType { openpgp, smime };

// "openpgp" or "smime", as stored and as the CLI spells it.
const char* key_type_name(KeyType type);
// Parses key_type_name()'s spelling; nullopt for anything else.
std::optional<KeyType> parse_key_type(std::string_view text);

// Shortest fingerprint prefix that names a key.
inline constexpr std::size_t kMinFingerprintPrefix = 8;

// A fingerprint or prefix as typed (any case; spaces, colons and a leading 0x
// ignored) in the stored form: uppercase hex. Errc::invalid_argument for anything but
// hex digits or fewer than kMinFingerprintPrefix of them.
Result<std::string> normalize_fingerprint_prefix(std::string_view text);

// How people read a fingerprint on the web pages: groups of four hex digits, e.g.
// "7449 E678 CD55 2935 …". max_digits 0 shows all of it; otherwise the first
// max_digits and an ellipsis. (The CLI prints it whole and ungrouped, to be pasted.)
std::string group_fingerprint(std::string_view fingerprint, std::size_t max_digits = 0);

// What `key show` prints. Never holds secret material.
struct KeyInfo {
  std::int64_t id = 0;
  std::string fingerprint;  // uppercase hex
  KeyType type = KeyType::openpgp;
  std::int64_t user_id = 0;
  std::string login;
  std::string algorithm;  // "ed25519/cv25519", "rsa3072/rsa3072", "RSA-3072", "EC P-256"
  std::int64_t created = 0;
  std::optional<std::int64_t> expires;  // nullopt: never
  bool revoked = false;
  std::string kdf_params;                // "m=KiB,t=N,p=N" of the passphrase KDF
  std::vector<std::string> emails;       // the user's addresses this key serves
  std::vector<std::string> default_for;  // the subset for which it is the default key
  // S/MIME only, from the leaf certificate.
  std::string subject;
  std::string issuer;
  std::string serial;  // hex
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
};

// A correspondent's public key or certificate as the key code reads it. Its user ids
// and addresses are what the key's owner wrote: they bind nothing (core/contacts keeps
// the bindings). Never holds secret material.
struct PublicKey {
  KeyType type = KeyType::openpgp;
  std::string fingerprint;  // uppercase hex: OpenPGP v4 primary key, S/MIME SHA-256 of the leaf
  std::string algorithm;
  std::int64_t created = 0;             // OpenPGP key creation, S/MIME notBefore
  std::optional<std::int64_t> expires;  // nullopt: never; S/MIME notAfter
  bool revoked = false;
  bool can_encrypt = false;  // OpenPGP: a usable (not expired or revoked) encryption subkey
  std::vector<std::string> user_ids;  // OpenPGP user ids; S/MIME: the subject
  std::vector<std::string> emails;    // lowercased, from the user ids / the certificate
  // OpenPGP: the armored public key as the GnuPG home now holds it (merged).
  // S/MIME: the PEM certificates, leaf first.
  std::string data;
  // S/MIME only.
  std::string subject;
  std::string issuer;
  bool chain_trusted = false;  // the leaf chains to the system trust store for S/MIME
};

// True if key has an expiry (OpenPGP key expiry, S/MIME certificate notAfter) at or
// before now.
bool key_expired(const KeyInfo& key, std::int64_t now);

// A key whose passphrase was checked: its KeyInfo and the 256-bit key secret that
// opens its private key. Move-only; the secret lives in locked, wiped memory.
class UnlockedKey {
 public:
  UnlockedKey(KeyInfo info, util::SecretBuffer key_secret)
      : info_(std::move(info)), key_secret_(std::move(key_secret)) {}
  const KeyInfo& info() const { return info_; }
  // The key secret, e.g. for a grant to wrap under its own secret.
  const util::SecretBuffer& key_secret() const { return key_secret_; }

 private:
  KeyInfo info_;
  util::SecretBuffer key_secret_;
};

enum class SignatureStatus {
  good,           // the signature is mathematically valid
  bad,            // the data or the signature was altered
  key_expired,    // valid, but made by a key that has expired
  key_revoked,    // valid, but made by a key that has been revoked
  no_public_key,  // the signer's key is unknown here: cannot check
  error,          // could not be checked (malformed, unsupported algorithm)
};

// "good", "bad", ... for JSON and logs.
const char* signature_status_name(SignatureStatus status);

struct SignatureInfo {
  SignatureStatus status = SignatureStatus::error;
  // The signer is certified: OpenPGP validity full or ultimate, or an S/MIME chain
  // that ends at a trusted root. A good signature may be untrusted.
  bool trusted = false;
  std::string fingerprint;          // of the signing key or certificate
  std::string signer;               // primary user id, or the certificate subject
  std::vector<std::string> emails;  // the signer's addresses, to match against From
  std::int64_t created = 0;         // signature time, 0 if unknown
  std::string detail;               // what the engine said, for display
  // S/MIME: the signer's certificate as PEM, leaf first, then the chain that was
  // verified (when it chained to the trust store). Empty for OpenPGP.
  std::string certificate;
};

// Words that KeyStore::decrypt's Errc::crypto messages contain, one per reason a
// decryption fails, so that a reader can say why (reader::failure_of) from the same
// constants the messages are made of.
inline constexpr std::string_view kNoIntegrityWords = "not integrity protected";
inline constexpr std::string_view kNotForKeyWords = "not encrypted to";
inline constexpr std::string_view kDamagedWords = "damaged or altered";

struct DecryptResult {
  util::SecretBuffer plaintext;  // released only after decryption and integrity check passed
  // OpenPGP: MDC or AEAD (always true: anything else is refused). S/MIME: true for
  // AuthEnvelopedData (AES-GCM), false for EnvelopedData (CBC, no integrity).
  bool integrity_protected = false;
  bool is_mime = false;   // OpenPGP literal data marked as MIME (RFC 4880 'm' / 'u')
  std::string file_name;  // OpenPGP literal data file name, may be empty
  std::string cipher;     // "AES256.CFB", "authEnvelopedData", ...
  std::vector<SignatureInfo> signatures;  // OpenPGP signed-and-encrypted only
  // The key (S/MIME: its certificate) is past its expiry: it still decrypts, but it
  // can no longer sign, and the page says so.
  bool key_expired = false;
};

struct SignResult {
  // OpenPGP: an ASCII-armored detached signature. S/MIME: a DER detached CMS
  // SignedData (the body of application/pkcs7-signature).
  std::string signature;
  // The multipart/signed micalg parameter: "pgp-sha256" or "sha-256".
  std::string micalg;
};

struct VerifyResult {
  std::vector<SignatureInfo> signatures;
  // For an opaque (non-detached) signature, the signed content.
  std::string content;
};

// Content encryption for S/MIME encrypt: AES-256-GCM AuthEnvelopedData (RFC 5083,
// integrity-protected, the default) or AES-256-CBC EnvelopedData for old clients.
enum class SmimeCipher { aes256_gcm, aes256_cbc };

}  // namespace wmk::keys

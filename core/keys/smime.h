#pragma once
// S/MIME through OpenSSL 3 (CMS). Internal to core/keys: KeyStore stores what these
// functions produce and hands them the private key (PKCS#8 DER) only after opening
// it with the key secret. The private key is only ever in SecretBuffers and in
// OpenSSL's own key objects, which free their secrets with BN_clear_free.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/keys/types.h"
#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::keys::detail {

// What the certificate says, for KeyInfo and `key show`.
struct CertInfo {
  std::string fingerprint;  // SHA-256 of the leaf certificate's DER, uppercase hex
  std::string algorithm;    // "RSA-3072", "EC P-256"
  std::string subject;      // RFC 2253
  std::string issuer;
  std::string serial;  // hex
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  std::vector<std::string> emails;  // lowercased; subjectAltName and emailAddress
};

// A private key with its certificate chain, ready to be stored.
struct SmimeMaterial {
  CertInfo cert;
  std::string chain_pem;         // leaf first
  util::SecretBuffer pkcs8_der;  // the private key, unprotected: seal it at once
  std::string csr_pem;           // generate only, when asked for
};

enum class SmimeAlgorithm { rsa3072, ec_p256 };
enum class WithCsr { no, yes };

// Parses a PKCS#12 (DER) protected by password. Errc::corrupt if it is not PKCS#12
// or truncated, Errc::wrong_passphrase if the password is wrong,
// Errc::invalid_argument if it lacks a key or a matching certificate.
Result<SmimeMaterial> parse_pkcs12(std::string_view der, const util::SecretBuffer& password);

// Parses PEM text holding a private key (plain, PKCS#8 or encrypted PKCS#8, opened
// with passphrase) and its certificate chain, in any order.
Result<SmimeMaterial> parse_pem(std::string_view pem, const util::SecretBuffer& passphrase);

// True if data looks like PEM text rather than DER.
bool looks_like_pem(std::string_view data);

// A new key with a self-signed certificate for email (testing and demos) valid from
// now for days, and with a CSR for a real CA when asked.
Result<SmimeMaterial> generate(const std::string& name, const std::string& email,
                               SmimeAlgorithm algorithm, std::int64_t now, std::int64_t days,
                               WithCsr csr);

// A correspondent's certificate (and any chain after it) from PEM or DER, with no
// private key: PEM holding a PRIVATE KEY block or a PKCS#12 file is refused
// (Errc::invalid_argument, nothing of it kept). The leaf is the first certificate.
struct PublicCertificate {
  CertInfo cert;
  std::string chain_pem;       // leaf first
  bool chain_trusted = false;  // chains to the system trust store, purpose S/MIME, valid at now
};
Result<PublicCertificate> parse_public_certificate(std::string_view data);

// Reads the leaf certificate (the first) of a PEM chain. Errc::corrupt if unreadable.
Result<CertInfo> cert_info(std::string_view chain_pem);

// Decrypts a CMS EnvelopedData or AuthEnvelopedData (DER, PEM, or a whole S/MIME
// application/pkcs7-mime entity) with the key. Errc::crypto if it is not for this
// key or fails to authenticate; Errc::invalid_argument if it is not encrypted CMS.
Result<DecryptResult> decrypt(const util::SecretBuffer& pkcs8_der, std::string_view chain_pem,
                              std::string_view message);

// A detached CMS SignedData (DER) over data, SHA-256, with the chain included.
Result<SignResult> sign(const util::SecretBuffer& pkcs8_der, std::string_view chain_pem,
                        std::string_view data);

// Checks a detached signature (DER, PEM or S/MIME) over signed_data, or an opaque
// one when signed_data is empty; chains are checked against the system trust store.
Result<VerifyResult> verify(std::string_view signed_data, std::string_view signature);

// Encrypts to the recipients' certificates (PEM or DER), DER output.
Result<std::string> encrypt(const std::vector<std::string>& recipient_certs,
                            std::string_view plaintext, SmimeCipher cipher);

// The key and chain as PKCS#12 (DER) under password (AES-256-CBC, PBKDF2).
Result<std::string> export_pkcs12(const util::SecretBuffer& pkcs8_der, std::string_view chain_pem,
                                  const util::SecretBuffer& password);

}  // namespace wmk::keys::detail

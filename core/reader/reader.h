#pragma once
// Reading protected mail: from a message in the user's own mailbox and an unlocked
// key to a structured view that the page layer can show safely (docs/security.md,
// "Reading protected mail").
//
// The rules this code keeps (DESIGN §5, EFAIL):
// - OpenPGP ciphertext without integrity protection is refused by the key code before
//   any plaintext is released (Errc::crypto); nothing of it is shown.
// - S/MIME EnvelopedData (AES-CBC) has no integrity protection: by default
//   (ReadOptions::smime_unprotected = text) its segment is plain text only (an HTML
//   body becomes its text rendering) with Segment::Integrity::none, and its
//   attachments are listed but never released; with `refuse` it is Errc::crypto.
// - Every encrypted part of a message is decrypted, each its own segment.
// - Decrypted and plaintext parts are never merged: a message whose encrypted part
//   sits beside plain parts comes back as separate Segments, each marked plain or
//   decrypted, in message order.
// - Everything said about signatures comes from GPGME's or CMS's structured results
//   (KeyStore::decrypt / KeyStore::verify), never from headers, MIME structure alone,
//   HTML or engine messages. Only SignatureState::valid may be shown as a valid
//   signature. A signer is the sender only when a binding source (core/bindings)
//   has verified the From address for the signing key; the key's own user ids never
//   suffice.
// - HTML is carried as HTML source with a flag; the page sanitizes it (no remote
//   content) as its last step.
// - Nothing decrypted is stored or cached: every call decrypts again, and the view
//   lives only as long as the caller keeps it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/auth/users.h"
#include "core/bindings/bindings.h"
#include "core/config/config.h"
#include "core/keys/keystore.h"
#include "core/keys/types.h"
#include "core/mail/mime.h"
#include "core/util/result.h"

namespace wmk::reader {

// One encrypted part of a message.
struct EncryptedPart {
  // pgp_mime, pgp_inline, smime_enveloped or smime_auth_enveloped.
  mail::Protection protection = mail::Protection::none;
  std::string part_id;  // the encrypted part in the message
  std::string payload;  // the ciphertext (mail::encrypted_payloads' bytes)
};

// What inspect() finds in a message: how it is encrypted and what opens it.
struct ProtectedMessage {
  mail::Protection protection = mail::Protection::none;  // of the first encrypted part
  keys::KeyType key_type = keys::KeyType::openpgp;       // the kind of key that decrypts it
  std::vector<EncryptedPart> parts;                      // every encrypted part, message order
};

// Where an attachment's bytes come from, i.e. which function serves a download.
enum class PartSource {
  message,         // the stored message: mail::part_content(raw, id)
  decrypted,       // the decrypted entity: reader::decrypted_part(store, key, message, id);
                   // id is "ENCRYPTED-PART:INNER-PART", e.g. "2:1.2"
  signed_content,  // inside an opaque S/MIME signature: reader::signed_part(store, message, id)
};

struct Attachment {
  std::string id;  // part id within its source (see PartSource)
  PartSource source = PartSource::message;
  std::string filename;      // safe to show and offer; "part-ID" when the sender gave none
  std::string sniffed_type;  // what libmagic says the bytes are; serve this type
  std::uint64_t size = 0;    // decoded bytes
};

// A key that decrypted content carries: an application/pgp-keys part, read during the
// one decryption so that the page can offer it for the sender without decrypting again.
struct CarriedKey {
  std::string attachment_id;  // as Attachment::id: "ENCRYPTED-PART:INNER-PART"
  std::string data;           // the part's bytes (what it holds is checked on import)
};

// One separately shown piece of a message. A page draws each segment in its own
// frame with its kind visible, and never joins the text of two segments.
struct Segment {
  enum class Kind { plain, decrypted };
  Kind kind = Kind::plain;
  // What protects a segment's text from change on its way: nothing it claims
  // (not_encrypted: it came in the clear), the ciphertext's integrity check
  // (checked: OpenPGP MDC/AEAD, S/MIME AuthEnvelopedData), or nothing although it was
  // encrypted (none: S/MIME EnvelopedData, CBC, which an attacker can alter blockwise).
  // A `none` segment is always plain text and its attachments are never released.
  enum class Integrity { not_encrypted, checked, none };
  Integrity integrity = Integrity::not_encrypted;
  // The part of the stored message this segment comes from: a plain leaf part, or the
  // encrypted payload part for the decrypted segment.
  std::string part_id;
  std::string text;  // UTF-8, LF line ends; may be empty (attachments only)
  // html: text is untrusted HTML source that the page must sanitize; plain: text.
  mail::BodyFormat format = mail::BodyFormat::none;
  std::vector<Attachment> attachments;
  // Decrypted segments whose integrity was checked: the keys their content carries.
  // Always empty for Integrity::none (its bytes could have been altered, EFAIL).
  std::vector<CarriedKey> keys;
};

// What the engine said about one signature.
enum class VerdictStatus {
  good,         // mathematically valid, by a known signer (S/MIME: a trusted chain)
  bad,          // the signed data or the signature was altered
  unknown_key,  // the signer's key is not in the server's GnuPG home, or the
                // S/MIME certificate does not chain to a trusted root
  expired_key,  // valid, but the signing key or certificate has expired
  revoked_key,  // valid, but the signing key or certificate is revoked
  error,        // could not be checked (malformed, unsupported)
};

struct SignatureVerdict {
  VerdictStatus status = VerdictStatus::error;
  keys::KeyType type = keys::KeyType::openpgp;
  std::string signer_fingerprint;          // primary key / certificate, uppercase hex; may be empty
  std::string signer;                      // primary user id, or the certificate subject
  std::vector<std::string> signer_emails;  // the addresses on the key (its owner's claim)
  bool trusted = false;  // OpenPGP validity full/ultimate, or S/MIME trusted chain
  // A binding source has verified the From address for the signing key (binding says
  // which); only then is the signer "the sender".
  bool matches_from = false;
  std::optional<bindings::Binding> binding;
  // The key itself names the From address (a user id or certificate address): a
  // claim of its owner, never proof.
  bool names_from = false;
  // The signature covers the whole displayed top-level part: it signs the entire
  // decrypted entity (or message) and no plain segment is shown beside it.
  bool covers_whole = false;
  std::int64_t created = 0;  // signature time, 0 if unknown
  std::string detail;        // the engine's words, for a tooltip; never a claim
  // S/MIME: the signer's certificate (PEM, leaf first, with the verified chain), as
  // keys::SignatureInfo::certificate; empty for OpenPGP.
  std::string certificate;
};

// The overall signature state of a view. Only `valid` may be shown as a valid
// signature; every other state must be shown as not (fully) verified.
enum class SignatureState {
  none,               // no signature
  valid,              // a good signature covering the whole displayed part by the From address
  partially_signed,   // good, but it covers only part of what is displayed
  signer_mismatch,    // good, but the signer is not the From address
  sender_unverified,  // good, the key names the From address, but no binding source
                      // has verified that address for the key
  bad,                // a signature is bad
  unknown_key,        // the signer cannot be checked or identified
  expired,            // made by an expired key or certificate
  revoked,            // made by a revoked key or certificate
  error,              // a signature could not be checked
};

// "good", "bad", ... and "none", "valid", ... (stable; for templates, JSON, logs).
const char* verdict_status_name(VerdictStatus status);
const char* signature_state_name(SignatureState state);

// A message as the page may show it.
struct MessageView {
  mail::Protection protection = mail::Protection::none;
  std::vector<Segment> segments;  // message order
  std::vector<SignatureVerdict> signatures;
  SignatureState signature_state = SignatureState::none;
};

struct DecryptedView : MessageView {
  std::string key_fingerprint;  // the key that decrypted it
  // "AES256.CFB", "authEnvelopedData", "envelopedData"; several parts with different
  // ciphers: each once, joined by ", ".
  std::string cipher;
  // True only when every decrypted segment is Integrity::checked (OpenPGP MDC/AEAD,
  // S/MIME AuthEnvelopedData). S/MIME EnvelopedData (CBC) has none: false, and the
  // page must say so on that segment.
  bool integrity_protected = false;
  // The key (its certificate) is past its expiry: it still decrypted, but can no
  // longer sign; the page says so.
  bool key_expired = false;
};

// How decrypt() treats what it may not show as usual.
struct ReadOptions {
  config::SmimeUnprotected smime_unprotected = config::SmimeUnprotected::text;
};

// The options the configuration sets (smime_unprotected).
ReadOptions read_options(const config::Config& config);

// Why a message could not be decrypted, in the words the page and the reply form use
// (docs/http.md): each says only what is true of this failure.
enum class Failure {
  no_integrity,       // refused: no integrity protection (OpenPGP without MDC; S/MIME
                      // CBC with smime_unprotected = refuse)
  not_for_your_keys,  // not encrypted to the user's key, or the user has no key of its kind
  damaged,            // the ciphertext or the message structure is damaged or was altered
  key_locked,         // the key is not unlocked in this session (set by the web flow)
  key_elsewhere,      // the key is unlocked in another session (set by the web flow)
  other,              // anything else (the error's own words say what)
};

// "no-integrity", "not-for-your-keys", "damaged", "key-locked", "key-elsewhere", "other"
// (stable; for data attributes and tests).
const char* failure_name(Failure f);
// One sentence for the user: "The message is not integrity protected, ...".
std::string failure_sentence(Failure f);
// The reason of an error from decrypt(), choose_key() or decrypted_part().
Failure failure_of(const Error& e);

// How the message is encrypted, its ciphertexts, and which key type opens them.
// Errc::not_found if nothing in it is encrypted (signed-only messages included: see
// verify_signed), Errc::corrupt if a multipart/encrypted lacks its payload,
// Errc::crypto if its encrypted parts need both an OpenPGP and an S/MIME key.
//
// Every function here reads the stored message from its one parse (mail::Message),
// never from the raw bytes again; each decrypted entity is parsed once as well.
Result<ProtectedMessage> inspect(const mail::Message& message);

// The user's own key that should decrypt the message: the default key of the needed
// type for the first To/Cc address that is one of the user's, else the default key for
// the user's primary address, else any key of the user of that type. Never another
// user's key. Errc::not_found ("you have no OpenPGP key") if the user has none.
Result<keys::KeyInfo> choose_key(keys::KeyStore& store, const auth::User& user,
                                 const ProtectedMessage& message,
                                 const mail::ParsedMessage& parsed);

// Decrypts every encrypted part of the message with key (each audited as key.decrypt
// by KeyStore) and builds the view: plain segments and one decrypted segment per
// encrypted part, in message order, and the signature verdicts (the sender as
// bindings knows it) with their overall state. All or nothing: if one part fails,
// the call fails. Errc::not_found if the message is not encrypted,
// Errc::invalid_argument if it needs the other key type, Errc::crypto if a part is
// not for this key, has no integrity protection (OpenPGP; S/MIME CBC with
// smime_unprotected = refuse) or was altered, Errc::revoked for a revoked key,
// Errc::corrupt if a multipart/encrypted lacks its payload.
Result<DecryptedView> decrypt(keys::KeyStore& store, const keys::UnlockedKey& key,
                              const mail::Message& message, const bindings::Lookup& bindings,
                              const ReadOptions& options = {});

// decrypt(), and one attachment of its decrypted content (an Attachment with
// PartSource::decrypted, id "ENCRYPTED-PART:INNER-PART"), both from the one
// decryption. The part is released only if the view offers it: Errc::not_found
// otherwise, Errc::crypto for a part without integrity protection, and the errors of
// decrypt().
struct DecryptedWithPart {
  DecryptedView view;
  mail::PartContent part;
};
Result<DecryptedWithPart> decrypt_part(keys::KeyStore& store, const keys::UnlockedKey& key,
                                       const mail::Message& message,
                                       const bindings::Lookup& bindings, std::string_view part_id,
                                       const ReadOptions& options = {});

// decrypt_part()'s part alone, with no binding source (for tools and tests).
// Errors as decrypt(), plus Errc::invalid_argument for a malformed id,
// Errc::not_found if there is no such part, and Errc::crypto if the encrypted part
// has no integrity protection (S/MIME CBC: its attachments are never released).
Result<mail::PartContent> decrypted_part(keys::KeyStore& store, const keys::UnlockedKey& key,
                                         const mail::Message& message, std::string_view part_id);

// Checks the signatures of a message that is signed but not encrypted (multipart/signed
// PGP or S/MIME at any depth, opaque S/MIME signed-data, inline clearsigned PGP).
// Needs no private key. Errc::not_found if it is not signed, Errc::invalid_argument if
// it is encrypted (use decrypt).
Result<MessageView> verify_signed(keys::KeyStore& store, const mail::Message& message,
                                  const bindings::Lookup& bindings);

// One part inside an opaque S/MIME signature (an Attachment with
// PartSource::signed_content). Errc::not_found if there is no such part,
// Errc::crypto if the signature is bad (its content is then not released).
Result<mail::PartContent> signed_part(keys::KeyStore& store, const mail::Message& message,
                                      std::string_view part_id);

}  // namespace wmk::reader

#pragma once
// Reading protected mail: from a message in the user's own mailbox and an unlocked
// key to a structured view that the page layer can show safely (docs/security.md,
// "Reading protected mail").
//
// The rules this code keeps (DESIGN §5, EFAIL):
// - OpenPGP ciphertext without integrity protection is refused by the key code before
//   any plaintext is released (Errc::crypto); nothing of it is shown.
// - Decrypted and plaintext parts are never merged: a message whose encrypted part
//   sits beside plain parts comes back as separate Segments, each marked plain or
//   decrypted, in message order.
// - Everything said about signatures comes from GPGME's or CMS's structured results
//   (KeyStore::decrypt / KeyStore::verify), never from headers, MIME structure alone,
//   HTML or engine messages. Only SignatureState::valid may be shown as a valid
//   signature.
// - HTML is carried as HTML source with a flag; the page sanitizes it (no remote
//   content) as its last step.
// - Nothing decrypted is stored or cached: every call decrypts again, and the view
//   lives only as long as the caller keeps it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/auth/users.h"
#include "core/keys/keystore.h"
#include "core/keys/types.h"
#include "core/mail/mime.h"
#include "core/util/result.h"

namespace wmk::reader {

// What inspect() finds in a message: how it is encrypted and what opens it.
struct ProtectedMessage {
  // pgp_mime, pgp_inline, smime_enveloped or smime_auth_enveloped.
  mail::Protection protection = mail::Protection::none;
  keys::KeyType key_type = keys::KeyType::openpgp;  // the kind of key that decrypts it
  std::string payload_part_id;                      // the encrypted part in the message
  std::string payload;  // the ciphertext (mail::encrypted_payload's bytes)
};

// Where an attachment's bytes come from, i.e. which function serves a download.
enum class PartSource {
  message,         // the stored message: mail::part_content(raw, id)
  decrypted,       // the decrypted entity: reader::decrypted_part(store, key, raw, id)
  signed_content,  // inside an opaque S/MIME signature: reader::signed_part(store, raw, id)
};

struct Attachment {
  std::string id;  // part id within its source (see PartSource)
  PartSource source = PartSource::message;
  std::string filename;      // safe to show and offer; "part-ID" when the sender gave none
  std::string sniffed_type;  // what libmagic says the bytes are; serve this type
  std::uint64_t size = 0;    // decoded bytes
};

// One separately shown piece of a message. A page draws each segment in its own
// frame with its kind visible, and never joins the text of two segments.
struct Segment {
  enum class Kind { plain, decrypted };
  Kind kind = Kind::plain;
  // The part of the stored message this segment comes from: a plain leaf part, or the
  // encrypted payload part for the decrypted segment.
  std::string part_id;
  std::string text;  // UTF-8, LF line ends; may be empty (attachments only)
  // html: text is untrusted HTML source that the page must sanitize; plain: text.
  mail::BodyFormat format = mail::BodyFormat::none;
  std::vector<Attachment> attachments;
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
  std::vector<std::string> signer_emails;  // the signer's addresses (lower case)
  bool trusted = false;       // OpenPGP validity full/ultimate, or S/MIME trusted chain
  bool matches_from = false;  // a signer address equals the From address (any case)
  // The signature covers the whole displayed top-level part: it signs the entire
  // decrypted entity (or message) and no plain segment is shown beside it.
  bool covers_whole = false;
  std::int64_t created = 0;  // signature time, 0 if unknown
  std::string detail;        // the engine's words, for a tooltip; never a claim
};

// The overall signature state of a view. Only `valid` may be shown as a valid
// signature; every other state must be shown as not (fully) verified.
enum class SignatureState {
  none,              // no signature
  valid,             // a good signature covering the whole displayed part by the From address
  partially_signed,  // good, but it covers only part of what is displayed
  signer_mismatch,   // good, but the signer is not the From address
  bad,               // a signature is bad
  unknown_key,       // the signer cannot be checked or identified
  expired,           // made by an expired key or certificate
  revoked,           // made by a revoked key or certificate
  error,             // a signature could not be checked
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
  std::string cipher;           // "AES256.CFB", "authEnvelopedData", "envelopedData"
  // OpenPGP (MDC/AEAD) and S/MIME AuthEnvelopedData: true. S/MIME EnvelopedData
  // (CBC) has no integrity protection in the format: false, and the page must say so.
  bool integrity_protected = false;
  // The decrypted segment (exactly one).
  const Segment& decrypted() const;
};

// How the message is encrypted, its ciphertext, and which key type opens it.
// Errc::not_found if nothing in it is encrypted (signed-only messages included: see
// verify_signed), Errc::corrupt if it does not parse.
Result<ProtectedMessage> inspect(std::string_view raw);

// The user's own key that should decrypt the message: the default key of the needed
// type for the first To/Cc address that is one of the user's, else the default key for
// the user's primary address, else any key of the user of that type. Never another
// user's key. Errc::not_found ("you have no OpenPGP key") if the user has none.
Result<keys::KeyInfo> choose_key(keys::KeyStore& store, const auth::User& user,
                                 const ProtectedMessage& message,
                                 const mail::ParsedMessage& parsed);

// Decrypts the message with key (audited as key.decrypt by KeyStore) and builds the
// view: plain segments around the one decrypted segment, and the signature verdicts
// with their overall state. Errc::not_found if the message is not encrypted,
// Errc::invalid_argument if it needs the other key type, Errc::crypto if it is not
// for this key, has no integrity protection (OpenPGP) or was altered,
// Errc::expired / Errc::revoked for an unusable key, Errc::corrupt if unparseable.
Result<DecryptedView> decrypt(keys::KeyStore& store, const keys::UnlockedKey& key,
                              std::string_view raw);

// One part of the decrypted entity (an Attachment with PartSource::decrypted),
// decrypted again for this request. Errors as decrypt(), plus Errc::invalid_argument
// for a malformed part id and Errc::not_found if there is no such part.
Result<mail::PartContent> decrypted_part(keys::KeyStore& store, const keys::UnlockedKey& key,
                                         std::string_view raw, std::string_view part_id);

// Checks the signatures of a message that is signed but not encrypted (multipart/signed
// PGP or S/MIME at any depth, opaque S/MIME signed-data, inline clearsigned PGP).
// Needs no private key. Errc::not_found if it is not signed, Errc::invalid_argument if
// it is encrypted (use decrypt), Errc::corrupt if it does not parse.
Result<MessageView> verify_signed(keys::KeyStore& store, std::string_view raw);

// One part inside an opaque S/MIME signature (an Attachment with
// PartSource::signed_content). Errc::not_found if there is no such part,
// Errc::crypto if the signature is bad (its content is then not released).
Result<mail::PartContent> signed_part(keys::KeyStore& store, std::string_view raw,
                                      std::string_view part_id);

}  // namespace wmk::reader

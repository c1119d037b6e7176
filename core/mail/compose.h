#pragma once
// Building outgoing mail with GMime 3: a Draft (what the compose page holds) becomes
// RFC 5322 headers plus a MIME entity. The entity is what gets signed or encrypted:
// it comes out in canonical form (CRLF line ends, 7-bit transfer encodings), so the
// bytes handed to the key code are exactly the bytes a verifier reconstructs.
//
// Nothing a user types can add a header or a recipient: addresses are validated
// one by one (validate_address), display names and subjects with line breaks or
// control characters after RFC 2047 decoding are refused, headers are encoded and
// folded by GMime, and text that merely looks like an encoded-word is itself encoded
// so that no reader decodes it into something else.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mail/mime.h"
#include "core/util/result.h"

namespace wmk::mail {

// RFC 5321 limits: a whole address, and its local part.
inline constexpr std::size_t kMaxAddressBytes = 254;
inline constexpr std::size_t kMaxLocalPartBytes = 64;
// Longest display name or subject accepted (bytes of UTF-8).
inline constexpr std::size_t kMaxHeaderTextBytes = 998;
// Most recipients (To and Cc together) one message may have.
inline constexpr std::size_t kMaxRecipients = 100;

// Ok if address is one plain addr-spec: ASCII dot-atom local part (at most 64 bytes),
// '@', a host name of letters, digits and hyphens; at most 254 bytes; no space,
// control character, quote or bracket; not starting with '-' (so it can never be
// read as a program option). Errc::invalid_argument naming the address and the reason.
Status validate_address(std::string_view address);

// Ok if text can be a display name or subject: valid UTF-8, at most
// kMaxHeaderTextBytes, no control character (CR, LF, NUL, ...) and no Unicode line
// or paragraph separator. Errc::invalid_argument saying which field (what) and why.
Status validate_header_text(std::string_view text, std::string_view what);

// Parses a To or Cc field as a user typed it: entries separated by ',' or ';', each
// "addr@example.org", "<addr@example.org>" or "Name <addr@example.org>", where Name
// may be quoted and may hold RFC 2047 encoded-words (decoded here). Every entry must
// be exactly one valid mailbox. Empty entries are skipped; an empty field gives an
// empty list. Errc::invalid_argument naming the entry for anything else, including a
// line break anywhere in the field or in a decoded name.
Result<std::vector<Address>> parse_address_field(std::string_view field);

// "Name <addr>" (name quoted or encoded as needed) for each address, comma separated:
// what a compose form shows in its To and Cc fields.
std::string format_address_field(const std::vector<Address>& addresses);

struct Attachment {
  std::string filename;      // safe_filename() of what was uploaded; may be empty
  std::string content_type;  // what libmagic says the bytes are
  std::string bytes;
};

// An attachment from an upload: the name made safe, the type sniffed from the bytes
// (whatever the browser claimed is ignored).
Attachment make_attachment(std::string_view filename, std::string bytes);

// Which kind of keys a message is signed or encrypted with.
enum class Technology { openpgp, smime };

// "openpgp" or "smime".
const char* technology_name(Technology t);

// Whether a draft's body holds decrypted text, and on what terms it was put there.
enum class DecryptedQuote {
  none,       // no decrypted text
  to_signer,  // quoted without asking: it goes only to its signer and the user
  confirmed,  // quoted after the user saw what and to whom, and said yes
};

// "none", "signer", "confirmed"; and back (nullopt for anything else).
const char* decrypted_quote_name(DecryptedQuote q);
std::optional<DecryptedQuote> decrypted_quote_from(std::string_view text);

// What the compose page holds. Text is UTF-8; body line ends are LF.
struct Draft {
  Address from;  // the sender identity (one of the user's addresses)
  std::vector<Address> to;
  std::vector<Address> cc;
  std::string subject;
  std::string body;
  std::vector<Attachment> attachments;
  std::string in_reply_to;              // message id without angle brackets, or ""
  std::vector<std::string> references;  // message ids without angle brackets
  // Intent, as chosen on the page.
  bool sign = false;
  bool encrypt = false;
  Technology technology = Technology::openpgp;
  // The message replied to (or forwarded) was encrypted: encryption defaults on, and
  // decrypted text is quoted into an unencrypted message only if the user says so.
  bool original_encrypted = false;
  // The user chose to send such a reply unencrypted all the same.
  bool unencrypted_reply_ok = false;
  // The body holds text decrypted from the original (docs/security.md, "Replying and
  // forwarding"): the draft is stored only encrypted to the sender, at every step.
  DecryptedQuote decrypted_quote = DecryptedQuote::none;
  // DecryptedQuote::to_signer: the address of the original's signer, the one
  // recipient besides the user's own addresses that may get it without asking.
  std::string quote_signer;
};

// Every address the message goes to (To, then Cc), without duplicates (compared
// without case), in order.
std::vector<std::string> recipients(const Draft& draft);

enum class DraftCheck {
  to_save,  // what is there must be valid; recipients may still be missing
  to_send,  // also at least one recipient
};

// Ok if the draft can be built (and, to_send, sent): a valid From, at most
// kMaxRecipients, every address valid, names and subject valid header text, message
// ids sane; to_send also needs one recipient. Errc::invalid_argument naming the field
// and the address.
Status validate_draft(const Draft& draft, DraftCheck check);

// True if id (without angle brackets) can be written as a message id: printable ASCII
// without space, brackets, quotes, parentheses, commas or semicolons, 1-254 bytes.
bool valid_message_id(std::string_view id);

// A new Message-ID (without angle brackets): random, at the sender's domain.
std::string make_message_id(std::string_view from_address);

// The Autocrypt Level 1 header value (https://autocrypt.org/level1.html §2.1) for
// addr with the binary OpenPGP key keydata: attributes in the specification's order,
// keydata as base64 folded into lines of at most 76 characters. Pure; the parser of
// incoming ones is contacts::parse_autocrypt.
std::string autocrypt_header_value(std::string_view addr, std::string_view keydata,
                                   bool prefer_encrypt);

struct HeaderFields {
  std::int64_t date = 0;   // Unix seconds, written as UTC
  std::string message_id;  // without angle brackets
  // The value of the sender's Autocrypt header, folded with LF and a space as
  // autocrypt_header_value makes it; empty for none.
  std::string autocrypt;
};

// The message's header block in canonical form (CRLF, folded, RFC 2047 encoded):
// Date, From, To, Cc, Subject, Message-ID, In-Reply-To, References, MIME-Version,
// then Autocrypt when fields has one. No Content-* header and no blank line: an
// entity follows. Errc::invalid_argument as validate_draft(to_save), or for an
// Autocrypt value that is not printable ASCII folded by LF and a blank.
Result<std::string> message_headers(const Draft& draft, const HeaderFields& fields);

// The content of the draft as one MIME entity in canonical form (CRLF, every part
// 7-bit: text as 7bit or quoted-printable, attachments base64, file names per RFC
// 2231): a text/plain part, or multipart/mixed of it and the attachments. This is
// exactly what a signature covers (RFC 3156 section 5, RFC 8551 section 3.1.1).
Result<std::string> content_entity(const Draft& draft);

// The body of a multipart/signed signature part.
enum class SignatureFormat {
  openpgp,  // armored detached OpenPGP signature (application/pgp-signature)
  smime,    // DER CMS SignedData (application/pkcs7-signature, base64 here)
};

// A multipart/signed entity (CRLF) of signed_entity, unchanged, and signature.
// micalg is what the key code reported ("pgp-sha256", "sha-256"). Errc::invalid_argument
// for a micalg that is not a lower-case token.
Result<std::string> signed_entity(std::string_view signed_part, SignatureFormat format,
                                  std::string_view signature, std::string_view micalg);

// A PGP/MIME multipart/encrypted entity (RFC 3156 section 4) around an armored
// OpenPGP message. Errc::invalid_argument if armored is not an armored PGP MESSAGE.
Result<std::string> pgp_encrypted_entity(std::string_view armored);

enum class SmimeEnvelope { enveloped, auth_enveloped };

// An S/MIME application/pkcs7-mime entity (RFC 8551 section 3.3) around DER CMS
// (EnvelopedData, or AuthEnvelopedData for AES-GCM), base64 encoded.
std::string smime_encrypted_entity(std::string_view der, SmimeEnvelope kind);

// headers + entity as one message with LF line ends, as sendmail and Maildir take it.
std::string assemble_message(std::string_view headers, std::string_view entity);

// The plain message for a draft (no signature, no encryption), LF line ends.
// Errc::invalid_argument as validate_draft(to_save).
Result<std::string> build_message(const Draft& draft, const HeaderFields& fields);

// text with every CRLF turned into LF (undoing canonicalisation).
std::string to_lf_line_ends(std::string_view text);
// text with every line end (CRLF, lone CR, lone LF) turned into CRLF.
std::string to_crlf_line_ends(std::string_view text);

}  // namespace wmk::mail

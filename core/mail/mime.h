#pragma once
// Reading messages with GMime 3: decoded headers, the flattened list of leaf parts,
// the best text body, a hint of the message's cryptographic protection, and the
// decoded bytes of one part or of the encrypted payload.
//
// Everything returned is UTF-8. Header strings and file names never contain CR, LF
// or other control characters, so they cannot inject anything when shown.
// Nothing here decrypts or verifies; Protection is a hint for the inbox badge and for
// choosing a decryptor, never a security claim.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/result.h"

namespace wmk::mail {

enum class Protection {
  none,
  pgp_mime,              // multipart/encrypted; protocol="application/pgp-encrypted" (RFC 3156)
  pgp_inline,            // "-----BEGIN PGP MESSAGE-----" in a text part
  smime_enveloped,       // application/pkcs7-mime; smime-type=enveloped-data (RFC 8551)
  smime_auth_enveloped,  // application/pkcs7-mime; smime-type=authEnveloped-data
  smime_signed,          // multipart/signed pkcs7-signature, or pkcs7-mime signed-data
  pgp_signed,            // multipart/signed pgp-signature, or an inline PGP signed message
};

// "none", "pgp_mime", ... (stable; for logs, JSON and templates).
const char* protection_name(Protection p);
bool is_encrypted(Protection p);
bool is_signed(Protection p);

struct Address {
  std::string name;     // display name, decoded; may be empty
  std::string address;  // addr-spec; may be empty for a malformed header
  // "Name <address>", or whichever of the two is present.
  std::string display() const;
};

// What a leaf part is for in its message's structure.
enum class PartRole {
  content,            // something to show or download
  crypto_control,     // the application/pgp-encrypted "Version: 1" part
  encrypted_payload,  // the ciphertext (PGP/MIME octet-stream, S/MIME enveloped pkcs7-mime)
  signature,          // a detached signature, or an S/MIME signed-data blob
};

struct Part {
  std::string id;            // "1", "2.1", ...: position in the MIME tree, stable for a message
  std::string content_type;  // as declared, "type/subtype" in lower case
  std::string charset;       // declared charset parameter, or ""
  std::string disposition;   // "inline", "attachment" or "" (lower case)
  std::string filename;      // safe_filename() of the declared name, or ""
  std::uint64_t size = 0;    // decoded bytes (0 when parsed with ParseDepth::structure)
  bool is_attachment = false;
  PartRole role = PartRole::content;
};

enum class BodyFormat { none, plain, html };

struct ParsedMessage {
  Address from;  // the first mailbox of From
  std::vector<Address> to;
  std::vector<Address> cc;
  std::string subject;
  std::optional<std::int64_t> date;  // Unix seconds; nullopt if missing or unparseable
  std::string message_id;            // without angle brackets
  std::vector<Part> parts;           // the leaf parts, depth first
  // The best text body as UTF-8 with LF line ends: the first text/plain body part,
  // else the first text/html one (then text_format is html and text is HTML source
  // that the caller must sanitize). Empty with ParseDepth::structure.
  std::string text;
  BodyFormat text_format = BodyFormat::none;
  std::string text_part_id;
  Protection protection = Protection::none;

  bool has_attachments() const;
};

enum class ParseDepth {
  full,       // everything, including the text body and decoded part sizes
  structure,  // headers, parts and protection only (what the header index needs)
};

// The largest header block any message is parsed with: `deliver` refuses headers over
// the config's max_header_bytes (at most this), and a message that reached a Maildir
// some other way is refused by the parser, so no page's cost grows with its header.
inline constexpr std::size_t kMaxHeaderBytes = std::size_t{1} << 20;

// Bytes of raw's header block, up to and including the blank line that ends it (all
// of raw when there is none).
std::size_t header_block_size(std::string_view raw);

// Parses a message. Errc::corrupt if it has no header block GMime can read
// (empty input, binary junk, text without headers); Errc::unsupported if the header
// block is larger than kMaxHeaderBytes.
Result<ParsedMessage> parse_message(std::string_view raw, ParseDepth depth = ParseDepth::full);

struct PartContent {
  std::string bytes;          // transfer encoding undone; no charset conversion
  std::string sniffed_type;   // what libmagic says the bytes are: use this for downloads
  std::string declared_type;  // what the sender claimed; never trust it
  std::string filename;       // safe; "part-ID" when the sender gave none
};

// The decoded content of one leaf part (message/rfc822 parts: the embedded message).
// Errc::invalid_argument for a malformed part id, Errc::not_found if the message
// has no such leaf part, Errc::corrupt if the message does not parse.
Result<PartContent> part_content(std::string_view raw, std::string_view part_id);

struct EncryptedPayload {
  Protection protection;  // pgp_mime, pgp_inline, smime_enveloped or smime_auth_enveloped
  std::string part_id;
  // PGP/MIME: the application/octet-stream part (armored OpenPGP message).
  // S/MIME: the pkcs7-mime body, base64 undone (DER CMS ContentInfo).
  // Inline PGP: the armored block from BEGIN PGP MESSAGE to END PGP MESSAGE.
  std::string bytes;
};

// Every encrypted part of a message, in message order (depth first): each PGP/MIME
// and S/MIME payload part, and the first armored PGP message of each text/plain body
// part. Errc::not_found if the message carries none, Errc::corrupt if it does not
// parse or a multipart/encrypted lacks its payload.
Result<std::vector<EncryptedPayload>> encrypted_payloads(std::string_view raw);

// The first of encrypted_payloads(raw), with its errors: for a message known to
// carry exactly one (an encrypted draft).
Result<EncryptedPayload> encrypted_payload(std::string_view raw);

// A file name safe to offer for download and to show: the last path component,
// without control or bidi-override characters, leading dots or surrounding spaces,
// valid UTF-8, at most 200 bytes. "" if nothing is left.
std::string safe_filename(std::string_view name);

// Text bytes in charset as UTF-8 with LF line ends, as ParsedMessage::text holds a
// body: bytes that are not valid in the declared (or missing) charset are read as
// windows-1252, then ISO-8859-1. Never fails.
std::string decode_text(std::string_view bytes, std::string_view charset);

// Header text safe to show: valid UTF-8, every control character and Unicode line
// or paragraph separator replaced by a space, trimmed.
std::string clean_header_text(std::string_view text);

}  // namespace wmk::mail

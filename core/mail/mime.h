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
#include <memory>
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
  // The first Message-ID header's first msg-id, without angle brackets ("" if none):
  // a second Message-ID header (which RFC 5322 §3.6 forbids) never replaces it.
  std::string message_id;
  // RFC 5322 §3.6.3 and RFC 2369: what an answer needs.
  std::vector<Address> reply_to;         // Reply-To's mailboxes (groups expanded)
  std::vector<std::string> in_reply_to;  // In-Reply-To's msg-ids, without angle brackets
  std::vector<std::string> references;   // References' msg-ids, without angle brackets
  // The list's posting address from List-Post (its first <mailto:...>), or "" if there
  // is none or the list says "NO" (posting not allowed).
  std::string list_post;
  std::vector<Part> parts;  // the leaf parts, depth first
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

struct PartContent {
  std::string bytes;          // transfer encoding undone; no charset conversion
  std::string sniffed_type;   // what libmagic says the bytes are: use this for downloads
  std::string declared_type;  // what the sender claimed; never trust it
  std::string filename;       // safe; "part-ID" when the sender gave none
};

struct EncryptedPayload {
  Protection protection;  // pgp_mime, pgp_inline, smime_enveloped or smime_auth_enveloped
  std::string part_id;
  // PGP/MIME: the application/octet-stream part (armored OpenPGP message).
  // S/MIME: the pkcs7-mime body, base64 undone (DER CMS ContentInfo).
  // Inline PGP: the armored block from BEGIN PGP MESSAGE to END PGP MESSAGE.
  std::string bytes;
};

// A message parsed once: its MIME tree (GMime's, kept inside core/mail: see
// gmime_ref.h) and the ParsedMessage read from it. Everything a request asks of one
// message (its headers and text, a part's content, its encrypted payloads, its
// signatures) comes from this one parse, so a request parses each message once and
// keeps no second copy of its bytes. Move-only.
class Message {
 public:
  // Parses a copy of raw. Errc::corrupt if it has no header block GMime can read
  // (empty input, binary junk, text without headers); Errc::unsupported if the header
  // block is larger than kMaxHeaderBytes.
  static Result<Message> parse(std::string_view raw, ParseDepth depth = ParseDepth::full);

  Message(Message&&) noexcept;
  Message& operator=(Message&&) noexcept;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message();

  const ParsedMessage& parsed() const { return parsed_; }

  // The decoded content of one leaf part (message/rfc822 parts: the embedded message).
  // Errc::invalid_argument for a malformed part id, Errc::not_found if the message has
  // no such leaf part.
  Result<PartContent> part_content(std::string_view part_id) const;

  // Every encrypted part, in message order (depth first): each PGP/MIME and S/MIME
  // payload part (the Exchange/Outlook-mangled PGP/MIME shape included, read as the
  // multipart/encrypted it was: see docs/security.md), the first armored PGP message
  // of each text/plain body part, and of the HTML body of a message that has no
  // text/plain body (its text rendering). Errc::not_found if the message carries
  // none, Errc::corrupt if a multipart/encrypted lacks its payload.
  Result<std::vector<EncryptedPayload>> encrypted_payloads() const;

  struct Tree;  // the GMime tree and its leaves (mime.cc)
  const Tree& tree() const { return *tree_; }

 private:
  Message(std::unique_ptr<Tree> tree, ParsedMessage parsed);
  std::unique_ptr<Tree> tree_;
  ParsedMessage parsed_;
};

// Message::parse(raw, depth)'s ParsedMessage, for a caller that needs nothing else.
Result<ParsedMessage> parse_message(std::string_view raw, ParseDepth depth = ParseDepth::full);

// How many times this process has parsed bytes as a message: the one GMime parse
// every Message::parse (and so every function here that takes raw bytes) goes
// through. For tests that a request parses each message once.
std::uint64_t parse_count();

// Message::parse(raw)'s part_content(part_id), with its errors and parse_message's.
Result<PartContent> part_content(std::string_view raw, std::string_view part_id);

// The first armored PGP message in the text rendering of an HTML body (html_to_text),
// its lines put back into the form gpg reads; "" if there is none.
std::string html_armored_block(std::string_view html);

// The first of Message::parse(raw)'s encrypted_payloads(), with their errors and
// parse_message's: for a message known to carry exactly one (an encrypted draft).
Result<EncryptedPayload> encrypted_payload(std::string_view raw);

// The msg-ids of an In-Reply-To, References or Message-ID value, in order, without
// angle brackets. Empty for nullptr or a value without any.
std::vector<std::string> message_ids(const char* value);

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

#include "core/reader/reader.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "core/mail/gmime_ref.h"
#include "core/mail/magic.h"
#include "core/mail/sanitize.h"
#include "core/util/ascii.h"

namespace wmk::reader {

namespace {

using mail::GRef;

constexpr std::string_view kPgpMessageBegin = "-----BEGIN PGP MESSAGE-----";
constexpr std::string_view kPgpMessageEnd = "-----END PGP MESSAGE-----";
constexpr std::string_view kPgpSignedBegin = "-----BEGIN PGP SIGNED MESSAGE-----";
constexpr std::string_view kPgpSignatureEnd = "-----END PGP SIGNATURE-----";
constexpr std::size_t kMaxPartIdLength = 64;
constexpr std::string_view kPgpKeysType = "application/pgp-keys";

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

// The same syntax mail::part_content accepts: "1", "2.1", ... Checked before anything
// is decrypted, so a bad id costs no decryption.
bool valid_part_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxPartIdLength || id.front() == '.' || id.back() == '.')
    return false;
  char prev = '.';
  for (char c : id) {
    if ((c == '.' && prev == '.') || (c != '.' && (c < '0' || c > '9')))
      return false;
    prev = c;
  }
  return true;
}

std::string parent_id(const std::string& id) {
  auto dot = id.rfind('.');
  return dot == std::string::npos ? std::string() : id.substr(0, dot);
}

keys::KeyType key_type_for(mail::Protection p) {
  return p == mail::Protection::smime_enveloped || p == mail::Protection::smime_auth_enveloped
             ? keys::KeyType::smime
             : keys::KeyType::openpgp;
}

const char* key_type_words(keys::KeyType t) {
  return t == keys::KeyType::openpgp ? "an OpenPGP key" : "an S/MIME key";
}

// ---- GMime helpers

std::string mime_type_of(GMimeObject* obj) {
  GMimeContentType* ct = g_mime_object_get_content_type(obj);
  if (ct == nullptr)
    return "text/plain";
  mail::GChars type(g_mime_content_type_get_mime_type(ct));
  return util::ascii_lower(type.str());
}

std::string param(GMimeObject* obj, const char* name) {
  const char* v = g_mime_object_get_content_type_parameter(obj, name);
  return v != nullptr ? std::string(v) : std::string();
}

// The object as written on the wire with CRLF line ends: the canonical form that
// RFC 3156 §5 and RFC 8551 §3.1.1 sign. GMime writes parsed headers and encoded
// content back as they were read, which is what makes the signed bytes exact.
std::string canonical_bytes(GMimeObject* obj) {
  GMimeFormatOptions* options = g_mime_format_options_new();
  g_mime_format_options_set_newline_format(options, GMIME_NEWLINE_FORMAT_DOS);
  GRef<GMimeStream> mem(g_mime_stream_mem_new());
  g_mime_object_write_to_stream(obj, options, mem.get());
  g_mime_format_options_free(options);
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

GMimeObject* root_of(GMimeMessage* message) {
  return message != nullptr ? g_mime_message_get_mime_part(message) : nullptr;
}

bool is_opaque_smime_signature(GMimeObject* obj) {
  if (obj == nullptr || !GMIME_IS_PART(obj))
    return false;
  std::string type = mime_type_of(obj);
  return (type == "application/pkcs7-mime" || type == "application/x-pkcs7-mime") &&
         util::ascii_lower(param(obj, "smime-type")) == "signed-data";
}

// ---- signatures

// A signature found while examining an entity, before the view knows whether the
// entity is all that is shown.
struct FoundSignature {
  keys::SignatureInfo info;
  keys::KeyType type = keys::KeyType::openpgp;
  bool covers_entity = false;  // it signs the whole entity (not a part within it)
};

void add_signatures(const Result<keys::VerifyResult>& verified, keys::KeyType type,
                    bool covers_entity, std::vector<FoundSignature>& out) {
  if (!verified) {
    keys::SignatureInfo info;
    info.status = keys::SignatureStatus::error;
    info.detail = verified.error().message;
    out.push_back(FoundSignature{std::move(info), type, covers_entity});
    return;
  }
  for (const auto& s : verified->signatures)
    out.push_back(FoundSignature{s, type, covers_entity});
}

// Checks every multipart/signed in the tree below obj (is_root: obj is the root of
// the entity shown) with the key code, over the exact signed bytes.
void check_multipart_signed(keys::KeyStore& store, GMimeObject* obj, bool is_root,
                            std::vector<FoundSignature>& out) {
  if (!GMIME_IS_MULTIPART(obj))
    return;  // leaves, and message/rfc822 parts (a forwarded message is not this one)
  GMimeMultipart* mp = GMIME_MULTIPART(obj);
  std::string type = mime_type_of(obj);
  if (type == "multipart/encrypted")
    return;  // ciphertext: nothing to check without decrypting it
  int n = g_mime_multipart_get_count(mp);
  if (type == "multipart/signed" && n >= 2) {
    std::string protocol = util::ascii_lower(param(obj, "protocol"));
    std::optional<keys::KeyType> key_type;
    if (protocol == "application/pgp-signature")
      key_type = keys::KeyType::openpgp;
    else if (protocol == "application/pkcs7-signature" ||
             protocol == "application/x-pkcs7-signature")
      key_type = keys::KeyType::smime;
    GMimeObject* content = g_mime_multipart_get_part(mp, 0);
    GMimeObject* signature = g_mime_multipart_get_part(mp, 1);
    if (key_type) {
      if (!GMIME_IS_PART(signature)) {
        keys::SignatureInfo info;
        info.detail = "the signature part of multipart/signed is not a single part";
        out.push_back(FoundSignature{std::move(info), *key_type, is_root});
      } else {
        std::string signed_bytes = canonical_bytes(content);
        std::string sig = mail::decoded_content(GMIME_PART(signature));
        add_signatures(store.verify(*key_type, signed_bytes, sig), *key_type, is_root, out);
      }
    }
    check_multipart_signed(store, content, false, out);
    return;
  }
  for (int i = 0; i < n; ++i)
    check_multipart_signed(store, g_mime_multipart_get_part(mp, i), false, out);
}

VerdictStatus status_of(const keys::SignatureInfo& s, keys::KeyType type) {
  switch (s.status) {
    case keys::SignatureStatus::good:
      // Anyone can make a certificate naming any address: only a chain to a trusted
      // root identifies an S/MIME signer. An OpenPGP signer is known when its key is
      // in the server's GnuPG home, where only an admin puts keys.
      if (type == keys::KeyType::smime && !s.trusted)
        return VerdictStatus::unknown_key;
      return VerdictStatus::good;
    case keys::SignatureStatus::bad:
      return VerdictStatus::bad;
    case keys::SignatureStatus::key_expired:
      return VerdictStatus::expired_key;
    case keys::SignatureStatus::key_revoked:
      return VerdictStatus::revoked_key;
    case keys::SignatureStatus::no_public_key:
      return VerdictStatus::unknown_key;
    case keys::SignatureStatus::error:
      return VerdictStatus::error;
  }
  return VerdictStatus::error;
}

SignatureVerdict verdict_of(const FoundSignature& f, const std::string& from_address,
                            bool entity_alone, const bindings::Lookup& bindings) {
  SignatureVerdict v;
  v.status = status_of(f.info, f.type);
  v.type = f.type;
  v.signer_fingerprint = f.info.fingerprint;
  v.signer = f.info.signer;
  v.signer_emails = f.info.emails;
  v.trusted = f.info.trusted;
  std::string from = util::ascii_lower(from_address);
  v.names_from = !from.empty() &&
                 std::any_of(f.info.emails.begin(), f.info.emails.end(),
                             [&](const std::string& e) { return util::ascii_lower(e) == from; });
  // The key's user ids are its owner's claim: only a binding source's verified
  // address makes the signer the sender.
  if (!from.empty() && !f.info.fingerprint.empty())
    v.binding = bindings.find(f.type, f.info.fingerprint, from);
  v.matches_from = v.binding.has_value();
  // A certificate that no CA vouches for is still known when a binding source binds
  // it to the From address (the server's own users, or the reader's verified
  // contacts): its signature is good, and `trusted` stays false.
  if (v.status == VerdictStatus::unknown_key && f.type == keys::KeyType::smime &&
      f.info.status == keys::SignatureStatus::good && v.binding)
    v.status = VerdictStatus::good;
  v.covers_whole = f.covers_entity && entity_alone;
  v.created = f.info.created;
  v.detail = f.info.detail;
  v.certificate = f.info.certificate;
  return v;
}

SignatureState state_of(const std::vector<SignatureVerdict>& verdicts) {
  if (verdicts.empty())
    return SignatureState::none;
  auto any = [&](auto pred) { return std::any_of(verdicts.begin(), verdicts.end(), pred); };
  auto with = [&](VerdictStatus s) {
    return any([s](const SignatureVerdict& v) { return v.status == s; });
  };
  if (with(VerdictStatus::bad))
    return SignatureState::bad;
  if (with(VerdictStatus::error))
    return SignatureState::error;
  // One good signature by the From address over everything shown vouches for it all,
  // including nested signatures it covers that cannot be checked here.
  if (any([](const SignatureVerdict& v) {
        return v.status == VerdictStatus::good && v.covers_whole && v.matches_from;
      }))
    return SignatureState::valid;
  if (with(VerdictStatus::revoked_key))
    return SignatureState::revoked;
  if (with(VerdictStatus::expired_key))
    return SignatureState::expired;
  if (with(VerdictStatus::unknown_key))
    return SignatureState::unknown_key;
  if (any([](const SignatureVerdict& v) { return !v.matches_from && !v.names_from; }))
    return SignatureState::signer_mismatch;
  if (any([](const SignatureVerdict& v) { return !v.matches_from; }))
    return SignatureState::sender_unverified;
  return SignatureState::partially_signed;
}

// ---- entities (a decrypted plaintext, or the content of an opaque signature)

// Parsed once when it is MIME: that one parse says whether it is MIME and gives its
// text, attachments and signatures.
struct Entity {
  std::optional<mail::Message> mime;  // the entity, when GMime finds a header block in it
  std::string text;                   // the entity as text, when it is not MIME
  bool withheld = false;              // an opaque signature failed: its content is not released
  std::vector<FoundSignature> signatures;
};

// Sets e to bytes: parsed as MIME when mime_expected and GMime finds a header block
// in them, else kept as text.
void set_content(Entity& e, std::string_view bytes, bool mime_expected) {
  e.mime.reset();
  e.text.clear();
  if (mime_expected) {
    if (auto parsed = mail::Message::parse(bytes)) {
      e.mime = std::move(parsed).value();
      return;
    }
  }
  e.text = std::string(bytes);
}

// Replaces e by the content signed in root, an opaque S/MIME signature (signed-data),
// checked by CMS; adds its verdict. A bad signature withholds the content.
void unwrap_opaque(keys::KeyStore& store, GMimeObject* root, Entity& e) {
  std::string der = mail::decoded_content(GMIME_PART(root));
  auto verified = store.verify(keys::KeyType::smime, "", der);
  add_signatures(verified, keys::KeyType::smime, true, e.signatures);
  if (!verified || verified->content.empty()) {
    e.mime.reset();
    e.text.clear();
    e.withheld = true;
    return;
  }
  set_content(e, verified->content, true);
}

// If the entity's root is an opaque S/MIME signature, unwrap_opaque.
void unwrap_opaque_signature(keys::KeyStore& store, Entity& e) {
  if (!e.mime)
    return;
  GMimeObject* root = root_of(mail::gmime_message(*e.mime));
  if (is_opaque_smime_signature(root))
    unwrap_opaque(store, root, e);
}

// The entity a decryption gave: PGP/MIME and S/MIME plaintext is a MIME entity;
// inline PGP plaintext is text unless its literal data is marked MIME.
Entity entity_of(mail::Protection protection, const keys::DecryptResult& decrypted) {
  Entity e;
  set_content(e, decrypted.plaintext.view(),
              protection != mail::Protection::pgp_inline || decrypted.is_mime);
  return e;
}

// The part of an entity as a download, with the same rules as mail::part_content.
Result<mail::PartContent> entity_part(const Entity& e, std::string_view part_id) {
  if (e.withheld)
    return make_error(Errc::crypto,
                      "the S/MIME signature over this content is bad: its content is withheld");
  if (e.mime)
    return e.mime->part_content(part_id);
  if (part_id != "1")
    return make_error(Errc::not_found, "the message has no part " + std::string(part_id));
  mail::PartContent out;
  out.bytes = e.text;
  out.sniffed_type = mail::sniff_mime_type(out.bytes);
  out.declared_type = "text/plain";
  out.filename = "message.txt";
  return out;
}

Attachment attachment_of(const mail::Message& message, const mail::Part& p, PartSource source) {
  Attachment a;
  a.id = p.id;
  a.source = source;
  a.size = p.size;
  a.filename = p.filename.empty() ? "part-" + p.id : p.filename;
  auto content = message.part_content(p.id);
  a.sniffed_type = content ? content->sniffed_type : "application/octet-stream";
  return a;
}

// A whole entity as one segment: its best text body and its attachments.
Segment segment_of(const Entity& e, Segment::Kind kind, std::string part_id, PartSource source) {
  Segment s;
  s.kind = kind;
  s.part_id = std::move(part_id);
  if (e.withheld)
    return s;
  if (!e.mime) {
    s.text = mail::decode_text(e.text, "");
    s.format = mail::BodyFormat::plain;
    return s;
  }
  const mail::ParsedMessage& parsed = e.mime->parsed();
  s.text = parsed.text;
  s.format = parsed.text_format;
  for (const auto& p : parsed.parts) {
    // A nested encrypted part is listed so that it does not vanish; it stays ciphertext.
    if (p.is_attachment || p.role == mail::PartRole::encrypted_payload)
      s.attachments.push_back(attachment_of(*e.mime, p, source));
    // A key the sender attached inside the encryption, offered as a key on the page.
    if (source == PartSource::decrypted && p.content_type == kPgpKeysType) {
      if (auto content = e.mime->part_content(p.id))
        s.keys.push_back(CarriedKey{p.id, std::move(content->bytes)});
    }
  }
  return s;
}

// Collects the plain parts of the stored message into segments, in order, never
// putting two text bodies in one segment.
class SegmentList {
 public:
  void add_text(const std::string& part_id, std::string text, mail::BodyFormat format) {
    if (blank(text))
      return;
    if (open_ && current_.format != mail::BodyFormat::none)
      flush();
    start(part_id);
    current_.text = std::move(text);
    current_.format = format;
  }
  void add_attachment(const std::string& part_id, Attachment a) {
    start(part_id);
    current_.attachments.push_back(std::move(a));
  }
  void push(Segment s) {
    flush();
    segments_.push_back(std::move(s));
  }
  std::vector<Segment> take() {
    flush();
    return std::move(segments_);
  }

 private:
  void start(const std::string& part_id) {
    if (open_)
      return;
    current_ = Segment{};
    current_.kind = Segment::Kind::plain;
    current_.part_id = part_id;
    open_ = true;
  }
  void flush() {
    if (open_)
      segments_.push_back(std::move(current_));
    open_ = false;
  }
  bool open_ = false;  // current_ holds a segment being filled
  Segment current_;
  std::vector<Segment> segments_;
};

bool is_text_body(const mail::Part& p) {
  return p.role == mail::PartRole::content && !p.is_attachment &&
         (p.content_type == "text/plain" || p.content_type == "text/html");
}

// Text around an armored block in a text part: what precedes BEGIN and what follows
// the END line. Both are plain, whatever the block is.
struct Split {
  std::string before;
  std::string after;
};

Split split_around(const std::string& text, std::string_view begin_marker,
                   std::string_view end_marker) {
  Split s;
  auto begin = text.find(begin_marker);
  if (begin == std::string::npos)
    return s;
  s.before = text.substr(0, begin);
  auto end = text.find(end_marker, begin);
  if (end == std::string::npos)
    return s;
  auto eol = text.find('\n', end);
  if (eol != std::string::npos)
    s.after = text.substr(eol + 1);
  return s;
}

std::string text_of_part(const mail::Message& message, const mail::Part& p) {
  auto content = message.part_content(p.id);
  return content ? mail::decode_text(content->bytes, p.charset) : std::string();
}

// Builds the segments of a stored message: every plain part in order, with the
// segments that special() makes in place of the parts it takes (it returns true).
template <class Special>
std::vector<Segment> build_segments(const mail::Message& message, Special special) {
  const mail::ParsedMessage& outer = message.parsed();
  SegmentList list;
  for (const auto& p : outer.parts) {
    if (special(p, list))
      continue;
    if (p.role == mail::PartRole::crypto_control || p.role == mail::PartRole::signature)
      continue;
    bool html_alternative =
        p.content_type == "text/html" &&
        std::any_of(outer.parts.begin(), outer.parts.end(), [&](const mail::Part& q) {
          return q.content_type == "text/plain" && is_text_body(q) &&
                 parent_id(q.id) == parent_id(p.id) && q.id != p.id;
        });
    if (is_text_body(p) && !html_alternative) {
      list.add_text(
          p.id, text_of_part(message, p),
          p.content_type == "text/html" ? mail::BodyFormat::html : mail::BodyFormat::plain);
    } else {
      list.add_attachment(p.id, attachment_of(message, p, PartSource::message));
    }
  }
  return list.take();
}

void finish_signatures(MessageView& view, const std::vector<FoundSignature>& found,
                       const std::string& from_address, const bindings::Lookup& bindings) {
  bool alone = view.segments.size() == 1;
  for (const auto& f : found)
    view.signatures.push_back(verdict_of(f, from_address, alone, bindings));
  view.signature_state = state_of(view.signatures);
}

// Clearsigned text inside a decrypted segment gets a verdict like any other
// signature. It covers the segment only when nothing but the signed block is in it;
// then the segment shows the signed text, else the block stays as it came.
void check_clearsigned(keys::KeyStore& store, Segment& s, std::vector<FoundSignature>& out) {
  if (s.format != mail::BodyFormat::plain)
    return;
  auto begin = s.text.find(kPgpSignedBegin);
  if (begin == std::string::npos)
    return;
  auto end = s.text.find(kPgpSignatureEnd, begin);
  std::string block = s.text.substr(
      begin, end == std::string::npos ? std::string::npos : end + kPgpSignatureEnd.size() - begin);
  Split around = split_around(s.text, kPgpSignedBegin, kPgpSignatureEnd);
  const bool whole = blank(around.before) && blank(around.after) && s.attachments.empty();
  auto verified = store.verify(keys::KeyType::openpgp, "", block + "\n");
  add_signatures(verified, keys::KeyType::openpgp, whole, out);
  if (verified && whole)
    s.text = mail::decode_text(verified->content, "");
}

const std::string kUnprotectedRefused =
    "the message is encrypted but " + std::string(keys::kNoIntegrityWords) +
    " (S/MIME envelopedData, AES-CBC), so it could have been altered on its way to you "
    "(EFAIL); this server is set not to show such messages";

// A decrypted segment without integrity protection: plain text only. An HTML body
// becomes its text rendering, so nothing in it is markup, a frame or a link.
void make_text_only(Segment& s) {
  s.integrity = Segment::Integrity::none;
  s.keys.clear();
  if (s.format == mail::BodyFormat::html) {
    s.text = mail::html_to_text(s.text);
    s.format = mail::BodyFormat::plain;
  }
}

Status check_key_type(const keys::UnlockedKey& key, const ProtectedMessage& message) {
  if (key.info().type == message.key_type)
    return {};
  return make_error(Errc::invalid_argument, std::string("this message needs ") +
                                                key_type_words(message.key_type) + ", not " +
                                                key_type_words(key.info().type) + " (" +
                                                key.info().fingerprint + ")");
}

// One encrypted part decrypted, and the entity it holds (an opaque S/MIME signature
// at its root unwrapped). Shared by decrypt() and decrypted_part().
struct Opened {
  keys::DecryptResult decrypted;
  Entity entity;
};

Result<Opened> open_part(keys::KeyStore& store, const keys::UnlockedKey& key,
                         const EncryptedPart& part) {
  auto decrypted = store.decrypt(key, part.payload);
  if (!decrypted)
    return decrypted.error();
  Opened o{std::move(decrypted).value(), Entity{}};
  o.entity = entity_of(part.protection, o.decrypted);
  unwrap_opaque_signature(store, o.entity);
  return o;
}

// The id of a decrypted attachment: the encrypted part it is in, and its id inside.
std::string decrypted_attachment_id(const std::string& payload_part, const std::string& inner) {
  return payload_part + ":" + inner;
}

}  // namespace

// ---- public API

const char* verdict_status_name(VerdictStatus status) {
  switch (status) {
    case VerdictStatus::good:
      return "good";
    case VerdictStatus::bad:
      return "bad";
    case VerdictStatus::unknown_key:
      return "unknown_key";
    case VerdictStatus::expired_key:
      return "expired_key";
    case VerdictStatus::revoked_key:
      return "revoked_key";
    case VerdictStatus::error:
      return "error";
  }
  return "error";
}

const char* signature_state_name(SignatureState state) {
  switch (state) {
    case SignatureState::none:
      return "none";
    case SignatureState::valid:
      return "valid";
    case SignatureState::partially_signed:
      return "partially_signed";
    case SignatureState::signer_mismatch:
      return "signer_mismatch";
    case SignatureState::sender_unverified:
      return "sender_unverified";
    case SignatureState::bad:
      return "bad";
    case SignatureState::unknown_key:
      return "unknown_key";
    case SignatureState::expired:
      return "expired";
    case SignatureState::revoked:
      return "revoked";
    case SignatureState::error:
      return "error";
  }
  return "error";
}

const char* failure_name(Failure f) {
  switch (f) {
    case Failure::no_integrity:
      return "no-integrity";
    case Failure::not_for_your_keys:
      return "not-for-your-keys";
    case Failure::damaged:
      return "damaged";
    case Failure::key_locked:
      return "key-locked";
    case Failure::key_elsewhere:
      return "key-elsewhere";
    case Failure::other:
      break;
  }
  return "other";
}

std::string failure_sentence(Failure f) {
  switch (f) {
    case Failure::no_integrity:
      return "It has no integrity protection, so it could have been altered on its way to "
             "you; it is never shown.";
    case Failure::not_for_your_keys:
      return "It is not encrypted for any of your keys.";
    case Failure::damaged:
      return "It is damaged or was altered on its way: it does not decrypt.";
    case Failure::key_locked:
      return "Your key is locked: decrypt the message (unlocking your key) first.";
    case Failure::key_elsewhere:
      return "Your key is unlocked in another session.";
    case Failure::other:
      break;
  }
  return "It could not be decrypted.";
}

Failure failure_of(const Error& e) {
  auto says = [&](std::string_view words) { return e.message.find(words) != std::string::npos; };
  switch (e.code) {
    case Errc::crypto:
      if (says(keys::kNoIntegrityWords))
        return Failure::no_integrity;
      if (says(keys::kNotForKeyWords))
        return Failure::not_for_your_keys;
      if (says(keys::kDamagedWords))
        return Failure::damaged;
      return Failure::other;
    case Errc::corrupt:  // the message, not the server's own key store
      return says("key secret") ? Failure::other : Failure::damaged;
    case Errc::not_found:         // choose_key: the user has no key of the kind it needs
    case Errc::invalid_argument:  // a key of the other kind
      return Failure::not_for_your_keys;
    default:
      return Failure::other;
  }
}

ReadOptions read_options(const config::Config& config) {
  return ReadOptions{config.smime_unprotected};
}

Result<ProtectedMessage> inspect(const mail::Message& message) {
  auto payloads = message.encrypted_payloads();
  if (!payloads) {
    if (payloads.code() == Errc::not_found)
      return make_error(Errc::not_found, "the message is not encrypted");
    return payloads.error();
  }
  ProtectedMessage m;
  m.protection = payloads->front().protection;
  m.key_type = key_type_for(m.protection);
  for (auto& p : *payloads) {
    if (key_type_for(p.protection) != m.key_type) {
      return make_error(Errc::crypto,
                        "its encrypted parts need both an OpenPGP and an S/MIME key, and a "
                        "message is opened with one key");
    }
    m.parts.push_back(EncryptedPart{p.protection, std::move(p.part_id), std::move(p.bytes)});
  }
  return m;
}

Result<keys::KeyInfo> choose_key(keys::KeyStore& store, const auth::User& user,
                                 const ProtectedMessage& message,
                                 const mail::ParsedMessage& parsed) {
  auto is_users = [&](const std::string& address) {
    std::string a = util::ascii_lower(address);
    return std::any_of(user.emails.begin(), user.emails.end(),
                       [&](const std::string& e) { return util::ascii_lower(e) == a; });
  };
  auto own_default = [&](const std::string& address) -> std::optional<keys::KeyInfo> {
    auto key = store.find_default(util::ascii_lower(address), message.key_type);
    if (key && key->user_id == user.id)
      return std::move(key).value();
    return std::nullopt;
  };
  std::vector<std::string> addressed;
  for (const auto* list : {&parsed.to, &parsed.cc}) {
    for (const auto& a : *list) {
      if (!a.address.empty() && is_users(a.address))
        addressed.push_back(a.address);
    }
  }
  for (const auto& address : addressed) {
    if (auto key = own_default(address))
      return std::move(*key);
  }
  if (!user.email.empty()) {
    if (auto key = own_default(user.email))
      return std::move(*key);
  }
  // Bcc, a list, or an address with no key of its own: any key of the user of this
  // type, preferring one that is some address's default and still usable.
  auto all = store.list(user.login);
  if (!all)
    return all.error();
  std::optional<keys::KeyInfo> best;
  auto rank = [](const keys::KeyInfo& k) {
    return (k.revoked ? 0 : 2) + (k.default_for.empty() ? 0 : 1);
  };
  for (auto& k : *all) {
    if (k.type != message.key_type || k.user_id != user.id)
      continue;
    if (!best || rank(k) > rank(*best))
      best = k;
  }
  if (best)
    return std::move(*best);
  return make_error(Errc::not_found,
                    message.key_type == keys::KeyType::openpgp
                        ? "you have no OpenPGP key: this message is encrypted with OpenPGP"
                        : "you have no S/MIME key: this message is encrypted with S/MIME");
}

namespace {

// One attachment asked of the decrypted content, taken during the one decryption.
struct PartWanted {
  std::string_view payload_id;  // the encrypted part
  std::string_view inner_id;    // the part within its decrypted entity
  std::optional<Result<mail::PartContent>> found;
};

constexpr const char* kPartNotIntegrityProtected =
    "the part is encrypted without integrity protection (S/MIME envelopedData), so it could "
    "have been altered on its way (EFAIL): its attachments are not offered";

Result<DecryptedView> decrypt_once(keys::KeyStore& store, const keys::UnlockedKey& key,
                                   const mail::Message& stored, const bindings::Lookup& bindings,
                                   const ReadOptions& options, PartWanted* wanted) {
  const mail::ParsedMessage& outer = stored.parsed();
  auto message = inspect(stored);
  if (!message)
    return message.error();
  WMK_TRY(check_key_type(key, *message));

  DecryptedView view;
  view.protection = message->protection;
  view.key_fingerprint = key.info().fingerprint;
  view.integrity_protected = true;

  std::vector<FoundSignature> found;
  std::vector<std::pair<const EncryptedPart*, Segment>> decrypted;  // message order
  for (const auto& part : message->parts) {
    auto opened = open_part(store, key, part);
    if (!opened)
      return opened.error();
    const bool integrity = opened->decrypted.integrity_protected;
    if (!integrity && options.smime_unprotected == config::SmimeUnprotected::refuse)
      return make_error(Errc::crypto, kUnprotectedRefused);
    view.integrity_protected = view.integrity_protected && integrity;
    view.key_expired = view.key_expired || opened->decrypted.key_expired;
    const std::string& cipher = opened->decrypted.cipher;
    if (!cipher.empty() && view.cipher.find(cipher) == std::string::npos)
      view.cipher += (view.cipher.empty() ? "" : ", ") + cipher;

    Entity& entity = opened->entity;
    if (wanted != nullptr && part.part_id == wanted->payload_id) {
      wanted->found = integrity ? entity_part(entity, wanted->inner_id)
                                : make_error(Errc::crypto, kPartNotIntegrityProtected);
    }
    // OpenPGP signed-and-encrypted: the signature covers the whole plaintext.
    for (const auto& s : opened->decrypted.signatures)
      found.push_back(FoundSignature{s, keys::KeyType::openpgp, true});
    found.insert(found.end(), entity.signatures.begin(), entity.signatures.end());
    if (entity.mime) {
      if (GMimeObject* root = root_of(mail::gmime_message(*entity.mime)))
        check_multipart_signed(store, root, true, found);
    }
    Segment segment =
        segment_of(entity, Segment::Kind::decrypted, part.part_id, PartSource::decrypted);
    for (auto& a : segment.attachments)
      a.id = decrypted_attachment_id(part.part_id, a.id);
    for (auto& k : segment.keys)
      k.attachment_id = decrypted_attachment_id(part.part_id, k.attachment_id);
    check_clearsigned(store, segment, found);
    segment.integrity = Segment::Integrity::checked;
    if (!integrity)
      make_text_only(segment);
    decrypted.emplace_back(&part, std::move(segment));
  }

  std::vector<bool> placed(decrypted.size(), false);
  view.segments = build_segments(stored, [&](const mail::Part& p, SegmentList& list) {
    auto it = std::find_if(decrypted.begin(), decrypted.end(),
                           [&](const auto& d) { return d.first->part_id == p.id; });
    if (it == decrypted.end())
      return false;
    placed[static_cast<std::size_t>(it - decrypted.begin())] = true;
    if (it->first->protection != mail::Protection::pgp_inline) {
      list.push(std::move(it->second));
      return true;
    }
    // Inline PGP: the text around the armor is plain, whoever wrote it. In an HTML
    // body, the HTML around it is shown as its text rendering, never as markup.
    std::string text = text_of_part(stored, p);
    if (p.content_type == "text/html")
      text = mail::html_to_text(text);
    Split around = split_around(text, kPgpMessageBegin, kPgpMessageEnd);
    list.add_text(p.id, std::move(around.before), mail::BodyFormat::plain);
    list.push(std::move(it->second));
    list.add_text(p.id, std::move(around.after), mail::BodyFormat::plain);
    return true;
  });
  for (std::size_t i = 0; i < decrypted.size(); ++i) {
    if (!placed[i])  // mail and reader disagree on ids: a bug, but nothing is lost
      view.segments.push_back(std::move(decrypted[i].second));
  }
  finish_signatures(view, found, outer.from.address, bindings);
  return view;
}

}  // namespace

Result<DecryptedView> decrypt(keys::KeyStore& store, const keys::UnlockedKey& key,
                              const mail::Message& message, const bindings::Lookup& bindings,
                              const ReadOptions& options) {
  return decrypt_once(store, key, message, bindings, options, nullptr);
}

Result<DecryptedWithPart> decrypt_part(keys::KeyStore& store, const keys::UnlockedKey& key,
                                       const mail::Message& message,
                                       const bindings::Lookup& bindings, std::string_view part_id,
                                       const ReadOptions& options) {
  auto colon = part_id.find(':');
  if (colon == std::string_view::npos || !valid_part_id(part_id.substr(0, colon)) ||
      !valid_part_id(part_id.substr(colon + 1)))
    return make_error(Errc::invalid_argument, "not a valid part id");
  PartWanted wanted{part_id.substr(0, colon), part_id.substr(colon + 1), std::nullopt};
  auto view = decrypt_once(store, key, message, bindings, options, &wanted);
  if (!view)
    return view.error();
  if (!wanted.found) {
    return make_error(Errc::not_found,
                      "the message has no encrypted part " + std::string(wanted.payload_id));
  }
  if (!*wanted.found)
    return wanted.found->error();
  // Only what the page offers as a decrypted attachment is released.
  bool offered = false;
  for (const auto& segment : view->segments) {
    for (const auto& a : segment.attachments)
      offered = offered || (a.source == PartSource::decrypted && a.id == part_id);
  }
  if (!offered)
    return make_error(Errc::not_found, "the decrypted message has no such attachment");
  return DecryptedWithPart{std::move(view).value(), std::move(*wanted.found).value()};
}

Result<mail::PartContent> decrypted_part(keys::KeyStore& store, const keys::UnlockedKey& key,
                                         const mail::Message& message, std::string_view part_id) {
  auto both = decrypt_part(store, key, message, bindings::None{}, part_id);
  if (!both)
    return both.error();
  return std::move(both->part);
}

Result<MessageView> verify_signed(keys::KeyStore& store, const mail::Message& message,
                                  const bindings::Lookup& bindings) {
  const mail::ParsedMessage& outer = message.parsed();
  if (mail::is_encrypted(outer.protection))
    return make_error(Errc::invalid_argument, "the message is encrypted: decrypt it to read it");
  if (!mail::is_signed(outer.protection))
    return make_error(Errc::not_found, "the message is not signed");
  MessageView view;
  view.protection = outer.protection;
  std::vector<FoundSignature> found;

  GMimeObject* root = root_of(mail::gmime_message(message));
  if (is_opaque_smime_signature(root)) {
    // The content is inside the signature: only CMS can release it.
    Entity e;
    unwrap_opaque(store, root, e);
    view.segments.push_back(segment_of(e, Segment::Kind::plain, "1", PartSource::signed_content));
    finish_signatures(view, e.signatures, outer.from.address, bindings);
    return view;
  }
  if (root != nullptr)
    check_multipart_signed(store, root, true, found);
  if (!found.empty()) {
    Segment s;
    s.part_id = outer.text_part_id.empty() ? "1" : outer.text_part_id;
    s.text = outer.text;
    s.format = outer.text_format;
    for (const auto& p : outer.parts) {
      if (p.is_attachment || p.role == mail::PartRole::encrypted_payload)
        s.attachments.push_back(attachment_of(message, p, PartSource::message));
    }
    view.segments.push_back(std::move(s));
    finish_signatures(view, found, outer.from.address, bindings);
    return view;
  }
  // Inline clearsigned PGP: the first text body part holding a signed block.
  const mail::Part* signed_part = nullptr;
  std::string text;
  for (const auto& p : outer.parts) {
    if (is_text_body(p) && p.content_type == "text/plain") {
      text = text_of_part(message, p);
      if (text.find(kPgpSignedBegin) != std::string::npos) {
        signed_part = &p;
        break;
      }
    }
  }
  if (signed_part == nullptr)
    return make_error(Errc::not_found, "the message carries no signature that can be checked");
  auto begin = text.find(kPgpSignedBegin);
  auto end = text.find(kPgpSignatureEnd, begin);
  std::string block = text.substr(
      begin, end == std::string::npos ? std::string::npos : end + kPgpSignatureEnd.size() - begin);
  auto verified = store.verify(keys::KeyType::openpgp, "", block + "\n");
  add_signatures(verified, keys::KeyType::openpgp, true, found);
  Segment signed_segment;
  signed_segment.part_id = signed_part->id;
  // Unverifiable: the block is shown as it is, as plain text with no claim.
  signed_segment.text = verified ? mail::decode_text(verified->content, "") : block;
  signed_segment.format = mail::BodyFormat::plain;
  view.segments = build_segments(message, [&](const mail::Part& p, SegmentList& list) {
    if (p.id != signed_part->id)
      return false;
    Split around = split_around(text, kPgpSignedBegin, kPgpSignatureEnd);
    list.add_text(p.id, std::move(around.before), mail::BodyFormat::plain);
    list.push(std::move(signed_segment));
    list.add_text(p.id, std::move(around.after), mail::BodyFormat::plain);
    return true;
  });
  finish_signatures(view, found, outer.from.address, bindings);
  return view;
}

Result<mail::PartContent> signed_part(keys::KeyStore& store, const mail::Message& message,
                                      std::string_view part_id) {
  if (!valid_part_id(part_id))
    return make_error(Errc::invalid_argument, "not a valid part id");
  GMimeObject* root = root_of(mail::gmime_message(message));
  if (!is_opaque_smime_signature(root))
    return make_error(Errc::not_found, "the message has no opaque S/MIME signature");
  Entity e;
  unwrap_opaque(store, root, e);
  return entity_part(e, part_id);
}

}  // namespace wmk::reader

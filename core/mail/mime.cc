#include "core/mail/mime.h"

#include <algorithm>
#include <cctype>
#include <mutex>

#include "core/mail/gmime_ref.h"
#include "core/mail/magic.h"
#include "core/util/ascii.h"

namespace wmk::mail {

// ---- GMime plumbing (declared in gmime_ref.h)

void ensure_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

GRef<GMimeStream> stream_over(std::string_view bytes) {
  return GRef<GMimeStream>(
      g_mime_stream_mem_new_with_buffer(bytes.data(), static_cast<gsize>(bytes.size())));
}

std::size_t header_block_size(std::string_view raw) {
  // The header ends at the first empty line (LF LF, or CR LF CR LF).
  std::size_t pos = 0;
  while (pos < raw.size()) {
    auto nl = raw.find('\n', pos);
    if (nl == std::string_view::npos)
      return raw.size();
    std::size_t next = nl + 1;
    if (next < raw.size() && raw[next] == '\n')
      return next + 1;
    if (next + 1 < raw.size() && raw[next] == '\r' && raw[next + 1] == '\n')
      return next + 2;
    pos = next;
  }
  return raw.size();
}

GRef<GMimeMessage> parse_gmime_message(std::string_view raw) {
  if (header_block_size(raw) > kMaxHeaderBytes)
    return GRef<GMimeMessage>(nullptr);
  ensure_gmime();
  GRef<GMimeStream> stream = stream_over(raw);
  GRef<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  return GRef<GMimeMessage>(g_mime_parser_construct_message(parser.get(), nullptr));
}

std::string decoded_content(GMimePart* part) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr)
    return {};
  GRef<GMimeStream> mem(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(content, mem.get());
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

namespace {

constexpr std::string_view kPgpMessageBegin = "-----BEGIN PGP MESSAGE-----";
constexpr std::string_view kPgpMessageEnd = "-----END PGP MESSAGE-----";
constexpr std::string_view kPgpSignedBegin = "-----BEGIN PGP SIGNED MESSAGE-----";
constexpr std::size_t kMaxFilenameBytes = 200;

std::string make_valid_utf8(std::string_view s) {
  if (g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr))
    return std::string(s);
  GChars fixed(g_utf8_make_valid(s.data(), static_cast<gssize>(s.size())));
  return fixed.str();
}

// Calls fn(code point, bytes) for each code point of valid UTF-8 text.
template <class Fn>
void for_each_char(const std::string& utf8, Fn fn) {
  const char* p = utf8.c_str();
  const char* end = p + utf8.size();
  while (p < end) {
    const char* next = g_utf8_next_char(p);
    if (next > end)
      next = end;
    fn(g_utf8_get_char(p), std::string_view(p, static_cast<std::size_t>(next - p)));
    p = next;
  }
}

bool is_control(gunichar c) {
  return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029;
}

bool is_bidi_control(gunichar c) {
  return c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

// Converts text in charset to UTF-8. Undeclared or lying charsets are common: bytes
// that are not valid in the declared charset are read as windows-1252, and failing
// that as ISO-8859-1, which maps every byte.
std::string to_utf8(std::string_view bytes, std::string_view charset) {
  std::string cs = util::ascii_lower(charset);
  bool utf8_like = cs.empty() || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii";
  if (utf8_like && g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr))
    return std::string(bytes);
  auto convert = [&](const char* from) -> std::optional<std::string> {
    gsize written = 0;
    GError* err = nullptr;
    char* out = g_convert(bytes.data(), static_cast<gssize>(bytes.size()), "UTF-8", from, nullptr,
                          &written, &err);
    if (out == nullptr) {
      g_clear_error(&err);
      return std::nullopt;
    }
    GChars owned(out);
    return std::string(out, written);
  };
  if (!utf8_like) {
    std::string name(charset);
    const char* iconv_name = g_mime_charset_iconv_name(name.c_str());
    if (auto s = convert(iconv_name != nullptr ? iconv_name : name.c_str()))
      return make_valid_utf8(*s);
  }
  if (auto s = convert("WINDOWS-1252"))
    return *s;
  if (auto s = convert("ISO-8859-1"))
    return *s;
  return make_valid_utf8(bytes);
}

std::string crlf_to_lf(std::string s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')
      continue;
    out += s[i];
  }
  return out;
}

std::string mime_type_of(GMimeObject* obj) {
  GMimeContentType* ct = g_mime_object_get_content_type(obj);
  if (ct == nullptr)
    return "text/plain";
  GChars type(g_mime_content_type_get_mime_type(ct));
  return util::ascii_lower(type.str());
}

std::string param(GMimeObject* obj, const char* name) {
  const char* v = g_mime_object_get_content_type_parameter(obj, name);
  return v != nullptr ? std::string(v) : std::string();
}

std::vector<Address> addresses(InternetAddressList* list) {
  std::vector<Address> out;
  if (list == nullptr)
    return out;
  int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* a = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_GROUP(a)) {
      auto members = addresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)));
      out.insert(out.end(), members.begin(), members.end());
    } else if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
      const char* name = internet_address_get_name(a);
      const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
      out.push_back(Address{clean_header_text(name != nullptr ? name : ""),
                            clean_header_text(addr != nullptr ? addr : "")});
    }
  }
  return out;
}

std::string child_id(const std::string& parent, int index) {
  std::string n = std::to_string(index + 1);
  return parent.empty() ? n : parent + "." + n;
}

struct Leaf {
  GMimeObject* object;  // owned by the message
  Part part;
  // For an encrypted_payload part: how it is encrypted.
  Protection encryption = Protection::none;
};

// Walks the MIME tree depth first, collecting leaf parts and the structural
// protection markers it meets.
// Multiparts nested deeper than this are not walked: no real message needs it, and a
// hostile one nested thousands deep would cost stack and quadratic part ids.
constexpr int kMaxMimeDepth = 64;

struct Walker {
  std::vector<Leaf> leaves;
  int depth = 0;
  std::optional<Protection> encryption;
  std::string encryption_part;
  std::optional<Protection> signature;

  void walk(GMimeObject* obj, const std::string& id, PartRole role) {
    if (GMIME_IS_MULTIPART(obj)) {
      walk_multipart(GMIME_MULTIPART(obj), id, role);
      return;
    }
    Leaf leaf{obj, Part{}, Protection::none};
    Part& p = leaf.part;
    p.id = id.empty() ? "1" : id;
    p.content_type = mime_type_of(obj);
    p.charset = clean_header_text(param(obj, "charset"));
    const char* disp = g_mime_object_get_disposition(obj);
    p.disposition = disp != nullptr ? util::ascii_lower(clean_header_text(disp)) : "";
    p.role = role;
    const char* name = nullptr;
    if (GMIME_IS_PART(obj)) {
      name = g_mime_part_get_filename(GMIME_PART(obj));
    } else {
      name = g_mime_object_get_content_disposition_parameter(obj, "filename");
      if (name == nullptr)
        name = g_mime_object_get_content_type_parameter(obj, "name");
    }
    p.filename = name != nullptr ? safe_filename(name) : "";
    if (p.content_type == "application/pkcs7-mime" ||
        p.content_type == "application/x-pkcs7-mime") {
      std::string smime_type = util::ascii_lower(param(obj, "smime-type"));
      if (smime_type == "signed-data") {
        p.role = PartRole::signature;
        if (!signature)
          signature = Protection::smime_signed;
      } else if (smime_type.empty() || smime_type == "enveloped-data" ||
                 smime_type == "authenveloped-data") {
        // A missing smime-type is read as enveloped-data, what smime.p7m usually is.
        p.role = PartRole::encrypted_payload;
        leaf.encryption = smime_type == "authenveloped-data" ? Protection::smime_auth_enveloped
                                                             : Protection::smime_enveloped;
        if (!encryption) {
          encryption = leaf.encryption;
          encryption_part = p.id;
        }
      }
    }
    if (p.role == PartRole::encrypted_payload && leaf.encryption == Protection::none)
      leaf.encryption = Protection::pgp_mime;  // the second part of multipart/encrypted
    p.is_attachment = p.role == PartRole::content &&
                      (p.disposition == "attachment" || !p.filename.empty() ||
                       (p.content_type != "text/plain" && p.content_type != "text/html"));
    leaves.push_back(std::move(leaf));
  }

  void walk_multipart(GMimeMultipart* mp, const std::string& id, PartRole role) {
    GMimeObject* obj = GMIME_OBJECT(mp);
    std::string type = mime_type_of(obj);
    std::string protocol = util::ascii_lower(param(obj, "protocol"));
    bool pgp_encrypted = type == "multipart/encrypted" && protocol == "application/pgp-encrypted";
    if (pgp_encrypted && !encryption) {
      encryption = Protection::pgp_mime;
      encryption_part = child_id(id, 1);
    }
    bool is_signed = type == "multipart/signed";
    if (is_signed && !signature) {
      if (protocol == "application/pgp-signature")
        signature = Protection::pgp_signed;
      else if (protocol == "application/pkcs7-signature" ||
               protocol == "application/x-pkcs7-signature")
        signature = Protection::smime_signed;
    }
    if (depth >= kMaxMimeDepth)
      return;
    ++depth;
    int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; ++i) {
      PartRole child_role = role;
      if (pgp_encrypted && i == 0)
        child_role = PartRole::crypto_control;
      else if (pgp_encrypted && i == 1)
        child_role = PartRole::encrypted_payload;
      else if (is_signed && i == 1)
        child_role = PartRole::signature;
      walk(g_mime_multipart_get_part(mp, i), child_id(id, i), child_role);
    }
    --depth;
  }
};

bool is_body_candidate(const Part& p) {
  return p.role == PartRole::content && !p.is_attachment;
}

std::string leaf_bytes(GMimeObject* obj) {
  if (GMIME_IS_PART(obj))
    return decoded_content(GMIME_PART(obj));
  if (GMIME_IS_MESSAGE_PART(obj)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    if (inner == nullptr)
      return {};
    GRef<GMimeStream> mem(g_mime_stream_mem_new());
    g_mime_object_write_to_stream(GMIME_OBJECT(inner), nullptr, mem.get());
    GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
    return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
  }
  return {};
}

std::uint64_t leaf_size(GMimeObject* obj) {
  GRef<GMimeStream> null(g_mime_stream_null_new());
  if (GMIME_IS_PART(obj)) {
    GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(obj));
    if (content == nullptr)
      return 0;
    g_mime_data_wrapper_write_to_stream(content, null.get());
  } else if (GMIME_IS_MESSAGE_PART(obj)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    if (inner == nullptr)
      return 0;
    g_mime_object_write_to_stream(GMIME_OBJECT(inner), nullptr, null.get());
  }
  return GMIME_STREAM_NULL(null.get())->written;
}

struct Tree {
  GRef<GMimeMessage> message;
  Walker walker;
};

Result<Tree> parse_tree(std::string_view raw) {
  if (header_block_size(raw) > kMaxHeaderBytes) {
    return make_error(Errc::unsupported, "the message header is larger than " +
                                             std::to_string(kMaxHeaderBytes >> 10) + " KiB");
  }
  Tree t;
  t.message = parse_gmime_message(raw);
  if (!t.message)
    return make_error(Errc::corrupt, "not a mail message: no header block could be parsed");
  GMimeObject* root = g_mime_message_get_mime_part(t.message.get());
  if (root != nullptr)
    t.walker.walk(root, "", PartRole::content);
  return t;
}

bool valid_part_id(std::string_view id) {
  if (id.empty() || id.size() > 64 || id.front() == '.' || id.back() == '.')
    return false;
  char prev = '.';
  for (char c : id) {
    if (c == '.' && prev == '.')
      return false;
    if (c != '.' && (c < '0' || c > '9'))
      return false;
    prev = c;
  }
  return true;
}

// The armored block from BEGIN PGP MESSAGE to the end of the END line, or "".
std::string armored_block(std::string_view text) {
  auto begin = text.find(kPgpMessageBegin);
  if (begin == std::string_view::npos)
    return {};
  auto end = text.find(kPgpMessageEnd, begin);
  if (end == std::string_view::npos)
    return std::string(text.substr(begin));
  end += kPgpMessageEnd.size();
  auto eol = text.find('\n', end);
  end = eol == std::string_view::npos ? text.size() : eol + 1;
  return std::string(text.substr(begin, end - begin));
}

}  // namespace

// ---- public API

const char* protection_name(Protection p) {
  switch (p) {
    case Protection::none:
      return "none";
    case Protection::pgp_mime:
      return "pgp_mime";
    case Protection::pgp_inline:
      return "pgp_inline";
    case Protection::smime_enveloped:
      return "smime_enveloped";
    case Protection::smime_auth_enveloped:
      return "smime_auth_enveloped";
    case Protection::smime_signed:
      return "smime_signed";
    case Protection::pgp_signed:
      return "pgp_signed";
  }
  return "none";
}

bool is_encrypted(Protection p) {
  return p == Protection::pgp_mime || p == Protection::pgp_inline ||
         p == Protection::smime_enveloped || p == Protection::smime_auth_enveloped;
}

bool is_signed(Protection p) {
  return p == Protection::smime_signed || p == Protection::pgp_signed;
}

std::string Address::display() const {
  if (name.empty())
    return address;
  if (address.empty())
    return name;
  return name + " <" + address + ">";
}

bool ParsedMessage::has_attachments() const {
  return std::any_of(parts.begin(), parts.end(), [](const Part& p) { return p.is_attachment; });
}

std::string decode_text(std::string_view bytes, std::string_view charset) {
  return crlf_to_lf(to_utf8(bytes, charset));
}

std::string clean_header_text(std::string_view text) {
  std::string valid = make_valid_utf8(text);
  std::string out;
  out.reserve(valid.size());
  bool pending_space = false;
  for_each_char(valid, [&](gunichar c, std::string_view bytes) {
    if (is_control(c) || c == ' ') {
      pending_space = !out.empty();
      return;
    }
    if (pending_space)
      out += ' ';
    pending_space = false;
    out.append(bytes);
  });
  return out;
}

std::string safe_filename(std::string_view name) {
  std::string valid = make_valid_utf8(name);
  auto slash = valid.find_last_of("/\\");
  if (slash != std::string::npos)
    valid.erase(0, slash + 1);
  std::string kept;
  for_each_char(valid, [&](gunichar c, std::string_view bytes) {
    if (!is_control(c) && !is_bidi_control(c))
      kept.append(bytes);
  });
  auto strip_front = kept.find_first_not_of(". ");
  kept.erase(0, strip_front == std::string::npos ? kept.size() : strip_front);
  while (!kept.empty() && (kept.back() == '.' || kept.back() == ' '))
    kept.pop_back();
  if (kept.size() > kMaxFilenameBytes) {
    std::size_t cut = kMaxFilenameBytes;
    while (cut > 0 && (static_cast<unsigned char>(kept[cut]) & 0xc0) == 0x80)
      --cut;  // do not split a UTF-8 sequence
    kept.resize(cut);
  }
  return kept;
}

Result<ParsedMessage> parse_message(std::string_view raw, ParseDepth depth) {
  auto tree = parse_tree(raw);
  if (!tree)
    return tree.error();
  GMimeMessage* msg = tree->message.get();
  Walker& w = tree->walker;

  ParsedMessage m;
  auto from = addresses(g_mime_message_get_from(msg));
  if (!from.empty())
    m.from = from.front();
  m.to = addresses(g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_TO));
  m.cc = addresses(g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_CC));
  const char* subject = g_mime_message_get_subject(msg);
  m.subject = clean_header_text(subject != nullptr ? subject : "");
  if (GDateTime* date = g_mime_message_get_date(msg))
    m.date = g_date_time_to_unix(date);
  const char* mid = g_mime_message_get_message_id(msg);
  m.message_id = clean_header_text(mid != nullptr ? mid : "");

  // Inline PGP: the armor in a text/plain body part.
  std::optional<Protection> inline_protection;
  for (const Leaf& leaf : w.leaves) {
    if (!is_body_candidate(leaf.part) || leaf.part.content_type != "text/plain")
      continue;
    std::string bytes = leaf_bytes(leaf.object);
    if (bytes.find(kPgpMessageBegin) != std::string::npos) {
      inline_protection = Protection::pgp_inline;
      break;
    }
    if (!inline_protection && bytes.find(kPgpSignedBegin) != std::string::npos)
      inline_protection = Protection::pgp_signed;
  }
  if (w.encryption)
    m.protection = *w.encryption;
  else if (inline_protection == Protection::pgp_inline)
    m.protection = Protection::pgp_inline;
  else if (w.signature)
    m.protection = *w.signature;
  else if (inline_protection)
    m.protection = *inline_protection;

  if (depth == ParseDepth::full) {
    for (Leaf& leaf : w.leaves)
      leaf.part.size = leaf_size(leaf.object);
    const Leaf* body = nullptr;
    for (const char* wanted : {"text/plain", "text/html"}) {
      for (const Leaf& leaf : w.leaves) {
        if (is_body_candidate(leaf.part) && leaf.part.content_type == wanted) {
          body = &leaf;
          break;
        }
      }
      if (body != nullptr)
        break;
    }
    if (body != nullptr) {
      m.text = crlf_to_lf(to_utf8(leaf_bytes(body->object), body->part.charset));
      m.text_format = body->part.content_type == "text/html" ? BodyFormat::html : BodyFormat::plain;
      m.text_part_id = body->part.id;
    }
  }
  m.parts.reserve(w.leaves.size());
  for (Leaf& leaf : w.leaves)
    m.parts.push_back(std::move(leaf.part));
  return m;
}

Result<PartContent> part_content(std::string_view raw, std::string_view part_id) {
  if (!valid_part_id(part_id))
    return make_error(Errc::invalid_argument, "not a valid part id");
  auto tree = parse_tree(raw);
  if (!tree)
    return tree.error();
  for (const Leaf& leaf : tree->walker.leaves) {
    if (leaf.part.id != part_id)
      continue;
    PartContent out;
    out.bytes = leaf_bytes(leaf.object);
    out.sniffed_type = sniff_mime_type(out.bytes);
    out.declared_type = leaf.part.content_type;
    out.filename = leaf.part.filename.empty() ? "part-" + leaf.part.id : leaf.part.filename;
    return out;
  }
  return make_error(Errc::not_found, "the message has no part " + std::string(part_id));
}

Result<std::vector<EncryptedPayload>> encrypted_payloads(std::string_view raw) {
  auto tree = parse_tree(raw);
  if (!tree)
    return tree.error();
  const Walker& w = tree->walker;
  std::vector<EncryptedPayload> out;
  for (const Leaf& leaf : w.leaves) {
    if (leaf.part.role == PartRole::encrypted_payload) {
      out.push_back(EncryptedPayload{leaf.encryption, leaf.part.id, leaf_bytes(leaf.object)});
      continue;
    }
    if (!is_body_candidate(leaf.part) || leaf.part.content_type != "text/plain")
      continue;
    std::string block = armored_block(leaf_bytes(leaf.object));
    if (!block.empty())
      out.push_back(EncryptedPayload{Protection::pgp_inline, leaf.part.id, std::move(block)});
  }
  if (out.empty() && w.encryption) {
    return make_error(Errc::corrupt, std::string("the ") + protection_name(*w.encryption) +
                                         " message lacks its encrypted part");
  }
  if (out.empty())
    return make_error(Errc::not_found, "the message is not encrypted");
  return out;
}

Result<EncryptedPayload> encrypted_payload(std::string_view raw) {
  auto all = encrypted_payloads(raw);
  if (!all)
    return all.error();
  return std::move(all->front());
}

}  // namespace wmk::mail

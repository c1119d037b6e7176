#include "core/mail/mime.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>

#include "core/mail/gmime_ref.h"
#include "core/mail/magic.h"
#include "core/mail/sanitize.h"
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

namespace {
std::atomic<std::uint64_t> parses{0};
}  // namespace

std::uint64_t parse_count() {
  return parses.load(std::memory_order_relaxed);
}

GRef<GMimeMessage> parse_gmime_message(std::string_view raw) {
  if (header_block_size(raw) > kMaxHeaderBytes)
    return GRef<GMimeMessage>(nullptr);
  ensure_gmime();
  parses.fetch_add(1, std::memory_order_relaxed);
  GRef<GMimeStream> stream = stream_over(raw);
  GRef<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  return GRef<GMimeMessage>(g_mime_parser_construct_message(parser.get(), nullptr));
}

std::string decoded_content(GMimePart* part) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr)
    return {};
  // Decoding never makes content longer than its encoded form: room for that once, so
  // a large attachment is not copied through a dozen doublings.
  const gint64 encoded = g_mime_stream_length(g_mime_data_wrapper_get_stream(content));
  GRef<GMimeStream> mem(g_mime_stream_mem_new_with_byte_array(
      g_byte_array_sized_new(encoded > 0 ? static_cast<guint>(encoded) : 0)));
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

bool blank_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

std::string trimmed(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// The PGP/MIME message that Exchange and Outlook.com re-wrap (docs/security.md,
// "Exchange-mangled PGP/MIME"), in exactly the shape they make and Thunderbird repairs:
// a multipart/mixed of
//   [an empty text/plain or text/html part,]
//   application/pgp-encrypted holding nothing or "Version: 1",
//   application/octet-stream named encrypted.asc holding one armored PGP message,
// and nothing else. Any other part beside them (clear text an attacker could add) and
// the shape is not repaired: the message is read as the multipart/mixed it claims to be.
bool is_exchange_mangled(GMimeMultipart* mp) {
  if (mime_type_of(GMIME_OBJECT(mp)) != "multipart/mixed")
    return false;
  const int n = g_mime_multipart_get_count(mp);
  if (n != 2 && n != 3)
    return false;
  for (int i = 0; i < n; ++i)
    if (!GMIME_IS_PART(g_mime_multipart_get_part(mp, i)))
      return false;
  auto part = [&](int i) { return GMIME_PART(g_mime_multipart_get_part(mp, i)); };
  auto type = [&](int i) { return mime_type_of(g_mime_multipart_get_part(mp, i)); };
  if (n == 3) {
    if ((type(0) != "text/plain" && type(0) != "text/html") ||
        !blank_text(decoded_content(part(0))))
      return false;
  }
  if (type(n - 2) != "application/pgp-encrypted")
    return false;
  const std::string version = trimmed(decoded_content(part(n - 2)));
  if (!version.empty() && version != "Version: 1")
    return false;
  if (type(n - 1) != "application/octet-stream")
    return false;
  const char* name = g_mime_part_get_filename(part(n - 1));
  if (name == nullptr || util::ascii_lower(name) != "encrypted.asc")
    return false;
  const std::string payload = trimmed(decoded_content(part(n - 1)));
  return payload.rfind(kPgpMessageBegin, 0) == 0 &&
         payload.find(kPgpMessageBegin, 1) == std::string::npos &&
         payload.size() >= kPgpMessageEnd.size() &&
         payload.compare(payload.size() - kPgpMessageEnd.size(), kPgpMessageEnd.size(),
                         kPgpMessageEnd) == 0;
}

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
    if (id.empty() && is_exchange_mangled(mp)) {
      // Read as the multipart/encrypted it was: nothing but the ciphertext is shown.
      const int n = g_mime_multipart_get_count(mp);
      if (!encryption) {
        encryption = Protection::pgp_mime;
        encryption_part = child_id(id, n - 1);
      }
      for (int i = 0; i < n; ++i)
        walk(g_mime_multipart_get_part(mp, i), child_id(id, i),
             i == n - 1 ? PartRole::encrypted_payload : PartRole::crypto_control);
      return;
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

// The value of the first header called name in obj's own header block, or nullptr.
// GMime's message accessors keep the last of repeated headers; an answer must refer
// to the first, as every other reader of the message does.
const char* first_header(GMimeObject* obj, const char* name) {
  GMimeHeaderList* list = g_mime_object_get_header_list(obj);
  if (list == nullptr)
    return nullptr;
  int n = g_mime_header_list_get_count(list);
  for (int i = 0; i < n; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    const char* hn = g_mime_header_get_name(h);
    if (hn != nullptr && g_ascii_strcasecmp(hn, name) == 0)
      return g_mime_header_get_value(h);
  }
  return nullptr;
}

// The first mailto: address of a List-Post value (RFC 2369 §3.4), or "".
std::string list_post_address(const char* value) {
  if (value == nullptr)
    return {};
  const std::string v = util::ascii_lower(value);
  const std::string_view original(value);
  std::size_t at = 0;
  while ((at = v.find('<', at)) != std::string::npos) {
    ++at;
    std::size_t start = v.find_first_not_of(" \t", at);
    if (start == std::string::npos || v.compare(start, 7, "mailto:") != 0)
      continue;
    start += 7;
    std::size_t end = v.find_first_of(">?", start);
    if (end == std::string::npos)
      return {};
    return clean_header_text(original.substr(start, end - start));
  }
  return {};
}

// An armored block as the text rendering of HTML gives it (lines indented, blank
// lines between paragraphs) in the form gpg reads: each line trimmed, the armor
// headers after BEGIN, one blank line, the base64 lines, END.
std::string normalized_armor(std::string_view block) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= block.size()) {
    std::size_t nl = block.find('\n', start);
    std::size_t end = nl == std::string_view::npos ? block.size() : nl;
    std::string line = trimmed(block.substr(start, end - start));
    if (!line.empty())
      lines.push_back(std::move(line));
    if (nl == std::string_view::npos)
      break;
    start = nl + 1;
  }
  if (lines.size() < 2)
    return {};
  std::string out = lines.front() + "\n";
  std::size_t i = 1;
  for (; i + 1 < lines.size() && lines[i].find(": ") != std::string::npos; ++i)
    out += lines[i] + "\n";
  out += "\n";
  for (; i < lines.size(); ++i)
    out += lines[i] + "\n";
  return out;
}

// A text/html body of a message without any text/plain body: Thunderbird looks for
// inline PGP in it too, and so does this (its text rendering).
bool html_only_body(const std::vector<Leaf>& leaves, const Leaf& leaf) {
  if (!is_body_candidate(leaf.part) || leaf.part.content_type != "text/html")
    return false;
  return std::none_of(leaves.begin(), leaves.end(), [](const Leaf& l) {
    return is_body_candidate(l.part) && l.part.content_type == "text/plain";
  });
}

}  // namespace

struct Message::Tree {
  GRef<GMimeMessage> message;
  Walker walker;
};

GMimeMessage* gmime_message(const Message& m) {
  return m.tree().message.get();
}

namespace {

Result<std::unique_ptr<Message::Tree>> parse_tree(std::string_view raw) {
  if (header_block_size(raw) > kMaxHeaderBytes) {
    return make_error(Errc::unsupported, "the message header is larger than " +
                                             std::to_string(kMaxHeaderBytes >> 10) + " KiB");
  }
  auto t = std::make_unique<Message::Tree>();
  t->message = parse_gmime_message(raw);
  if (!t->message)
    return make_error(Errc::corrupt, "not a mail message: no header block could be parsed");
  GMimeObject* root = g_mime_message_get_mime_part(t->message.get());
  if (root != nullptr)
    t->walker.walk(root, "", PartRole::content);
  return t;
}

}  // namespace

// ---- public API

std::string html_armored_block(std::string_view html) {
  std::string block = armored_block(html_to_text(html));
  if (block.empty())
    return {};
  return normalized_armor(block);
}

std::vector<std::string> message_ids(const char* value) {
  std::vector<std::string> out;
  if (value == nullptr)
    return out;
  GMimeReferences* refs = g_mime_references_parse(nullptr, value);
  if (refs == nullptr)
    return out;
  int n = g_mime_references_length(refs);
  for (int i = 0; i < n; ++i) {
    const char* id = g_mime_references_get_message_id(refs, i);
    if (id != nullptr && *id != '\0')
      out.push_back(clean_header_text(id));
  }
  g_mime_references_free(refs);
  return out;
}

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

Message::Message(std::unique_ptr<Tree> tree, ParsedMessage parsed)
    : tree_(std::move(tree)), parsed_(std::move(parsed)) {}
Message::Message(Message&&) noexcept = default;
Message& Message::operator=(Message&&) noexcept = default;
Message::~Message() = default;

Result<Message> Message::parse(std::string_view raw, ParseDepth depth) {
  auto tree = parse_tree(raw);
  if (!tree)
    return tree.error();
  GMimeMessage* msg = (*tree)->message.get();
  Walker& w = (*tree)->walker;

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
  GMimeObject* headers = GMIME_OBJECT(msg);
  const char* mid_value = first_header(headers, "Message-ID");
  auto mids = message_ids(mid_value);
  if (!mids.empty()) {
    m.message_id = mids.front();
  } else if (mid_value != nullptr) {
    GChars bare(g_mime_utils_decode_message_id(mid_value));
    m.message_id = clean_header_text(bare.str());
  }
  m.reply_to = addresses(g_mime_message_get_reply_to(msg));
  m.in_reply_to = message_ids(first_header(headers, "In-Reply-To"));
  m.references = message_ids(first_header(headers, "References"));
  m.list_post = list_post_address(first_header(headers, "List-Post"));

  // Inline PGP: the armor in a text/plain body part, or in the HTML body of a
  // message without a plain one (a cheap look here; encrypted_payloads reads it).
  std::optional<Protection> inline_protection;
  for (const Leaf& leaf : w.leaves) {
    if (html_only_body(w.leaves, leaf) &&
        leaf_bytes(leaf.object).find(kPgpMessageBegin) != std::string::npos) {
      inline_protection = Protection::pgp_inline;
      break;
    }
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
  for (const Leaf& leaf : w.leaves)
    m.parts.push_back(leaf.part);
  return Message(std::move(tree).value(), std::move(m));
}

Result<ParsedMessage> parse_message(std::string_view raw, ParseDepth depth) {
  auto message = Message::parse(raw, depth);
  if (!message)
    return message.error();
  return message->parsed();
}

Result<PartContent> part_content(std::string_view raw, std::string_view part_id) {
  if (!valid_part_id(part_id))
    return make_error(Errc::invalid_argument, "not a valid part id");
  auto message = Message::parse(raw, ParseDepth::structure);
  if (!message)
    return message.error();
  return message->part_content(part_id);
}

Result<PartContent> Message::part_content(std::string_view part_id) const {
  if (!valid_part_id(part_id))
    return make_error(Errc::invalid_argument, "not a valid part id");
  for (const Leaf& leaf : tree_->walker.leaves) {
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

Result<std::vector<EncryptedPayload>> Message::encrypted_payloads() const {
  const Walker& w = tree_->walker;
  std::vector<EncryptedPayload> out;
  for (const Leaf& leaf : w.leaves) {
    if (leaf.part.role == PartRole::encrypted_payload) {
      out.push_back(EncryptedPayload{leaf.encryption, leaf.part.id, leaf_bytes(leaf.object)});
      continue;
    }
    if (html_only_body(w.leaves, leaf)) {
      std::string bytes = leaf_bytes(leaf.object);
      if (bytes.find(kPgpMessageBegin) == std::string::npos)
        continue;
      std::string block = html_armored_block(decode_text(bytes, leaf.part.charset));
      if (!block.empty())
        out.push_back(EncryptedPayload{Protection::pgp_inline, leaf.part.id, std::move(block)});
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
  auto message = Message::parse(raw, ParseDepth::structure);
  if (!message)
    return message.error();
  auto all = message->encrypted_payloads();
  if (!all)
    return all.error();
  return std::move(all->front());
}

}  // namespace wmk::mail

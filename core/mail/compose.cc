#include "core/mail/compose.h"

#include <algorithm>
#include <cctype>
#include <memory>

#include <openssl/evp.h>

#include "core/mail/gmime_ref.h"
#include "core/mail/magic.h"
#include "core/util/ascii.h"
#include "core/util/encoding.h"

namespace wmk::mail {

namespace {

// Longest line of a text body sent as 7bit; longer lines go quoted-printable.
constexpr std::size_t kMax7bitLine = 76;
// Bytes of UTF-8 per RFC 2047 encoded-word we write ourselves (base64 of 45 bytes is 60
// characters; with "=?UTF-8?B?" and "?=" a word stays under the 75 allowed).
constexpr std::size_t kEncodedWordBytes = 45;
constexpr std::size_t kBase64LineChars = 76;

bool is_atext(char c) {
  if (std::isalnum(static_cast<unsigned char>(c)) != 0)
    return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

// A printable rendering of untrusted text for an error message: control bytes as
// \xNN, at most 80 bytes.
std::string quoted_for_error(std::string_view s) {
  std::string out = "\"";
  std::size_t n = 0;
  for (char c : s) {
    if (++n > 80) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

Error bad_address(std::string_view address, std::string_view why) {
  return make_error(Errc::invalid_argument,
                    "the address " + quoted_for_error(address) + " " + std::string(why));
}

// RFC 2047 B encoded-words for all of text (UTF-8), split on character boundaries.
// For text that holds something looking like an encoded-word ("=?"): GMime would
// write it as it is, and every reader would then decode it into something else.
std::string encode_all_words(std::string_view text) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = std::min(text.size(), pos + kEncodedWordBytes);
    // Back up to the start of a UTF-8 character.
    while (end > pos + 1 && end < text.size() &&
           (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
      --end;
    GChars b64(g_base64_encode(reinterpret_cast<const guchar*>(text.data() + pos), end - pos));
    if (!out.empty())
      out += ' ';
    out += "=?UTF-8?B?";
    out += b64.get();
    out += "?=";
    pos = end;
  }
  return out;
}

bool looks_encoded(std::string_view text) {
  return text.find("=?") != std::string_view::npos;
}

// GMimeFormatOptions is a boxed type, not a GObject: GRef cannot own it.
struct FormatOptionsFree {
  void operator()(GMimeFormatOptions* o) const { g_mime_format_options_free(o); }
};
using FormatOptions = std::unique_ptr<GMimeFormatOptions, FormatOptionsFree>;

FormatOptions canonical_options() {
  ensure_gmime();
  FormatOptions o(g_mime_format_options_new());
  g_mime_format_options_set_newline_format(o.get(), GMIME_NEWLINE_FORMAT_DOS);
  return o;
}

std::string object_to_string(GMimeObject* object) {
  FormatOptions options = canonical_options();
  GChars s(g_mime_object_to_string(object, options.get()));
  return s.str();
}

std::string base64_lines(std::string_view bytes) {
  GChars b64(g_base64_encode(reinterpret_cast<const guchar*>(bytes.data()), bytes.size()));
  std::string_view all(b64.get());
  std::string out;
  out.reserve(all.size() + all.size() / kBase64LineChars * 2 + 2);
  for (std::size_t i = 0; i < all.size(); i += kBase64LineChars) {
    out += all.substr(i, kBase64LineChars);
    out += "\r\n";
  }
  return out;
}

std::string new_boundary() {
  return "=_wmk_" + util::random_token(18);
}

// A boundary that does not occur in any of the parts.
std::string boundary_for(std::initializer_list<std::string_view> parts) {
  for (;;) {
    std::string b = new_boundary();
    bool clash = false;
    for (std::string_view p : parts)
      clash = clash || p.find(b) != std::string_view::npos;
    if (!clash)
      return b;
  }
}

// Text body as 7bit if it is short-lined plain ASCII that no transport will touch:
// no trailing white space (stripped by some MTAs), no line starting "From " (mangled
// by mbox), no control characters. Anything else goes quoted-printable.
bool fits_7bit(std::string_view text) {
  std::size_t line_start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '\n') {
      std::string_view line = text.substr(line_start, i - line_start);
      if (line.size() > kMax7bitLine)
        return false;
      if (!line.empty() && (line.back() == ' ' || line.back() == '\t'))
        return false;
      if (line.starts_with("From "))
        return false;
      line_start = i + 1;
      continue;
    }
    auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x80 || (u < 0x20 && text[i] != '\t') || u == 0x7f)
      return false;
  }
  return true;
}

// Quoted-printable by GMime, then "From " at a line start written as "=46rom ":
// GMime's encoder leaves it, and an mbox on the way would turn it into ">From ".
std::string quoted_printable(std::string_view text) {
  GMimeEncoding enc;
  g_mime_encoding_init_encode(&enc, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
  std::string out(g_mime_encoding_outlen(&enc, text.size()) + 16, '\0');
  std::size_t n = g_mime_encoding_flush(&enc, text.data(), text.size(), out.data());
  out.resize(n);
  std::string fixed;
  fixed.reserve(out.size() + 16);
  std::size_t line_start = 0;
  while (line_start < out.size()) {
    std::size_t nl = out.find('\n', line_start);
    std::size_t end = nl == std::string::npos ? out.size() : nl + 1;
    std::string_view line(out.data() + line_start, end - line_start);
    if (line.starts_with("From ")) {
      fixed += "=46";
      line.remove_prefix(1);
    }
    fixed += line;
    line_start = end;
  }
  return fixed;
}

GRef<GMimeDataWrapper> wrapper_over(std::string_view bytes, GMimeContentEncoding encoding) {
  GRef<GMimeStream> stream = stream_over(bytes);
  return GRef<GMimeDataWrapper>(g_mime_data_wrapper_new_with_stream(stream.get(), encoding));
}

// Sets a parameter's charset to UTF-8 so RFC 2231 names are always written in UTF-8.
void params_in_utf8(GMimeParamList* list) {
  if (list == nullptr)
    return;
  int n = g_mime_param_list_length(list);
  for (int i = 0; i < n; ++i) {
    GMimeParam* p = g_mime_param_list_get_parameter_at(list, i);
    if (p != nullptr)
      g_mime_param_set_charset(p, "UTF-8");
  }
}

GRef<GMimeObject> text_part(std::string_view body) {
  GMimeTextPart* text = g_mime_text_part_new_with_subtype("plain");
  GRef<GMimeObject> owner(GMIME_OBJECT(text));
  g_mime_text_part_set_charset(text, "utf-8");
  GMimePart* p = GMIME_PART(text);
  if (fits_7bit(body)) {
    GRef<GMimeDataWrapper> w = wrapper_over(body, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(p, w.get());
    g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_7BIT);
  } else {
    std::string qp = quoted_printable(body);
    GRef<GMimeDataWrapper> w = wrapper_over(qp, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
    g_mime_part_set_content(p, w.get());
    g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
  }
  return owner;
}

GRef<GMimeObject> attachment_part(const Attachment& a) {
  std::string type = a.content_type;
  auto slash = type.find('/');
  std::string major = slash == std::string::npos ? "" : type.substr(0, slash);
  std::string minor = slash == std::string::npos ? "" : type.substr(slash + 1);
  auto token = [](const std::string& s) {
    return !s.empty() && s.size() <= 127 &&
           std::all_of(s.begin(), s.end(), [](char c) { return is_atext(c) || c == '.'; });
  };
  if (!token(major) || !token(minor)) {
    major = "application";
    minor = "octet-stream";
  }
  GMimePart* p = g_mime_part_new_with_type(major.c_str(), minor.c_str());
  GRef<GMimeObject> owner(GMIME_OBJECT(p));
  g_mime_object_set_disposition(owner.get(), GMIME_DISPOSITION_ATTACHMENT);
  std::string name = safe_filename(a.filename);
  if (!name.empty()) {
    g_mime_part_set_filename(p, name.c_str());
    params_in_utf8(g_mime_content_type_get_parameters(g_mime_object_get_content_type(owner.get())));
    GMimeContentDisposition* d = g_mime_object_get_content_disposition(owner.get());
    if (d != nullptr)
      params_in_utf8(g_mime_content_disposition_get_parameters(d));
  }
  GRef<GMimeDataWrapper> w = wrapper_over(a.bytes, GMIME_CONTENT_ENCODING_DEFAULT);
  g_mime_part_set_content(p, w.get());
  g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_BASE64);
  return owner;
}

InternetAddress* new_mailbox(const Address& a) {
  const std::string& name = a.name;
  InternetAddress* mb;
  if (looks_encoded(name)) {
    mb = internet_address_mailbox_new(encode_all_words(name).c_str(), a.address.c_str());
  } else {
    mb = internet_address_mailbox_new(name.empty() ? nullptr : name.c_str(), a.address.c_str());
    internet_address_set_charset(mb, "UTF-8");
  }
  return mb;
}

Status validate_addresses(const std::vector<Address>& list, std::string_view field) {
  for (const Address& a : list) {
    if (auto st = validate_address(a.address); !st)
      return make_error(Errc::invalid_argument, std::string(field) + ": " + st.error().message);
    if (auto st = validate_header_text(a.name, "the name of " + a.address); !st)
      return make_error(Errc::invalid_argument, std::string(field) + ": " + st.error().message);
  }
  return {};
}

}  // namespace

// ---- addresses

Status validate_address(std::string_view address) {
  if (address.empty())
    return make_error(Errc::invalid_argument, "an address is empty");
  if (address.size() > kMaxAddressBytes)
    return bad_address(address, "is longer than 254 bytes");
  for (char c : address) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f)
      return bad_address(address, "contains a control character or line break");
    if (u >= 0x80)
      return bad_address(address, "contains non-ASCII characters (not supported)");
    if (c == ' ')
      return bad_address(address, "contains a space");
  }
  if (address.front() == '-')
    return bad_address(address, "starts with '-'");
  auto at = address.rfind('@');
  if (at == std::string_view::npos || address.find('@') != at)
    return bad_address(address, "must contain exactly one '@'");
  std::string_view local = address.substr(0, at);
  std::string_view domain = address.substr(at + 1);
  if (local.empty() || local.size() > kMaxLocalPartBytes)
    return bad_address(address, "has an empty or too long local part");
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return bad_address(address, "has a misplaced '.' in its local part");
  for (char c : local) {
    if (!is_atext(c) && c != '.')
      return bad_address(address, std::string("contains '") + c + "' in its local part");
  }
  if (domain.empty() || domain.size() > 253)
    return bad_address(address, "has no valid domain");
  std::size_t label_start = 0;
  for (std::size_t i = 0; i <= domain.size(); ++i) {
    if (i < domain.size() && domain[i] != '.') {
      char c = domain[i];
      if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-')
        return bad_address(address, std::string("contains '") + c + "' in its domain");
      continue;
    }
    std::string_view label = domain.substr(label_start, i - label_start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return bad_address(address, "has an invalid domain");
    label_start = i + 1;
  }
  return {};
}

Status validate_header_text(std::string_view text, std::string_view what) {
  if (text.size() > kMaxHeaderTextBytes)
    return make_error(Errc::invalid_argument, std::string(what) + " is too long");
  if (!g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr))
    return make_error(Errc::invalid_argument, std::string(what) + " is not valid UTF-8");
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    gunichar c = g_utf8_get_char(p);
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029)
      return make_error(Errc::invalid_argument,
                        std::string(what) + " contains a line break or control character");
    p = g_utf8_next_char(p);
  }
  return {};
}

Result<std::vector<Address>> parse_address_field(std::string_view field) {
  ensure_gmime();
  for (char c : field) {
    if (c == '\r' || c == '\n' || c == '\0')
      return make_error(Errc::invalid_argument,
                        "an address field contains a line break: " + quoted_for_error(field));
  }
  // Split on ',' and ';' outside quotes and angle brackets.
  std::vector<std::string> entries;
  std::string current;
  bool in_quote = false;
  bool escaped = false;
  int angle = 0;
  for (char c : field) {
    if (in_quote) {
      current += c;
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_quote = false;
      continue;
    }
    if (c == '"')
      in_quote = true;
    else if (c == '<')
      ++angle;
    else if (c == '>')
      --angle;
    else if ((c == ',' || c == ';') && angle <= 0) {
      entries.push_back(std::move(current));
      current.clear();
      angle = 0;
      continue;
    }
    current += c;
  }
  if (in_quote)
    return make_error(Errc::invalid_argument,
                      "an address field has an unclosed quote: " + quoted_for_error(field));
  entries.push_back(std::move(current));

  std::vector<Address> out;
  for (const std::string& raw : entries) {
    std::string_view entry = util::trim_blanks(raw);
    if (entry.empty())
      continue;
    Address a;
    if (entry.back() == '>') {
      auto lt = entry.rfind('<');
      if (lt == std::string_view::npos)
        return make_error(Errc::invalid_argument, "not an address: " + quoted_for_error(entry));
      a.address = std::string(util::trim_blanks(entry.substr(lt + 1, entry.size() - lt - 2)));
      std::string_view name = util::trim_blanks(entry.substr(0, lt));
      if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
        // A quoted string: unescape, no decoding (RFC 2047 section 5).
        std::string_view inner = name.substr(1, name.size() - 2);
        bool esc = false;
        for (char c : inner) {
          if (esc) {
            a.name += c;
            esc = false;
          } else if (c == '\\') {
            esc = true;
          } else if (c == '"') {
            return make_error(Errc::invalid_argument,
                              "a name has a stray quote: " + quoted_for_error(entry));
          } else {
            a.name += c;
          }
        }
      } else {
        if (name.find_first_of("\"<>") != std::string_view::npos)
          return make_error(Errc::invalid_argument,
                            "a name needs quotes: " + quoted_for_error(entry));
        std::string phrase(name);
        GChars decoded(g_mime_utils_header_decode_phrase(nullptr, phrase.c_str()));
        a.name = decoded.str();
      }
      if (auto st = validate_header_text(a.name, "the name " + quoted_for_error(a.name)); !st)
        return st.error();
    } else {
      a.address = std::string(entry);
    }
    if (auto st = validate_address(a.address); !st)
      return st.error();
    out.push_back(std::move(a));
    if (out.size() > kMaxRecipients)
      return make_error(Errc::invalid_argument,
                        "more than " + std::to_string(kMaxRecipients) + " addresses");
  }
  return out;
}

std::string format_address_field(const std::vector<Address>& addresses) {
  std::string out;
  for (const Address& a : addresses) {
    if (!out.empty())
      out += ", ";
    if (a.name.empty()) {
      out += a.address;
      continue;
    }
    // Quoted when it holds an RFC 5322 special, so that parse_address_field reads it back.
    bool quote = a.name.find_first_of("()<>[]:;@\\,.\"=") != std::string::npos ||
                 a.name.front() == ' ' || a.name.back() == ' ';
    if (quote) {
      out += '"';
      for (char c : a.name) {
        if (c == '"' || c == '\\')
          out += '\\';
        out += c;
      }
      out += '"';
    } else {
      out += a.name;
    }
    out += " <" + a.address + ">";
  }
  return out;
}

Attachment make_attachment(std::string_view filename, std::string bytes) {
  Attachment a;
  a.filename = safe_filename(filename);
  a.content_type = sniff_mime_type(bytes);
  a.bytes = std::move(bytes);
  return a;
}

const char* technology_name(Technology t) {
  return t == Technology::smime ? "smime" : "openpgp";
}

const char* decrypted_quote_name(DecryptedQuote q) {
  switch (q) {
    case DecryptedQuote::none:
      return "none";
    case DecryptedQuote::to_signer:
      return "signer";
    case DecryptedQuote::confirmed:
      break;
  }
  return "confirmed";
}

std::optional<DecryptedQuote> decrypted_quote_from(std::string_view text) {
  for (auto q : {DecryptedQuote::none, DecryptedQuote::to_signer, DecryptedQuote::confirmed}) {
    if (text == decrypted_quote_name(q))
      return q;
  }
  return std::nullopt;
}

// ---- the draft

bool valid_message_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxAddressBytes)
    return false;
  for (char c : id) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' || c == '(' ||
        c == ')' || c == ',' || c == ';')
      return false;
  }
  return true;
}

std::vector<std::string> recipients(const Draft& draft) {
  std::vector<std::string> out;
  std::vector<std::string> seen;
  for (const auto* list : {&draft.to, &draft.cc}) {
    for (const Address& a : *list) {
      std::string key = util::ascii_lower(a.address);
      if (std::find(seen.begin(), seen.end(), key) != seen.end())
        continue;
      seen.push_back(key);
      out.push_back(a.address);
    }
  }
  return out;
}

Status validate_draft(const Draft& draft, DraftCheck check) {
  if (auto st = validate_address(draft.from.address); !st)
    return make_error(Errc::invalid_argument, "From: " + st.error().message);
  if (auto st = validate_header_text(draft.from.name, "the sender's name"); !st)
    return st;
  WMK_TRY(validate_addresses(draft.to, "To"));
  WMK_TRY(validate_addresses(draft.cc, "Cc"));
  if (draft.to.size() + draft.cc.size() > kMaxRecipients)
    return make_error(Errc::invalid_argument,
                      "more than " + std::to_string(kMaxRecipients) + " recipients");
  if (check == DraftCheck::to_send && draft.to.empty() && draft.cc.empty())
    return make_error(Errc::invalid_argument, "the message has no recipient");
  WMK_TRY(validate_header_text(draft.subject, "the subject"));
  if (!draft.in_reply_to.empty() && !valid_message_id(draft.in_reply_to))
    return make_error(Errc::invalid_argument, "In-Reply-To is not a valid message id");
  for (const std::string& id : draft.references) {
    if (!valid_message_id(id))
      return make_error(Errc::invalid_argument, "References holds an invalid message id");
  }
  if (draft.references.size() > 100)
    return make_error(Errc::invalid_argument, "References is too long");
  return {};
}

std::string make_message_id(std::string_view from_address) {
  auto at = from_address.rfind('@');
  std::string domain =
      at == std::string_view::npos ? "localhost" : std::string(from_address.substr(at + 1));
  if (domain.empty() || validate_address("x@" + domain).ok() == false)
    domain = "localhost";
  return util::random_token(18) + "@" + domain;
}

Result<std::string> message_headers(const Draft& draft, const HeaderFields& fields) {
  WMK_TRY(validate_draft(draft, DraftCheck::to_save));
  if (!valid_message_id(fields.message_id))
    return make_error(Errc::invalid_argument, "the Message-ID is not valid");
  ensure_gmime();
  GRef<GMimeMessage> m(g_mime_message_new(TRUE));
  GMimeObject* obj = GMIME_OBJECT(m.get());

  GDateTime* date = g_date_time_new_from_unix_utc(fields.date);
  g_mime_message_set_date(m.get(), date);
  g_date_time_unref(date);

  InternetAddress* from = new_mailbox(draft.from);
  internet_address_list_add(g_mime_message_get_from(m.get()), from);
  g_object_unref(from);
  for (auto [list, type] :
       {std::pair{&draft.to, GMIME_ADDRESS_TYPE_TO}, std::pair{&draft.cc, GMIME_ADDRESS_TYPE_CC}}) {
    InternetAddressList* header = g_mime_message_get_addresses(m.get(), type);
    for (const Address& a : *list) {
      InternetAddress* mb = new_mailbox(a);
      internet_address_list_add(header, mb);
      g_object_unref(mb);
    }
  }
  std::string subject =
      looks_encoded(draft.subject) ? encode_all_words(draft.subject) : draft.subject;
  g_mime_message_set_subject(m.get(), subject.c_str(), "UTF-8");
  g_mime_message_set_message_id(m.get(), fields.message_id.c_str());
  if (!draft.in_reply_to.empty()) {
    std::string v = "<" + draft.in_reply_to + ">";
    g_mime_object_set_header(obj, "In-Reply-To", v.c_str(), nullptr);
  }
  if (!draft.references.empty()) {
    std::string v;
    for (const std::string& id : draft.references)
      v += (v.empty() ? "<" : " <") + id + ">";
    g_mime_object_set_header(obj, "References", v.c_str(), nullptr);
  }
  g_mime_object_set_header(obj, "MIME-Version", "1.0", nullptr);

  FormatOptions options = canonical_options();
  GChars text(g_mime_header_list_to_string(g_mime_object_get_header_list(obj), options.get()));
  std::string out = text.str();
  if (!out.empty() && !out.ends_with("\r\n"))
    out += "\r\n";
  if (!fields.autocrypt.empty()) {
    // Written as made (already folded, base64 and tokens only): GMime would re-fold it.
    std::string value;
    const std::string& a = fields.autocrypt;
    for (std::size_t i = 0; i < a.size(); ++i) {
      char c = a[i];
      if (c == '\n') {
        if (i + 1 >= a.size() || (a[i + 1] != ' ' && a[i + 1] != '\t'))
          return make_error(Errc::invalid_argument, "the Autocrypt header is not folded right");
        value += "\r\n";
      } else if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
        value += c;
      } else {
        return make_error(Errc::invalid_argument, "the Autocrypt header holds a control character");
      }
    }
    out += "Autocrypt: " + value + "\r\n";
  }
  return out;
}

Result<std::string> content_entity(const Draft& draft) {
  ensure_gmime();
  std::string body = to_lf_line_ends(to_crlf_line_ends(draft.body));
  if (!g_utf8_validate(body.data(), static_cast<gssize>(body.size()), nullptr))
    return make_error(Errc::invalid_argument, "the message text is not valid UTF-8");
  if (body.find('\0') != std::string::npos)
    return make_error(Errc::invalid_argument, "the message text contains a NUL byte");
  GRef<GMimeObject> text = text_part(body);
  if (draft.attachments.empty())
    return object_to_string(text.get());
  GRef<GMimeMultipart> mixed(g_mime_multipart_new_with_subtype("mixed"));
  g_mime_multipart_add(mixed.get(), text.get());
  for (const Attachment& a : draft.attachments) {
    GRef<GMimeObject> part = attachment_part(a);
    g_mime_multipart_add(mixed.get(), part.get());
  }
  return object_to_string(GMIME_OBJECT(mixed.get()));
}

Result<std::string> signed_entity(std::string_view signed_part, SignatureFormat format,
                                  std::string_view signature, std::string_view micalg) {
  if (micalg.empty() || micalg.size() > 40 ||
      !std::all_of(micalg.begin(), micalg.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      }))
    return make_error(Errc::invalid_argument,
                      "the micalg " + quoted_for_error(micalg) + " is not a lower-case token");
  if (signature.empty())
    return make_error(Errc::invalid_argument, "the signature is empty");
  std::string sig_part;
  if (format == SignatureFormat::openpgp) {
    if (!signature.starts_with("-----BEGIN PGP SIGNATURE-----"))
      return make_error(Errc::invalid_argument, "not an armored OpenPGP signature");
    sig_part =
        "Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n"
        "Content-Description: OpenPGP digital signature\r\n"
        "Content-Disposition: attachment; filename=\"signature.asc\"\r\n"
        "\r\n" +
        to_crlf_line_ends(signature);
  } else {
    sig_part =
        "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n"
        "Content-Description: S/MIME cryptographic signature\r\n"
        "\r\n" +
        base64_lines(signature);
  }
  if (!sig_part.ends_with("\r\n"))
    sig_part += "\r\n";
  std::string b = boundary_for({signed_part, sig_part});
  const char* protocol = format == SignatureFormat::openpgp ? "application/pgp-signature"
                                                            : "application/pkcs7-signature";
  std::string out = "Content-Type: multipart/signed; micalg=" + std::string(micalg) +
                    ";\r\n\tprotocol=\"" + protocol + "\";\r\n\tboundary=\"" + b + "\"\r\n\r\n";
  out += format == SignatureFormat::openpgp
             ? "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n"
             : "This is a cryptographically signed message in MIME format.\r\n";
  // The signed part goes in unchanged; the CRLF before the next delimiter belongs to
  // the delimiter (RFC 2046 section 5.1.1), not to the part.
  out += "--" + b + "\r\n";
  out += signed_part;
  out += "\r\n--" + b + "\r\n";
  out += sig_part;
  out += "--" + b + "--\r\n";
  return out;
}

Result<std::string> pgp_encrypted_entity(std::string_view armored) {
  std::string text = to_crlf_line_ends(armored);
  if (!text.starts_with("-----BEGIN PGP MESSAGE-----"))
    return make_error(Errc::invalid_argument, "not an armored OpenPGP message");
  if (!text.ends_with("\r\n"))
    text += "\r\n";
  std::string b = boundary_for({text});
  std::string out =
      "Content-Type: multipart/encrypted;\r\n\tprotocol=\"application/pgp-encrypted\";\r\n"
      "\tboundary=\"" +
      b + "\"\r\n\r\nThis is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n";
  out += "--" + b + "\r\n";
  out +=
      "Content-Type: application/pgp-encrypted\r\n"
      "Content-Description: PGP/MIME version identification\r\n"
      "\r\n"
      "Version: 1\r\n"
      "\r\n";
  out += "--" + b + "\r\n";
  out +=
      "Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n"
      "Content-Description: OpenPGP encrypted message\r\n"
      "Content-Disposition: inline; filename=\"encrypted.asc\"\r\n"
      "\r\n";
  out += text;
  out += "--" + b + "--\r\n";
  return out;
}

std::string smime_encrypted_entity(std::string_view der, SmimeEnvelope kind) {
  const char* type =
      kind == SmimeEnvelope::auth_enveloped ? "authEnveloped-data" : "enveloped-data";
  std::string out = "Content-Type: application/pkcs7-mime; smime-type=" + std::string(type) +
                    ";\r\n\tname=\"smime.p7m\"\r\n"
                    "Content-Transfer-Encoding: base64\r\n"
                    "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n"
                    "Content-Description: S/MIME encrypted message\r\n"
                    "\r\n";
  out += base64_lines(der);
  return out;
}

std::string assemble_message(std::string_view headers, std::string_view entity) {
  std::string all(headers);
  all += entity;
  return to_lf_line_ends(all);
}

Result<std::string> build_message(const Draft& draft, const HeaderFields& fields) {
  auto headers = message_headers(draft, fields);
  if (!headers)
    return headers.error();
  auto entity = content_entity(draft);
  if (!entity)
    return entity.error();
  return assemble_message(*headers, *entity);
}

std::string to_lf_line_ends(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
      continue;
    out += text[i];
  }
  return out;
}

std::string to_crlf_line_ends(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n')
        ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string autocrypt_header_value(std::string_view addr, std::string_view keydata,
                                   bool prefer_encrypt) {
  std::string b64(4 * ((keydata.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                          reinterpret_cast<const unsigned char*>(keydata.data()),
                          static_cast<int>(keydata.size()));
  b64.resize(static_cast<std::size_t>(n));
  std::string out = "addr=" + std::string(addr) + ";";
  if (prefer_encrypt)
    out += " prefer-encrypt=mutual;";
  out += " keydata=";
  for (std::size_t i = 0; i < b64.size(); i += 76)
    out += "\n " + b64.substr(i, 76);
  return out;
}

}  // namespace wmk::mail

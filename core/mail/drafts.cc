#include "core/mail/drafts.h"

#include <cctype>
#include <map>

#include "core/mail/gmime_ref.h"
#include "core/util/ascii.h"

namespace wmk::mail {

namespace {

// The value of the first header named name in raw's header block (unfolded), or
// nullopt. Only the header block is looked at.
std::optional<std::string> header_value(std::string_view raw, std::string_view name) {
  std::string want = util::ascii_lower(name) + ":";
  std::size_t pos = 0;
  while (pos < raw.size()) {
    std::size_t nl = raw.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? raw.size() : nl;
    std::string_view line = raw.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.empty())
      return std::nullopt;  // end of the header block
    if (util::ascii_lower(line.substr(0, std::min(line.size(), want.size()))) == want) {
      std::string value(line.substr(want.size()));
      // Continuation lines.
      std::size_t next = end + 1;
      while (next < raw.size() && (raw[next] == ' ' || raw[next] == '\t')) {
        std::size_t nl2 = raw.find('\n', next);
        std::size_t e2 = nl2 == std::string_view::npos ? raw.size() : nl2;
        std::string_view cont = raw.substr(next, e2 - next);
        if (!cont.empty() && cont.back() == '\r')
          cont.remove_suffix(1);
        value += cont;
        next = e2 + 1;
      }
      return value;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::map<std::string, std::string> parse_params(std::string_view value) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos < value.size()) {
    std::size_t semi = value.find(';', pos);
    std::string_view item =
        value.substr(pos, (semi == std::string_view::npos ? value.size() : semi) - pos);
    auto eq = item.find('=');
    if (eq != std::string_view::npos) {
      auto trim = [](std::string_view s) {
        while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
          s.remove_prefix(1);
        while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
          s.remove_suffix(1);
        return std::string(s);
      };
      out[util::ascii_lower(trim(item.substr(0, eq)))] = trim(item.substr(eq + 1));
    }
    if (semi == std::string_view::npos)
      break;
    pos = semi + 1;
  }
  return out;
}

}  // namespace

std::string draft_header_line(const DraftMeta& meta) {
  auto flag = [](bool b) { return b ? "1" : "0"; };
  return std::string(kDraftHeader) +
         ": v=1; state=" + (meta.state == DraftState::prepared ? "prepared" : "editing") +
         "; sign=" + flag(meta.sign) + "; encrypt=" + flag(meta.encrypt) +
         "; technology=" + technology_name(meta.technology) +
         "; original-encrypted=" + flag(meta.original_encrypted) +
         "; plain-reply-ok=" + flag(meta.unencrypted_reply_ok) +
         "; protected=" + flag(meta.is_protected) +
         "; quote=" + decrypted_quote_name(meta.decrypted_quote) +
         (meta.quote_signer.empty() ? std::string() : "; quote-signer=" + meta.quote_signer) +
         "\r\n";
}

DraftMeta meta_of(const Draft& draft, DraftState state) {
  DraftMeta m;
  m.state = state;
  m.sign = draft.sign;
  m.encrypt = draft.encrypt;
  m.technology = draft.technology;
  m.original_encrypted = draft.original_encrypted;
  m.unencrypted_reply_ok = draft.unencrypted_reply_ok;
  m.decrypted_quote = draft.decrypted_quote;
  // Only an address that can never break the header line is written.
  if (draft.decrypted_quote == DecryptedQuote::to_signer && validate_address(draft.quote_signer))
    m.quote_signer = draft.quote_signer;
  return m;
}

Result<DraftMeta> read_draft_meta(std::string_view raw) {
  if (raw.empty() || raw.front() == '\n' || raw.front() == '\r' ||
      raw.find(':') == std::string_view::npos)
    return make_error(Errc::corrupt, "the draft has no header block");
  DraftMeta m;
  auto value = header_value(raw, kDraftHeader);
  if (!value)
    return m;
  auto p = parse_params(*value);
  m.state = p["state"] == "prepared" ? DraftState::prepared : DraftState::editing;
  m.sign = p["sign"] == "1";
  m.encrypt = p["encrypt"] == "1";
  m.technology = p["technology"] == "smime" ? Technology::smime : Technology::openpgp;
  m.original_encrypted = p["original-encrypted"] == "1";
  m.unencrypted_reply_ok = p["plain-reply-ok"] == "1";
  m.is_protected = p["protected"] == "1";
  // A header that names an unknown value is read as holding decrypted text: the safe
  // side (asked again, stored encrypted).
  if (p.count("quote") != 0)
    m.decrypted_quote = decrypted_quote_from(p["quote"]).value_or(DecryptedQuote::confirmed);
  if (m.decrypted_quote == DecryptedQuote::to_signer && validate_address(p["quote-signer"]))
    m.quote_signer = p["quote-signer"];
  return m;
}

std::string strip_draft_header(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  std::string want = util::ascii_lower(kDraftHeader) + ":";
  std::size_t pos = 0;
  bool in_headers = true;
  bool skipping = false;
  while (pos < raw.size()) {
    std::size_t nl = raw.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? raw.size() : nl + 1;
    std::string_view line = raw.substr(pos, end - pos);
    if (in_headers) {
      if (line == "\n" || line == "\r\n") {
        in_headers = false;
      } else if (skipping && (line.front() == ' ' || line.front() == '\t')) {
        pos = end;
        continue;
      } else {
        skipping = util::ascii_lower(line.substr(0, std::min(line.size(), want.size()))) == want;
        if (skipping) {
          pos = end;
          continue;
        }
      }
    }
    out += line;
    pos = end;
  }
  return out;
}

Result<std::string> draft_message(const Draft& draft, const HeaderFields& fields) {
  auto message = build_message(draft, fields);
  if (!message)
    return message.error();
  return to_lf_line_ends(draft_header_line(meta_of(draft, DraftState::editing))) + *message;
}

Result<Draft> parse_draft(std::string_view raw) {
  auto meta = read_draft_meta(raw);
  if (!meta)
    return meta.error();
  auto parsed = parse_message(raw);
  if (!parsed)
    return parsed.error();
  if (is_encrypted(parsed->protection))
    return make_error(Errc::unsupported, "the draft is encrypted");
  Draft d;
  d.from = parsed->from;
  d.to = parsed->to;
  d.cc = parsed->cc;
  d.subject = parsed->subject;
  if (parsed->text_format == BodyFormat::plain)
    d.body = parsed->text;
  for (const Part& part : parsed->parts) {
    if (part.role != PartRole::content || !part.is_attachment)
      continue;
    auto content = part_content(raw, part.id);
    if (!content)
      return content.error();
    Attachment a;
    a.filename = part.filename;
    a.content_type = content->sniffed_type;
    a.bytes = std::move(content->bytes);
    d.attachments.push_back(std::move(a));
  }
  GRef<GMimeMessage> msg = parse_gmime_message(raw);
  if (msg) {
    GMimeObject* obj = GMIME_OBJECT(msg.get());
    auto irt = message_ids(g_mime_object_get_header(obj, "In-Reply-To"));
    if (!irt.empty())
      d.in_reply_to = irt.front();
    d.references = message_ids(g_mime_object_get_header(obj, "References"));
  }
  d.sign = meta->sign;
  d.encrypt = meta->encrypt;
  d.technology = meta->technology;
  d.original_encrypted = meta->original_encrypted;
  d.unencrypted_reply_ok = meta->unencrypted_reply_ok;
  d.decrypted_quote = meta->decrypted_quote;
  d.quote_signer = meta->quote_signer;
  return d;
}

}  // namespace wmk::mail

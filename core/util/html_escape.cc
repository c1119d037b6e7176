#include "core/util/html_escape.h"

#include "core/util/utf8.h"

namespace wmk::util {

void append_html_escaped(std::string& out, char32_t cp) {
  switch (cp) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      append_utf8(out, cp);
  }
}

std::string html_escape(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() + raw.size() / 8);
  for (std::size_t i = 0; i < raw.size();) {
    auto [cp, len] = next_code_point(raw, i);
    i += len;
    bool control = (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f;
    append_html_escaped(out, control ? kReplacementChar : cp);
  }
  return out;
}

}  // namespace wmk::util

#include "cgi/common/html.h"

#include <map>
#include <stdexcept>

namespace wmk::cgi {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid
// (overlong forms, surrogates and code points above U+10FFFF included).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80)
    return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0)
      lo = 0xA0;
    if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size())
    return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi)
    return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF)
      return 0;
  }
  return len;
}

}  // namespace

std::string escape(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() + raw.size() / 8);
  for (std::size_t i = 0; i < raw.size();) {
    char c = raw[i];
    auto uc = static_cast<unsigned char>(c);
    if (uc >= 0x80) {
      std::size_t len = utf8_sequence_length(raw, i);
      if (len == 0) {
        out += kReplacement;
        ++i;
      } else {
        out.append(raw.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
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
      case '\t':
      case '\n':
      case '\r':
        out += c;
        break;
      default:
        if (uc < 0x20 || uc == 0x7F)
          out += kReplacement;
        else
          out += c;
    }
    ++i;
  }
  return out;
}

Html text(std::string_view raw) {
  return Html(Html::Trusted{}, escape(raw));
}

Html trusted_html(std::string markup) {
  return Html(Html::Trusted{}, std::move(markup));
}

Html fill(Literal tmpl, Slots slots) {
  std::map<std::string_view, const Html*> values;
  for (const auto& [name, slot] : slots) {
    if (!values.emplace(name, &slot.html()).second)
      throw std::logic_error("fill: slot {{" + std::string(name) + "}} given twice");
  }
  std::map<std::string_view, bool> used;
  std::string_view t = tmpl.view();
  Html out;
  std::size_t pos = 0;
  while (true) {
    std::size_t open = t.find("{{", pos);
    if (open == std::string_view::npos) {
      out += trusted_html(std::string(t.substr(pos)));  // template text is a literal
      break;
    }
    std::size_t close = t.find("}}", open + 2);
    if (close == std::string_view::npos)
      throw std::logic_error("fill: unclosed {{ in template");
    if (open > 0 && t[open - 1] == '=') {
      throw std::logic_error("fill: slot in an unquoted attribute value: " +
                             std::string(t.substr(open, close + 2 - open)));
    }
    std::string_view name = t.substr(open + 2, close - open - 2);
    auto it = values.find(name);
    if (it == values.end())
      throw std::logic_error("fill: no value for slot {{" + std::string(name) + "}}");
    used[name] = true;
    out += trusted_html(std::string(t.substr(pos, open - pos)));  // literal text
    out += *it->second;
    pos = close + 2;
  }
  for (const auto& [name, value] : values) {
    (void)value;
    if (!used.count(name))
      throw std::logic_error("fill: slot {{" + std::string(name) + "}} not in the template");
  }
  return out;
}

Html attr(Literal name, std::string_view value) {
  return trusted_html(" " + std::string(name.view()) + "=\"" + escape(value) + "\"");
}

Html join(const std::vector<Html>& items) {
  Html out;
  for (const auto& item : items)
    out += item;
  return out;
}

std::string url(Literal path,
                std::initializer_list<std::pair<std::string_view, std::string_view>> query) {
  static const char kHex[] = "0123456789ABCDEF";
  auto encode = [](std::string& out, std::string_view s) {
    for (char c : s) {
      auto uc = static_cast<unsigned char>(c);
      bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
      if (unreserved) {
        out += c;
      } else {
        out += '%';
        out += kHex[uc >> 4];
        out += kHex[uc & 0xF];
      }
    }
  };
  std::string out(path.view());
  char sep = '?';
  for (const auto& [name, value] : query) {
    out += sep;
    sep = '&';
    encode(out, name);
    out += '=';
    encode(out, value);
  }
  return out;
}

Html csrf_field(std::string_view token) {
  return fill(R"(<input type="hidden" name="csrf" value="{{token}}">)", {{"token", token}});
}

}  // namespace wmk::cgi

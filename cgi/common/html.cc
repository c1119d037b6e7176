#include "cgi/common/html.h"

#include <map>
#include <stdexcept>

#include "core/util/html_escape.h"

namespace wmk::cgi {

std::string escape(std::string_view raw) {
  return util::html_escape(raw);
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

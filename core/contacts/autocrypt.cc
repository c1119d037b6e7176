#include "core/contacts/autocrypt.h"

#include "core/contacts/keydata.h"
#include "core/util/ascii.h"
#include "core/util/encoding.h"

namespace wmk::contacts {

namespace {}  // namespace

Result<AutocryptHeader> parse_autocrypt(std::string_view value) {
  if (value.size() > kMaxKeyDataBytes * 2)
    return make_error(Errc::invalid_argument, "the Autocrypt header is too large");
  AutocryptHeader h;
  bool have_addr = false;
  bool have_keydata = false;
  std::size_t pos = 0;
  while (pos <= value.size()) {
    std::size_t semi = value.find(';', pos);
    std::string_view attr = util::trim_whitespace(
        value.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos));
    pos = semi == std::string_view::npos ? value.size() + 1 : semi + 1;
    if (attr.empty())
      continue;
    auto eq = attr.find('=');
    if (eq == std::string_view::npos)
      return make_error(Errc::invalid_argument, "an Autocrypt attribute has no value");
    std::string name = util::ascii_lower(util::trim_whitespace(attr.substr(0, eq)));
    std::string_view v = util::trim_whitespace(attr.substr(eq + 1));
    if (name == "addr") {
      if (have_addr)
        return make_error(Errc::invalid_argument, "the Autocrypt header names addr twice");
      std::string a = util::ascii_lower(v);
      auto at = a.find('@');
      if (at == std::string::npos || at == 0 || at + 1 == a.size() ||
          a.find_first_of(" \t\r\n<>;,\"") != std::string::npos)
        return make_error(Errc::invalid_argument, "the Autocrypt addr is not an address");
      h.addr = std::move(a);
      have_addr = true;
    } else if (name == "prefer-encrypt") {
      h.prefer_encrypt = v == "mutual";
    } else if (name == "keydata") {
      if (have_keydata)
        return make_error(Errc::invalid_argument, "the Autocrypt header has keydata twice");
      auto bytes = util::base64_decode(v);
      if (!bytes || bytes->empty())
        return make_error(Errc::invalid_argument, "the Autocrypt keydata is not base64");
      if (bytes->size() > kMaxKeyDataBytes)
        return make_error(Errc::invalid_argument, "the Autocrypt keydata is too large");
      h.keydata.assign(reinterpret_cast<const char*>(bytes->data()), bytes->size());
      have_keydata = true;
    } else if (name.empty() || name.front() != '_') {
      return make_error(Errc::invalid_argument,
                        "the Autocrypt header has an unknown critical attribute " + name);
    }
  }
  if (!have_addr)
    return make_error(Errc::invalid_argument, "the Autocrypt header has no addr");
  if (!have_keydata)
    return make_error(Errc::invalid_argument, "the Autocrypt header has no keydata");
  return h;
}

std::vector<std::string> autocrypt_header_values(std::string_view raw) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  bool in_autocrypt = false;
  while (pos < raw.size()) {
    std::size_t nl = raw.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? raw.size() : nl;
    std::string_view line = raw.substr(pos, end - pos);
    pos = nl == std::string_view::npos ? raw.size() : nl + 1;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.empty())
      break;  // the end of the header block
    if (line.front() == ' ' || line.front() == '\t') {
      if (in_autocrypt)
        out.back() += std::string(line);
      continue;
    }
    auto colon = line.find(':');
    in_autocrypt =
        colon != std::string_view::npos && util::ascii_lower(line.substr(0, colon)) == "autocrypt";
    if (in_autocrypt)
      out.emplace_back(line.substr(colon + 1));
  }
  return out;
}

}  // namespace wmk::contacts

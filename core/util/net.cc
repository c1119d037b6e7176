#include "core/util/net.h"

#include <arpa/inet.h>

#include <algorithm>

#include "core/util/ascii.h"

namespace wmk::util {

namespace {

bool trusted(const std::string& addr, const std::vector<std::string>& proxies) {
  return std::find(proxies.begin(), proxies.end(), addr) != proxies.end();
}

}  // namespace

std::optional<std::string> canonical_ip(std::string_view text) {
  if (text.empty() || text.size() > 64)
    return std::nullopt;
  const std::string s(text);
  char out[INET6_ADDRSTRLEN] = {};
  unsigned char buf[16];
  if (::inet_pton(AF_INET, s.c_str(), buf) == 1) {
    if (::inet_ntop(AF_INET, buf, out, sizeof out) != nullptr)
      return std::string(out);
  } else if (::inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    if (::inet_ntop(AF_INET6, buf, out, sizeof out) != nullptr)
      return std::string(out);
  }
  return std::nullopt;
}

std::string client_address(std::string_view remote_addr,
                           const std::optional<std::string>& forwarded_for,
                           const std::vector<std::string>& trusted_proxies) {
  std::string current = canonical_ip(remote_addr).value_or(std::string(remote_addr));
  if (!forwarded_for || trusted_proxies.empty())
    return current;
  std::string_view rest = *forwarded_for;
  while (trusted(current, trusted_proxies)) {
    if (util::trim_blanks(rest).empty())
      return current;
    auto comma = rest.rfind(',');
    std::string_view item =
        util::trim_blanks(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    auto addr = canonical_ip(item);
    if (!addr)
      return current;  // the last hop we trust saw this much, and no more
    current = *addr;
  }
  return current;
}

}  // namespace wmk::util

#pragma once
// IP address text: canonical forms, and the client address behind trusted proxies.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wmk::util {

// The canonical text of an IPv4 or IPv6 address ("::ffff:192.0.2.1" stays IPv6,
// "2001:DB8::1" becomes "2001:db8::1"); nullopt for anything else (names, ports, CIDR).
std::optional<std::string> canonical_ip(std::string_view text);

// The client's address for a request that came from remote_addr with the given
// X-Forwarded-For header (nullopt: none). Only when remote_addr is one of
// trusted_proxies is the header believed, read from the right (each proxy appends the
// address it saw): the first entry that is not itself a trusted proxy is the client.
// A malformed entry stops the walk there and the last trusted hop is answered, so a
// client cannot pass a made-up address through a proxy that appends.
std::string client_address(std::string_view remote_addr,
                           const std::optional<std::string>& forwarded_for,
                           const std::vector<std::string>& trusted_proxies);

}  // namespace wmk::util

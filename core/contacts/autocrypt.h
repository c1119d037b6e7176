#pragma once
// Autocrypt Level 1 headers (https://autocrypt.org/level1.html §2.1): parsing an
// incoming `Autocrypt:` header value (the sender's own is mail::autocrypt_header_value,
// core/mail/compose.h, as outgoing mail makes it). Pure functions on
// bytes (fuzz targets): no I/O, no global state.

#include <string>
#include <string_view>
#include <vector>

#include "core/util/result.h"

namespace wmk::contacts {

struct AutocryptHeader {
  std::string addr;             // lowercased
  bool prefer_encrypt = false;  // prefer-encrypt=mutual
  std::string keydata;          // the binary OpenPGP key (base64-decoded)
};

// Parses the value of one Autocrypt header (unfolded or folded). Errc::invalid_argument
// when addr or keydata is missing, keydata is not base64 or is larger than
// kMaxKeyDataBytes, or an attribute is unknown and critical (its name does not start
// with '_'): the specification says such a header must be ignored.
Result<AutocryptHeader> parse_autocrypt(std::string_view value);

// The values of the Autocrypt headers of a message's top-level header block, unfolded
// (CRLF or LF followed by blanks joins lines), in order. Pure; never fails.
std::vector<std::string> autocrypt_header_values(std::string_view raw_message);

}  // namespace wmk::contacts

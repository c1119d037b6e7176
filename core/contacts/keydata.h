#pragma once
// Correspondents' key data read without any crypto library: which format a blob is in,
// and what an OpenPGP transferable key holds (keys, user ids, whether any part is
// secret). Pure functions on bytes — no I/O, no global state — so that they can be
// fuzzed; they decide what is refused before the bytes reach gpg or OpenSSL.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/result.h"

namespace wmk::contacts {

// The most key data accepted from a file, a form or a mail part.
inline constexpr std::size_t kMaxKeyDataBytes = 1 << 20;

enum class KeyFormat { openpgp_armored, openpgp_binary, x509_pem, x509_der, unknown };

// What data looks like from its first bytes; never unknown for data that one of the
// parsers below would accept.
KeyFormat detect_key_format(std::string_view data);

struct OpenPgpScan {
  std::size_t primary_keys = 0;  // public or secret primary key packets
  std::size_t subkeys = 0;
  // A secret key or subkey packet, or a PRIVATE KEY BLOCK armor.
  bool has_secret = false;
  std::vector<std::string> user_ids;  // user id packets as the key's owner wrote them
  std::string binary;                 // all packets, dearmored
};

// Dearmors (one or more armored blocks, CRC-24 checked when present) or takes binary
// packets, and walks them. Errc::invalid_argument saying what is wrong: no OpenPGP
// data, broken armor or checksum, a truncated or indeterminate-length packet, a
// first packet that is not a key, more than kMaxKeyDataBytes.
Result<OpenPgpScan> scan_openpgp(std::string_view data);

// The address of a user id "Name <local@domain>" or a bare "local@domain", lowercased;
// "" if it holds none.
std::string user_id_address(std::string_view user_id);

}  // namespace wmk::contacts

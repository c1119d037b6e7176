#include "core/contacts/keydata.h"

#include <cstdint>

#include "core/util/ascii.h"
#include "core/util/encoding.h"

namespace wmk::contacts {

namespace {

constexpr std::string_view kArmorBegin = "-----BEGIN PGP ";

// Packet tags (RFC 9580 §5).
constexpr int kTagSecretKey = 5;
constexpr int kTagPublicKey = 6;
constexpr int kTagSecretSubkey = 7;
constexpr int kTagUserId = 13;
constexpr int kTagPublicSubkey = 14;

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view skip_space(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  return s;
}

std::uint32_t crc24(std::string_view bytes) {
  std::uint32_t crc = 0xB704CEu;
  for (unsigned char c : bytes) {
    crc ^= static_cast<std::uint32_t>(c) << 16;
    for (int i = 0; i < 8; ++i) {
      crc <<= 1;
      if (crc & 0x1000000u)
        crc ^= 0x1864CFBu;
    }
  }
  return crc & 0xFFFFFFu;
}

// The next line of text at pos (without its line end); pos moves past it.
std::string_view next_line(std::string_view text, std::size_t& pos) {
  std::size_t nl = text.find('\n', pos);
  std::size_t end = nl == std::string_view::npos ? text.size() : nl;
  std::string_view line = text.substr(pos, end - pos);
  pos = nl == std::string_view::npos ? text.size() : nl + 1;
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
    line.remove_suffix(1);
  return line;
}

// Every armored block of text, dearmored and joined. secret: a PRIVATE KEY BLOCK was seen.
Result<std::string> dearmor(std::string_view text, bool& secret) {
  std::string out;
  std::size_t pos = 0;
  int blocks = 0;
  for (;;) {
    std::size_t begin = text.find(kArmorBegin, pos);
    if (begin == std::string_view::npos)
      break;
    pos = begin;
    std::string_view head = next_line(text, pos);
    if (head == "-----BEGIN PGP PRIVATE KEY BLOCK-----") {
      secret = true;
    } else if (head != "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
      return make_error(Errc::invalid_argument,
                        "the armored data is not an OpenPGP key block: " + std::string(head));
    }
    // Armor headers ("Comment: ..."), up to an empty line. Some writers omit the
    // empty line when there are no headers; a line without ':' starts the data.
    std::size_t data_start = pos;
    for (;;) {
      if (pos >= text.size())
        return make_error(Errc::invalid_argument, "the OpenPGP armor ends before its data");
      std::size_t line_start = pos;
      std::string_view line = next_line(text, pos);
      if (line.empty()) {
        data_start = pos;
        break;
      }
      if (line.find(": ") == std::string_view::npos) {
        data_start = line_start;
        pos = line_start;
        break;
      }
    }
    std::string b64;
    std::string_view checksum;
    bool ended = false;
    pos = data_start;
    while (pos < text.size()) {
      std::string_view line = next_line(text, pos);
      if (starts_with(line, "-----END PGP ")) {
        ended = true;
        break;
      }
      if (!line.empty() && line.front() == '=' && line.size() == 5) {
        checksum = line.substr(1);
        continue;
      }
      b64 += line;
    }
    if (!ended)
      return make_error(Errc::invalid_argument, "the OpenPGP armor has no END line");
    auto bytes = util::base64_decode(b64);
    if (!bytes || bytes->empty())
      return make_error(Errc::invalid_argument, "the OpenPGP armor is not valid base64");
    std::string_view block(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    if (!checksum.empty()) {
      auto sum = util::base64_decode(checksum);
      if (!sum || sum->size() != 3)
        return make_error(Errc::invalid_argument, "the OpenPGP armor checksum is malformed");
      std::uint32_t want = static_cast<std::uint32_t>((*sum)[0]) << 16 |
                           static_cast<std::uint32_t>((*sum)[1]) << 8 | (*sum)[2];
      if (crc24(block) != want)
        return make_error(Errc::invalid_argument,
                          "the OpenPGP armor checksum does not match: the data is damaged");
    }
    out.append(block);
    ++blocks;
  }
  if (blocks == 0)
    return make_error(Errc::invalid_argument, "no OpenPGP armor found");
  return out;
}

}  // namespace

KeyFormat detect_key_format(std::string_view data) {
  std::string_view s = skip_space(data);
  if (s.find(kArmorBegin) != std::string_view::npos &&
      s.find(kArmorBegin) < 4096)  // armor may follow a few lines of text
    return KeyFormat::openpgp_armored;
  if (s.find("-----BEGIN ") != std::string_view::npos)
    return KeyFormat::x509_pem;
  if (data.empty())
    return KeyFormat::unknown;
  auto first = static_cast<unsigned char>(data.front());
  if (first == 0x30)  // an ASN.1 SEQUENCE: a DER certificate
    return KeyFormat::x509_der;
  if ((first & 0x80) != 0) {
    // A packet header: new format tag in the low 6 bits, old format in bits 2-5.
    int tag = (first & 0x40) != 0 ? first & 0x3f : (first >> 2) & 0x0f;
    if (tag == kTagPublicKey || tag == kTagSecretKey)
      return KeyFormat::openpgp_binary;
  }
  return KeyFormat::unknown;
}

Result<OpenPgpScan> scan_openpgp(std::string_view data) {
  if (data.size() > kMaxKeyDataBytes)
    return make_error(Errc::invalid_argument, "the key data is larger than " +
                                                  std::to_string(kMaxKeyDataBytes / 1024) + " KiB");
  OpenPgpScan scan;
  KeyFormat format = detect_key_format(data);
  if (format == KeyFormat::openpgp_armored) {
    auto bin = dearmor(data, scan.has_secret);
    if (!bin)
      return bin.error();
    scan.binary = std::move(bin).value();
  } else if (format == KeyFormat::openpgp_binary) {
    scan.binary = std::string(data);
  } else {
    return make_error(Errc::invalid_argument, "the data is not an OpenPGP key");
  }
  std::string_view p = scan.binary;
  bool first = true;
  while (!p.empty()) {
    auto b0 = static_cast<unsigned char>(p[0]);
    if ((b0 & 0x80) == 0)
      return make_error(Errc::invalid_argument, "the OpenPGP data is malformed (not a packet)");
    int tag = 0;
    std::size_t header = 1;
    std::uint64_t length = 0;
    auto octet = [&](std::size_t i) -> int {
      return i < p.size() ? static_cast<unsigned char>(p[i]) : -1;
    };
    if ((b0 & 0x40) != 0) {
      tag = b0 & 0x3f;
      int o1 = octet(1);
      if (o1 < 0)
        return make_error(Errc::invalid_argument, "the OpenPGP data is truncated");
      if (o1 < 192) {
        length = static_cast<std::uint64_t>(o1);
        header = 2;
      } else if (o1 < 224) {
        int o2 = octet(2);
        if (o2 < 0)
          return make_error(Errc::invalid_argument, "the OpenPGP data is truncated");
        length = (static_cast<std::uint64_t>(o1 - 192) << 8) + static_cast<std::uint64_t>(o2) + 192;
        header = 3;
      } else if (o1 == 255) {
        if (octet(5) < 0)
          return make_error(Errc::invalid_argument, "the OpenPGP data is truncated");
        length = static_cast<std::uint64_t>(octet(2)) << 24 |
                 static_cast<std::uint64_t>(octet(3)) << 16 |
                 static_cast<std::uint64_t>(octet(4)) << 8 | static_cast<std::uint64_t>(octet(5));
        header = 6;
      } else {
        return make_error(Errc::invalid_argument,
                          "the OpenPGP data uses partial lengths, which keys never do");
      }
    } else {
      tag = (b0 >> 2) & 0x0f;
      int len_type = b0 & 0x03;
      if (len_type == 3)
        return make_error(Errc::invalid_argument,
                          "the OpenPGP data has a packet of indeterminate length");
      std::size_t n = len_type == 0 ? 1 : len_type == 1 ? 2 : 4;
      if (octet(n) < 0)
        return make_error(Errc::invalid_argument, "the OpenPGP data is truncated");
      for (std::size_t i = 1; i <= n; ++i)
        length = length << 8 | static_cast<std::uint64_t>(octet(i));
      header = 1 + n;
    }
    if (length > p.size() - header)
      return make_error(Errc::invalid_argument, "the OpenPGP data is truncated");
    std::string_view body = p.substr(header, static_cast<std::size_t>(length));
    if (first && tag != kTagPublicKey && tag != kTagSecretKey)
      return make_error(Errc::invalid_argument,
                        "the OpenPGP data does not start with a key (is it a message or a "
                        "signature?)");
    first = false;
    switch (tag) {
      case kTagSecretKey:
        scan.has_secret = true;
        ++scan.primary_keys;
        break;
      case kTagPublicKey:
        ++scan.primary_keys;
        break;
      case kTagSecretSubkey:
        scan.has_secret = true;
        ++scan.subkeys;
        break;
      case kTagPublicSubkey:
        ++scan.subkeys;
        break;
      case kTagUserId:
        scan.user_ids.emplace_back(body);
        break;
      default:
        break;
    }
    p.remove_prefix(header + static_cast<std::size_t>(length));
  }
  if (scan.primary_keys == 0)
    return make_error(Errc::invalid_argument, "the data holds no OpenPGP key");
  return scan;
}

std::string user_id_address(std::string_view user_id) {
  std::string_view addr = user_id;
  auto lt = user_id.rfind('<');
  if (lt != std::string_view::npos) {
    auto gt = user_id.find('>', lt);
    if (gt == std::string_view::npos)
      return "";
    addr = user_id.substr(lt + 1, gt - lt - 1);
  }
  while (!addr.empty() && addr.front() == ' ')
    addr.remove_prefix(1);
  while (!addr.empty() && addr.back() == ' ')
    addr.remove_suffix(1);
  auto at = addr.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == addr.size() ||
      addr.find_first_of(" <>\t\r\n") != std::string_view::npos ||
      addr.find('@', at + 1) != std::string_view::npos)
    return "";
  return util::ascii_lower(addr);
}

}  // namespace wmk::contacts

#include "core/keys/types.h"

#include <cctype>

namespace wmk::keys {

const char* key_type_name(KeyType type) {
  return type == KeyType::openpgp ? "openpgp" : "smime";
}

std::optional<KeyType> parse_key_type(std::string_view text) {
  if (text == "openpgp")
    return KeyType::openpgp;
  if (text == "smime")
    return KeyType::smime;
  return std::nullopt;
}

const char* signature_status_name(SignatureStatus status) {
  switch (status) {
    case SignatureStatus::good:
      return "good";
    case SignatureStatus::bad:
      return "bad";
    case SignatureStatus::key_expired:
      return "key_expired";
    case SignatureStatus::key_revoked:
      return "key_revoked";
    case SignatureStatus::no_public_key:
      return "no_public_key";
    case SignatureStatus::error:
      return "error";
  }
  return "error";
}

std::string group_fingerprint(std::string_view fpr, std::size_t max_digits) {
  const std::size_t shown = max_digits == 0 || fpr.size() < max_digits ? fpr.size() : max_digits;
  std::string out;
  for (std::size_t i = 0; i < shown; ++i) {
    if (i > 0 && i % 4 == 0)
      out += ' ';
    out += fpr[i];
  }
  if (fpr.size() > shown)
    out += " \u2026";
  return out;
}

Result<std::string> normalize_fingerprint_prefix(std::string_view text) {
  std::string out;
  std::string_view in = text;
  if (in.size() > 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
    in.remove_prefix(2);
  for (char c : in) {
    if (c == ' ' || c == ':')
      continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return make_error(Errc::invalid_argument,
                        "\"" + std::string(text) + "\" is not a key fingerprint (hex digits)");
    }
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (out.size() < kMinFingerprintPrefix) {
    return make_error(Errc::invalid_argument,
                      "a key is named by its fingerprint or a prefix of at least " +
                          std::to_string(kMinFingerprintPrefix) + " hex digits");
  }
  return out;
}

bool key_expired(const KeyInfo& key, std::int64_t now) {
  return key.expires && *key.expires <= now;
}

}  // namespace wmk::keys

#include "core/keys/types.h"

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

bool key_expired(const KeyInfo& key, std::int64_t now) {
  return key.expires && *key.expires <= now;
}

}  // namespace wmk::keys

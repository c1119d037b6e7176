#include "core/grant/cookie.h"

#include "core/util/secret_cookie.h"

namespace wmk::grant {

util::SecretBuffer new_grant_secret() {
  return util::SecretBuffer::random(kGrantSecretSize);
}

util::SecretBuffer encode_grant_cookie(const util::SecretBuffer& secret) {
  return util::encode_secret_cookie(secret);
}

Result<util::SecretBuffer> decode_grant_cookie(std::string_view value) {
  return util::decode_secret_cookie(value, kGrantSecretSize, "grant");
}

}  // namespace wmk::grant

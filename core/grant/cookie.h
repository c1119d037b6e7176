#pragma once
// The grant secret and the browser cookie that carries it.
//
// A grant secret is 32 random bytes. It exists only in the browser's cookie
// `__Host-wmk-grant` (base64url, no padding) and, for the length of one request, in
// a SecretBuffer on the server; the database never sees it. One grant secret per
// login session: made at the session's first unlock and reused for its further keys.

#include <cstddef>
#include <string>
#include <string_view>

#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::grant {

inline constexpr const char* kGrantCookieName = "__Host-wmk-grant";
inline constexpr std::size_t kGrantSecretSize = 32;

// A fresh grant secret: 32 bytes from the CSPRNG. Throws if the CSPRNG fails.
util::SecretBuffer new_grant_secret();

// The cookie value for secret: its base64url text (43 characters), itself a secret.
util::SecretBuffer encode_grant_cookie(const util::SecretBuffer& secret);

// The grant secret in a cookie value. Errc::invalid_argument if the value is not
// base64url of exactly 32 bytes (a damaged or forged cookie: treat as no cookie).
Result<util::SecretBuffer> decode_grant_cookie(std::string_view value);

}  // namespace wmk::grant

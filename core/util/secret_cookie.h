#pragma once
// Secrets carried by browser cookies (the grant secret, the mail-password secret):
// base64url without padding, built in SecretBuffers only, so that no std::string
// copy of a secret is left in the heap.

#include <cstddef>
#include <string>
#include <string_view>

#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::util {

// The base64url text of secret, itself a secret.
SecretBuffer encode_secret_cookie(const SecretBuffer& secret);

// The secret of exactly size bytes in a cookie value. Errc::invalid_argument (naming
// what) if value is not the canonical base64url of size bytes: a damaged or forged
// cookie, to be treated as no cookie.
Result<SecretBuffer> decode_secret_cookie(std::string_view value, std::size_t size,
                                          std::string_view what);

// The whole Set-Cookie header value storing secret under name:
// `NAME=VALUE; Path=/; Secure; HttpOnly; SameSite=Strict`. No Max-Age: the cookie
// ends with the browser session; the server's rows carry the real limits.
SecretBuffer secret_set_cookie(std::string_view name, const SecretBuffer& secret);

// The Set-Cookie header value that deletes the cookie name.
std::string secret_clear_cookie(std::string_view name);

}  // namespace wmk::util

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

// The Set-Cookie headers themselves are written by the web layer's one writer
// (cgi/common/response.h, SetCookie::session_secret), from the SecretBuffer.

}  // namespace wmk::util

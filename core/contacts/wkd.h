#pragma once
// Web Key Directory (draft-koch-openpgp-webkey-service): where an address's key is
// published, what an answer must hold to be taken, and the lookup itself (libcurl, in
// core/net). The URL and answer functions are pure functions on bytes (fuzz targets).

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/contacts/keydata.h"
#include "core/net/https.h"
#include "core/util/result.h"

namespace wmk::contacts {

inline constexpr std::size_t kWkdMaxBytes = 256 * 1024;
// For the whole lookup, both methods together.
inline constexpr std::chrono::milliseconds kWkdTimeout{5000};
// The most addresses one wkd_lookup_all looks up (as many as a message has recipients).
inline constexpr std::size_t kWkdMaxParallel = 100;

struct WkdUrls {
  std::string advanced;  // https://openpgpkey.DOMAIN/.well-known/openpgpkey/DOMAIN/hu/HASH?l=LOCAL
  std::string direct;    // https://DOMAIN/.well-known/openpgpkey/hu/HASH?l=LOCAL
};

// z-base-32 (the WKD and Tor encoding) of bytes.
std::string zbase32(std::string_view bytes);

// The two URLs for address. The domain is lowercased; the hash is of the lowercased
// local part, the l= parameter keeps it as given. Errc::invalid_argument if address is
// not local@domain with a plausible domain.
Result<WkdUrls> wkd_urls(std::string_view address);

// Checks an answer for address: at most kWkdMaxBytes of binary (or armored) OpenPGP
// public key data holding exactly one key, no secret part, and a user id whose address
// is address exactly. Errc::invalid_argument saying which rule it breaks.
Result<OpenPgpScan> check_wkd_answer(std::string_view body, std::string_view address);

struct WkdResult {
  std::string method;  // "advanced" or "direct"
  std::string url;
  std::string key_data;  // the answer, checked by check_wkd_answer
};

// Looks address up: the advanced method, then the direct one, within kWkdTimeout for
// both (options.timeout is ignored; its CA file and resolve entries are used).
// Errc::not_found if neither publishes a key (404 or no such host), Errc::corrupt if an
// answer breaks a rule of check_wkd_answer (and none was good), Errc::io for network failures and
// timeouts; the message names both methods' outcomes.
Result<WkdResult> wkd_lookup(std::string_view address, const net::HttpsOptions& options);

// Looks every address up at once (one thread each, at most kWkdMaxParallel), so that
// several addresses, hanging servers among them, still cost at most kWkdTimeout
// together. The results are in the order of addresses, each as wkd_lookup's.
// Errc::invalid_argument for every address past kWkdMaxParallel.
std::vector<Result<WkdResult>> wkd_lookup_all(const std::vector<std::string>& addresses,
                                              const net::HttpsOptions& options);

}  // namespace wmk::contacts

#pragma once
// An HTTPS GET through libcurl, for fetching public data from other servers (WKD).
// HTTPS only, the server certificate verified against the system trust store (plus
// an optional extra CA file), no redirects, a total time limit and a size cap.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "core/util/result.h"

namespace wmk::net {

struct HttpsOptions {
  std::chrono::milliseconds timeout{5000};  // the whole request: resolve, connect, TLS, body
  std::size_t max_bytes = 256 * 1024;       // the body; more is refused
  std::string extra_ca_file;                // PEM bundle trusted beside the system store
  std::vector<std::string> resolve;         // "HOST:PORT:ADDRESS", as curl --resolve
};

struct HttpsResponse {
  long status = 0;
  std::string body;
};

enum class FetchFailure {
  none,
  not_https,  // the URL is not https://
  no_host,    // the host name does not resolve
  connect,    // no connection (refused, unreachable)
  tls,        // the TLS handshake or certificate check failed
  timeout,    // the time limit ran out
  too_large,  // the body exceeded max_bytes
  other,
};

// GETs url. A response with any HTTP status comes back as a value (the caller decides
// what 404 means). Errc::invalid_argument for a URL that is not https://; Errc::io
// for everything else that fails, with the reason in words; failure (if given) says
// which kind.
Result<HttpsResponse> https_get(const std::string& url, const HttpsOptions& options,
                                FetchFailure* failure = nullptr);

}  // namespace wmk::net

#include "core/net/https.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <stdexcept>

namespace wmk::net {

namespace {

struct EasyRelease {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistRelease {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Easy = std::unique_ptr<CURL, EasyRelease>;
using Slist = std::unique_ptr<curl_slist, SlistRelease>;

void initialise_curl() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("libcurl could not be initialised");
  });
}

struct Sink {
  std::string body;
  std::size_t max_bytes = 0;
  bool overflow = false;
};

size_t write_cb(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  std::size_t n = size * count;
  if (sink->body.size() + n > sink->max_bytes) {
    sink->overflow = true;
    return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
  }
  sink->body.append(data, n);
  return n;
}

FetchFailure failure_of(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return FetchFailure::no_host;
    case CURLE_COULDNT_CONNECT:
      return FetchFailure::connect;
    case CURLE_OPERATION_TIMEDOUT:
      return FetchFailure::timeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return FetchFailure::tls;
    case CURLE_FILESIZE_EXCEEDED:
      return FetchFailure::too_large;
    default:
      return FetchFailure::other;
  }
}

}  // namespace

Result<HttpsResponse> https_get(const std::string& url, const HttpsOptions& options,
                                FetchFailure* failure) {
  auto fail = [&](FetchFailure kind, Errc code, std::string message) -> Error {
    if (failure != nullptr)
      *failure = kind;
    return make_error(code, std::move(message));
  };
  if (failure != nullptr)
    *failure = FetchFailure::none;
  if (url.rfind("https://", 0) != 0)
    return fail(FetchFailure::not_https, Errc::invalid_argument, "only https:// URLs are fetched");
  initialise_curl();
  Easy easy(curl_easy_init());
  if (!easy)
    return fail(FetchFailure::other, Errc::io, "libcurl could not make a request");
  CURL* c = easy.get();
  Sink sink;
  sink.max_bytes = options.max_bytes;
  Slist resolve;
  for (const auto& entry : options.resolve) {
    curl_slist* next = curl_slist_append(resolve.get(), entry.c_str());
    if (next == nullptr)
      return fail(FetchFailure::other, Errc::io, "out of memory");
    (void)resolve.release();
    resolve.reset(next);
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "webmailkey/" WEBMAILKEY_VERSION);
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // never a proxy from the environment
  if (!options.extra_ca_file.empty()) {
    // The extra bundle as CAINFO, the system store as CAPATH: both are trusted.
    curl_easy_setopt(c, CURLOPT_CAINFO, options.extra_ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
  }
  if (resolve)
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve.get());
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    if (sink.overflow || rc == CURLE_FILESIZE_EXCEEDED)
      return fail(FetchFailure::too_large, Errc::io,
                  "the answer is larger than " + std::to_string(options.max_bytes / 1024) + " KB");
    std::string why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    FetchFailure kind = failure_of(rc);
    if (kind == FetchFailure::timeout)
      why = "no answer within " + std::to_string(options.timeout.count()) + " ms";
    return fail(kind, Errc::io, why);
  }
  HttpsResponse response;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  response.body = std::move(sink.body);
  return response;
}

}  // namespace wmk::net

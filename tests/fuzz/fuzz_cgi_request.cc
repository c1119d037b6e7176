// CGI request parsing: query string, urlencoded and multipart bodies, cookies (with
// secret fields and secret cookies taken out). The input is split at the first two
// NUL bytes into the Cookie header, the query string and the body; its first byte
// picks the content type.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "cgi/common/request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const bool multipart = !in.empty() && (in[0] & 1);
  auto next = [&in]() {
    auto nul = in.find('\0');
    std::string part(in.substr(0, nul));
    in = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
    return part;
  };
  std::string cookie = next();
  std::string query = next();
  std::string body(in);
  std::map<std::string, std::string> env = {
      {"REQUEST_METHOD", "POST"},
      {"HTTPS", "on"},
      {"REMOTE_ADDR", "127.0.0.1"},
      {"HTTP_X_FORWARDED_FOR", query.substr(0, 64)},
      {"QUERY_STRING", query},
      {"HTTP_COOKIE", cookie},
      {"CONTENT_LENGTH", std::to_string(body.size())},
      {"CONTENT_TYPE",
       multipart ? "multipart/form-data; boundary=XyZ" : "application/x-www-form-urlencoded"},
  };
  wmk::cgi::SecretNames secrets;
  secrets.fields = {"password", "passphrase"};
  secrets.cookies = {"__Host-wmk-session", "__Host-wmk-grant"};
  wmk::cgi::RequestLimits limits;
  limits.max_body_bytes = 1 << 20;
  auto r = wmk::cgi::Request::parse(wmk::cgi::RequestSource::fixed(env, body), secrets, limits);
  if (r) {
    (void)r->field("user");
    (void)r->fields("to");
    (void)r->query("id");
    (void)r->cookie("__Host-wmk-login-csrf");
    (void)r->take_secret("password");
    (void)r->take_secret_cookie("__Host-wmk-session");
    r->use_trusted_proxies({"127.0.0.1"});
  }
  (void)wmk::cgi::parse_urlencoded(query);
  return 0;
}

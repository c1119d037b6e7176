#pragma once
// Response: status, headers, cookies and body, written to stdout in CGI form
// ("Status: 303 See Other", "Location: ...", blank line, body).
//
// Every response carries the security headers (CSP, HSTS, no referrer, nosniff,
// no framing) and `Cache-Control: no-store` unless a caller relaxes it. Cookies are
// only ever `__Host-` prefixed, Secure, HttpOnly, SameSite=Strict, Path=/; their
// values live in locked memory and are written straight from it.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cgi/common/html.h"
#include "core/util/secret.h"

namespace wmk::cgi {

// The default Content-Security-Policy; pages that need more call extend_csp().
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'";

class SetCookie {
 public:
  // A cookie that ends when the browser closes. name must start with "__Host-" and
  // value must be cookie-safe (base64url, hex...): else std::invalid_argument (a bug).
  static SetCookie session(std::string_view name, std::string_view value);
  // The same, for a secret value (copied into locked memory).
  static SetCookie session_secret(std::string_view name, const util::SecretBuffer& value);
  // The same with a Max-Age in seconds.
  static SetCookie persistent(std::string_view name, std::string_view value,
                              std::chrono::seconds max_age);
  // Tells the browser to drop the cookie: empty value, Max-Age=0.
  static SetCookie deletion(std::string_view name);

  const std::string& name() const { return name_; }
  // Writes the Set-Cookie header value in pieces (the value straight from locked memory).
  void write_value(const std::function<void(std::string_view)>& sink) const;

 private:
  SetCookie(std::string_view name, std::string_view value, std::optional<std::int64_t> max_age);
  std::string name_;
  util::SecretBuffer value_;
  std::optional<std::int64_t> max_age_;
};

class Response {
 public:
  // An empty response with the security headers and Content-Type text/html.
  explicit Response(int status = 200);
  // A page.
  static Response page(int status, const Html& document);
  // 303 See Other to a same-site path (must start with a single '/': else
  // std::invalid_argument, a bug).
  static Response redirect(std::string_view location);
  // A download that is never shown inline: Content-Disposition attachment with a
  // safe filename, the given type, nosniff.
  static Response download(std::string data, std::string_view content_type,
                           std::string_view filename);

  Response(Response&&) = default;
  Response& operator=(Response&&) = default;

  int status() const { return status_; }
  void set_status(int status) { status_ = status; }
  // Sets a header, replacing any of the same name (case-insensitive). CR, LF or NUL
  // in either part throws std::invalid_argument (a bug: header injection).
  void set_header(std::string_view name, std::string_view value);
  // The header's value, or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // Appends directives to the Content-Security-Policy, e.g. "frame-src 'self'".
  void extend_csp(std::string_view directives);
  void add_cookie(SetCookie cookie);
  const std::vector<SetCookie>& cookies() const { return cookies_; }
  void set_body(std::string body) { body_ = std::move(body); }
  const std::string& body() const { return body_; }

  // Writes the CGI output in pieces to sink.
  void write(const std::function<void(std::string_view)>& sink) const;
  // The CGI output as one string (tests; it includes cookie values).
  std::string serialize() const;
  // Writes the CGI output to stdout. False when stdout failed (client gone).
  bool write_to_stdout() const;

 private:
  int status_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string csp_extra_;
  std::vector<SetCookie> cookies_;
  std::string body_;
};

// "Not Found" for 404 and so on; "Unknown" for codes we never send.
const char* reason_phrase(int status);

// A file name safe to offer for saving: no directories, quotes, control characters
// or leading dots; at most 200 bytes; "attachment" when nothing is left.
std::string safe_filename(std::string_view name);

// `attachment; filename="ASCII"; filename*=UTF-8''PERCENT-ENCODED` for name.
std::string content_disposition_attachment(std::string_view name);

}  // namespace wmk::cgi

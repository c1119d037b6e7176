#pragma once
// Request: one CGI request, parsed with cgicc (form fields, multipart uploads,
// cookies) from the CGI environment and the body on stdin.
//
// Secret fields (passwords, passphrases) and secret cookies (the grant cookie) are
// named up front. Fields are cut out of an application/x-www-form-urlencoded body
// held in locked memory and percent-decoded straight into a util::SecretBuffer;
// cookies are cut out of HTTP_COOKIE the same way (and the environment's copy is
// wiped). cgicc is handed the body and cookie header with them removed, so its
// std::string copies never hold a secret. A program with secret fields accepts no
// other body type (Errc::unsupported). Limits: docs/security.md "Web layer".

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::cgi {

// One uploaded file of a multipart/form-data body.
struct UploadedFile {
  std::string field;         // the form field's name
  std::string filename;      // as the browser sent it (cgicc strips directories)
  std::string content_type;  // as the browser claimed it; never trusted for display
  std::string data;
};

// Where the request comes from: the process (real CGI) or a map (tests).
struct RequestSource {
  // The CGI variable's value, or nullopt when unset.
  std::function<std::optional<std::string>(const char* name)> env;
  // The variable copied into locked memory, its original wiped (empty when unset).
  std::function<util::SecretBuffer(const char* name)> take_env;
  // Reads exactly size bytes of the body into out; false on a short read or error.
  std::function<bool(std::span<std::uint8_t> out)> read_body;

  // The process environment and stdin.
  static RequestSource process();
  // A fixed environment and body (the body is copied; tests only).
  static RequestSource fixed(std::map<std::string, std::string> env, std::string body);
};

// The form fields and cookies that hold secrets.
struct SecretNames {
  std::vector<std::string_view> fields;
  std::vector<std::string_view> cookies;
};

struct RequestLimits {
  std::size_t max_body_bytes = 32 * 1024 * 1024;
};

class Request {
 public:
  // Parses the request, keeping the named secrets out of cgicc.
  // Errors: Errc::invalid_argument (malformed or too large body, missing
  // CONTENT_LENGTH on a POST), Errc::unsupported (a body type a program with secret
  // fields does not take), Errc::io (the body could not be read).
  static Result<Request> parse(const RequestSource& source, const SecretNames& secrets = {},
                               const RequestLimits& limits = {});

  // GET, POST, ... as sent.
  const std::string& method() const { return method_; }
  bool is_post() const { return method_ == "POST"; }
  // The request path without the query string (from REQUEST_URI, else SCRIPT_NAME).
  const std::string& path() const { return path_; }

  // A form field: for POST the body's fields only (never the query string, so a
  // token in a URL cannot stand in for a form), for other methods the query's.
  // The first value when repeated; nullopt when absent.
  std::optional<std::string> field(std::string_view name) const;
  // Every value of a field, in order.
  std::vector<std::string> fields(std::string_view name) const;
  // A query-string parameter, whatever the method.
  std::optional<std::string> query(std::string_view name) const;
  // A cookie by name; nullopt when absent.
  std::optional<std::string> cookie(std::string_view name) const;
  // Uploaded files of a multipart body, in order.
  const std::vector<UploadedFile>& files() const { return files_; }

  // Takes the secret field out of the request (a second call returns nullopt).
  // nullopt when the field was absent or not declared secret in parse().
  std::optional<util::SecretBuffer> take_secret(std::string_view name);
  // The same for a secret cookie.
  std::optional<util::SecretBuffer> take_secret_cookie(std::string_view name);

  // REMOTE_ADDR, or the client behind a trusted proxy (see use_trusted_proxies).
  const std::string& client_addr() const { return client_addr_; }
  // Believes X-Forwarded-For when REMOTE_ADDR is one of proxies (util::client_address).
  void use_trusted_proxies(const std::vector<std::string>& proxies);
  // HTTP_USER_AGENT.
  const std::string& user_agent() const { return user_agent_; }
  // True when the server says the connection is TLS (HTTPS=on, as lighttpd sets it).
  bool https() const { return https_; }
  // Any CGI variable (e.g. HTTP_ORIGIN, HTTP_SEC_FETCH_SITE, HTTP_HOST); HTTP_COOKIE
  // without the secret cookies.
  std::optional<std::string> env(const char* name) const;

 private:
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  std::string method_;
  std::string path_;
  Pairs query_;
  Pairs form_;
  std::map<std::string, std::string> cookies_;
  std::vector<UploadedFile> files_;
  std::vector<std::pair<std::string, util::SecretBuffer>> secrets_;
  std::vector<std::pair<std::string, util::SecretBuffer>> secret_cookies_;
  std::function<std::optional<std::string>(const char*)> env_;
  std::string cookie_header_;  // HTTP_COOKIE without the secret cookies
  std::string client_addr_;
  std::string user_agent_;
  bool https_ = false;
};

// Splits an application/x-www-form-urlencoded string into decoded name/value pairs
// ('+' is a space, %XX a byte; a malformed escape is kept as is).
std::vector<std::pair<std::string, std::string>> parse_urlencoded(std::string_view text);

}  // namespace wmk::cgi

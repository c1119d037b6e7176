#include "cgi/common/response.h"

#include <unistd.h>

#include <stdexcept>

#include "core/util/fs.h"

namespace wmk::cgi {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = static_cast<char>(y - 'A' + 'a');
    if (x != y)
      return false;
  }
  return true;
}

void check_header_text(std::string_view s) {
  if (s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
    throw std::invalid_argument("header text contains CR, LF or NUL");
}

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

void check_cookie_name(std::string_view name) {
  constexpr std::string_view kPrefix = "__Host-";
  if (name.substr(0, kPrefix.size()) != kPrefix || name.size() == kPrefix.size())
    throw std::invalid_argument("cookie names must start with __Host-");
  for (char c : name) {
    if (!is_token_char(c))
      throw std::invalid_argument("cookie name has a character outside [A-Za-z0-9._-]");
  }
}

// RFC 6265 cookie-octet, narrowed to what our tokens use.
void check_cookie_value(std::string_view value) {
  for (char c : value) {
    if (!is_token_char(c) && c != '~')
      throw std::invalid_argument("cookie value has a character outside [A-Za-z0-9._~-]");
  }
}

}  // namespace

SetCookie::SetCookie(std::string_view name, std::string_view value,
                     std::optional<std::int64_t> max_age)
    : name_(name), value_(util::SecretBuffer::copy_of(value)), max_age_(max_age) {
  check_cookie_name(name);
  check_cookie_value(value);
}

SetCookie SetCookie::session(std::string_view name, std::string_view value) {
  return SetCookie(name, value, std::nullopt);
}

SetCookie SetCookie::session_secret(std::string_view name, const util::SecretBuffer& value) {
  return SetCookie(name, value.view(), std::nullopt);
}

SetCookie SetCookie::persistent(std::string_view name, std::string_view value,
                                std::chrono::seconds max_age) {
  return SetCookie(name, value, max_age.count());
}

SetCookie SetCookie::deletion(std::string_view name) {
  return SetCookie(name, "", 0);
}

void SetCookie::write_value(const std::function<void(std::string_view)>& sink) const {
  sink(name_);
  sink("=");
  sink(value_.view());
  sink("; Secure; HttpOnly; SameSite=Strict; Path=/");
  if (max_age_)
    sink("; Max-Age=" + std::to_string(*max_age_));
}

Response::Response(int status) : status_(status) {
  set_header("Content-Type", "text/html; charset=utf-8");
  set_header("Cache-Control", "no-store");
  set_header("Strict-Transport-Security", "max-age=31536000");
  set_header("Referrer-Policy", "no-referrer");
  set_header("X-Content-Type-Options", "nosniff");
  set_header("X-Frame-Options", "DENY");
  set_header("Cross-Origin-Opener-Policy", "same-origin");
  set_header("Cross-Origin-Resource-Policy", "same-origin");
}

Response Response::page(int status, const Html& document) {
  Response r(status);
  r.set_body(document.str());
  return r;
}

Response Response::redirect(std::string_view location) {
  if (location.empty() || location[0] != '/' || (location.size() > 1 && location[1] == '/') ||
      location.find('\\') != std::string_view::npos) {
    throw std::invalid_argument("redirects go to a path on this site");
  }
  Response r(303);
  r.set_header("Location", location);
  return r;
}

Response Response::download(std::string data, std::string_view content_type,
                            std::string_view filename) {
  Response r(200);
  r.set_header("Content-Type", content_type);
  r.set_header("Content-Disposition", content_disposition_attachment(filename));
  // Should a browser render it anyway, it gets no script, no origin, no plugins.
  r.extend_csp("sandbox");
  r.set_body(std::move(data));
  return r;
}

void Response::set_header(std::string_view name, std::string_view value) {
  check_header_text(name);
  check_header_text(value);
  if (name.find(':') != std::string_view::npos)
    throw std::invalid_argument("header name contains ':'");
  for (auto& [n, v] : headers_) {
    if (iequals(n, name)) {
      v = std::string(value);
      return;
    }
  }
  headers_.emplace_back(std::string(name), std::string(value));
}

std::optional<std::string> Response::header(std::string_view name) const {
  if (iequals(name, "Content-Security-Policy")) {
    std::string csp(kContentSecurityPolicy);
    if (!csp_extra_.empty())
      csp += "; " + csp_extra_;
    return csp;
  }
  for (const auto& [n, v] : headers_) {
    if (iequals(n, name))
      return v;
  }
  return std::nullopt;
}

void Response::extend_csp(std::string_view directives) {
  check_header_text(directives);
  if (!csp_extra_.empty())
    csp_extra_ += "; ";
  csp_extra_ += directives;
}

void Response::add_cookie(SetCookie cookie) {
  for (auto& c : cookies_) {
    if (c.name() == cookie.name()) {
      c = std::move(cookie);
      return;
    }
  }
  cookies_.push_back(std::move(cookie));
}

void Response::write(const std::function<void(std::string_view)>& sink) const {
  std::string head = "Status: " + std::to_string(status_) + " " + reason_phrase(status_) + "\r\n";
  for (const auto& [n, v] : headers_)
    head += n + ": " + v + "\r\n";
  head += "Content-Security-Policy: " + *header("Content-Security-Policy") + "\r\n";
  sink(head);
  for (const auto& c : cookies_) {
    sink("Set-Cookie: ");
    c.write_value(sink);
    sink("\r\n");
  }
  sink("\r\n");
  sink(body_);
}

std::string Response::serialize() const {
  std::string out;
  write([&out](std::string_view piece) { out += piece; });
  return out;
}

bool Response::write_to_stdout() const {
  bool ok = true;
  write([&ok](std::string_view piece) {
    if (ok && !util::write_all(STDOUT_FILENO, piece).ok())
      ok = false;
  });
  return ok;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 303:
      return "See Other";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string safe_filename(std::string_view name) {
  // Keep only the last path component, whatever separator the sender used.
  auto slash = name.find_last_of("/\\");
  if (slash != std::string_view::npos)
    name = name.substr(slash + 1);
  std::string out;
  for (char c : name) {
    auto uc = static_cast<unsigned char>(c);
    if (uc < 0x20 || uc == 0x7F || c == '"' || c == ';' || c == ':' || c == '*' || c == '?' ||
        c == '<' || c == '>' || c == '|')
      out += '_';
    else
      out += c;
  }
  while (!out.empty() && (out.front() == '.' || out.front() == ' '))
    out.erase(out.begin());
  while (!out.empty() && (out.back() == ' ' || out.back() == '.'))
    out.pop_back();
  if (out.size() > 200) {
    // Cut on a UTF-8 boundary.
    std::size_t cut = 200;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80)
      --cut;
    out.resize(cut);
  }
  if (out.empty())
    out = "attachment";
  return out;
}

std::string content_disposition_attachment(std::string_view name) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string safe = safe_filename(name);
  std::string ascii;
  std::string encoded;
  for (char c : safe) {
    auto uc = static_cast<unsigned char>(c);
    // One '_' per non-ASCII character: lead bytes count, continuation bytes do not.
    if (uc >= 0x80) {
      if ((uc & 0xC0) != 0x80)
        ascii += '_';
    } else {
      ascii += (c == '\\' || c == '%') ? '_' : c;
    }
    bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || c == '~';
    if (plain) {
      encoded += c;
    } else {
      encoded += '%';
      encoded += kHex[uc >> 4];
      encoded += kHex[uc & 0xF];
    }
  }
  return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

}  // namespace wmk::cgi

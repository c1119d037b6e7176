#include "cgi/common/request.h"

#include <cgicc/CgiEnvironment.h>
#include <cgicc/CgiInput.h>
#include <cgicc/Cgicc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>

#include "core/util/ascii.h"
#include "core/util/encoding.h"
#include "core/util/net.h"

namespace wmk::cgi {

namespace {

// Decodes form-urlencoded text into out (at least text.size() bytes); returns the
// decoded length. Used for secrets too, so it writes into caller-owned memory.
std::size_t form_decode(std::string_view text, char* out) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out[n++] = ' ';
      continue;
    }
    if (c == '%' && i + 2 < text.size()) {
      auto hi = util::hex_digit_value(text[i + 1]);
      auto lo = util::hex_digit_value(text[i + 2]);
      if (hi && lo) {
        out[n++] = static_cast<char>(*hi * 16 + *lo);
        i += 2;
        continue;
      }
    }
    out[n++] = c;
  }
  return n;
}

std::string form_decode(std::string_view text) {
  std::string out(text.size(), '\0');
  out.resize(form_decode(text, out.data()));
  return out;
}

bool contains(const std::vector<std::string_view>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

// Hands cgicc a body and cookie header with the secrets already cut out.
class FilteredInput final : public cgicc::CgiInput {
 public:
  FilteredInput(const std::function<std::optional<std::string>(const char*)>& env,
                const std::string& cookie_header, const std::string& body, bool body_only)
      : env_(env), cookie_header_(cookie_header), body_(body), body_only_(body_only) {}

  size_t read(char* data, size_t length) override {
    std::size_t n = std::min(length, body_.size() - offset_);
    std::memcpy(data, body_.data() + offset_, n);
    offset_ += n;
    return n;
  }

  std::string getenv(const char* name) override {
    std::string_view n(name);
    if (n == "CONTENT_LENGTH")
      return std::to_string(body_.size());
    if (n == "HTTP_COOKIE")
      return cookie_header_;
    if (n == "QUERY_STRING" && body_only_)
      return "";  // cgicc would mix the query into a POST's form fields
    return env_(name).value_or("");
  }

 private:
  const std::function<std::optional<std::string>(const char*)>& env_;
  const std::string& cookie_header_;
  const std::string& body_;
  bool body_only_;
  std::size_t offset_ = 0;
};

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_urlencoded(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    auto amp = text.find('&');
    std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
    if (pair.empty())
      continue;
    auto eq = pair.find('=');
    if (eq == std::string_view::npos)
      out.emplace_back(form_decode(pair), std::string());
    else
      out.emplace_back(form_decode(pair.substr(0, eq)), form_decode(pair.substr(eq + 1)));
  }
  return out;
}

RequestSource RequestSource::process() {
  RequestSource s;
  s.env = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr)
      return std::nullopt;
    return std::string(v);
  };
  s.take_env = [](const char* name) {
    char* v = std::getenv(name);
    if (v == nullptr)
      return util::SecretBuffer();
    std::size_t len = std::strlen(v);
    auto copy = util::SecretBuffer::copy_of(std::string_view(v, len));
    util::wipe(v, len);  // the variable reads as empty from now on
    return copy;
  };
  s.read_body = [](std::span<std::uint8_t> out) {
    std::size_t got = 0;
    while (got < out.size()) {
      ssize_t r = ::read(STDIN_FILENO, out.data() + got, out.size() - got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  };
  return s;
}

RequestSource RequestSource::fixed(std::map<std::string, std::string> env, std::string body) {
  auto vars = std::make_shared<std::map<std::string, std::string>>(std::move(env));
  auto data = std::make_shared<std::string>(std::move(body));
  auto offset = std::make_shared<std::size_t>(0);
  RequestSource s;
  s.env = [vars](const char* name) -> std::optional<std::string> {
    auto it = vars->find(name);
    if (it == vars->end())
      return std::nullopt;
    return it->second;
  };
  s.take_env = [vars](const char* name) {
    auto it = vars->find(name);
    if (it == vars->end())
      return util::SecretBuffer();
    auto copy = util::SecretBuffer::copy_of(it->second);
    util::wipe(it->second.data(), it->second.size());
    it->second.clear();
    return copy;
  };
  s.read_body = [data, offset](std::span<std::uint8_t> out) {
    if (data->size() - *offset < out.size())
      return false;
    std::memcpy(out.data(), data->data() + *offset, out.size());
    *offset += out.size();
    return true;
  };
  return s;
}

void Request::use_trusted_proxies(const std::vector<std::string>& proxies) {
  client_addr_ =
      util::client_address(env("REMOTE_ADDR").value_or(""), env("HTTP_X_FORWARDED_FOR"), proxies);
}

Result<Request> Request::parse(const RequestSource& source, const SecretNames& secrets,
                               const RequestLimits& limits) {
  Request r;
  r.env_ = source.env;
  r.method_ = source.env("REQUEST_METHOD").value_or("GET");
  std::transform(r.method_.begin(), r.method_.end(), r.method_.begin(),
                 [](char c) { return static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c); });
  if (auto uri = source.env("REQUEST_URI"); uri && !uri->empty()) {
    r.path_ = uri->substr(0, uri->find('?'));
  } else {
    r.path_ = source.env("SCRIPT_NAME").value_or("") + source.env("PATH_INFO").value_or("");
  }
  r.client_addr_ = source.env("REMOTE_ADDR").value_or("");
  r.user_agent_ = source.env("HTTP_USER_AGENT").value_or("");
  r.https_ = lower(source.env("HTTPS").value_or("")) == "on";
  r.query_ = parse_urlencoded(source.env("QUERY_STRING").value_or(""));

  // Cookies: secret ones into locked memory, the rest into the header cgicc sees.
  if (secrets.cookies.empty()) {
    r.cookie_header_ = source.env("HTTP_COOKIE").value_or("");
  } else {
    util::SecretBuffer raw = source.take_env("HTTP_COOKIE");
    std::string_view rest = raw.view();
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view item = util::trim_blanks(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      auto eq = item.find('=');
      std::string_view name = util::trim_blanks(item.substr(0, eq));
      if (eq != std::string_view::npos && contains(secrets.cookies, name)) {
        bool seen = std::any_of(r.secret_cookies_.begin(), r.secret_cookies_.end(),
                                [&](const auto& p) { return p.first == name; });
        if (!seen) {
          r.secret_cookies_.emplace_back(
              std::string(name),
              util::SecretBuffer::copy_of(util::trim_blanks(item.substr(eq + 1))));
        }
        continue;
      }
      if (!item.empty()) {
        if (!r.cookie_header_.empty())
          r.cookie_header_ += "; ";
        r.cookie_header_ += item;
      }
    }
  }

  // Body.
  std::string body;
  bool has_body_method = r.method_ == "POST" || r.method_ == "PUT";
  if (has_body_method) {
    std::size_t length = 0;
    std::string cl = source.env("CONTENT_LENGTH").value_or("");
    if (!cl.empty()) {
      auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), length);
      if (ec != std::errc() || p != cl.data() + cl.size())
        return make_error(Errc::invalid_argument, "CONTENT_LENGTH is not a number");
    }
    if (length > limits.max_body_bytes) {
      return make_error(
          Errc::invalid_argument,
          "the request body is larger than " + std::to_string(limits.max_body_bytes) + " bytes");
    }
    std::string content_type = lower(source.env("CONTENT_TYPE").value_or(""));
    bool urlencoded = content_type.rfind("application/x-www-form-urlencoded", 0) == 0;
    if (!secrets.fields.empty()) {
      if (length > 0 && !urlencoded) {
        return make_error(Errc::unsupported,
                          "this form must be sent as application/x-www-form-urlencoded");
      }
      util::SecretBuffer raw(length);
      if (length > 0 && !source.read_body(raw.bytes()))
        return make_error(Errc::io, "the request body ended early");
      std::string_view rest = raw.view();
      while (!rest.empty()) {
        auto amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        auto eq = pair.find('=');
        std::string name = form_decode(pair.substr(0, eq));
        if (contains(secrets.fields, name)) {
          std::string_view value =
              eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
          util::SecretBuffer decoded(value.size());
          decoded.truncate(form_decode(value, reinterpret_cast<char*>(decoded.data())));
          bool seen = std::any_of(r.secrets_.begin(), r.secrets_.end(),
                                  [&](const auto& p) { return p.first == name; });
          if (!seen)
            r.secrets_.emplace_back(std::move(name), std::move(decoded));
          continue;
        }
        if (pair.empty())
          continue;
        if (!body.empty())
          body += '&';
        body += pair;
      }
    } else {
      body.resize(length);
      if (length > 0 &&
          !source.read_body({reinterpret_cast<std::uint8_t*>(body.data()), body.size()})) {
        return make_error(Errc::io, "the request body ended early");
      }
    }
  }

  try {
    FilteredInput input(source.env, r.cookie_header_, body, has_body_method);
    cgicc::Cgicc cgi(&input);
    if (has_body_method) {
      for (const auto& e : *cgi)
        r.form_.emplace_back(e.getName(), e.getValue());
    } else {
      r.form_ = r.query_;
    }
    for (const auto& f : cgi.getFiles()) {
      r.files_.push_back(UploadedFile{f.getName(), f.getFilename(), f.getDataType(), f.getData()});
    }
    for (const auto& c : cgi.getEnvironment().getCookieList()) {
      r.cookies_.emplace(c.getName(), c.getValue());
    }
  } catch (const std::exception& e) {
    return make_error(Errc::invalid_argument, std::string("malformed request: ") + e.what());
  }
  return r;
}

std::optional<std::string> Request::field(std::string_view name) const {
  for (const auto& [n, v] : form_) {
    if (n == name)
      return v;
  }
  return std::nullopt;
}

std::vector<std::string> Request::fields(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : form_) {
    if (n == name)
      out.push_back(v);
  }
  return out;
}

std::optional<std::string> Request::query(std::string_view name) const {
  for (const auto& [n, v] : query_) {
    if (n == name)
      return v;
  }
  return std::nullopt;
}

std::optional<std::string> Request::cookie(std::string_view name) const {
  auto it = cookies_.find(std::string(name));
  if (it == cookies_.end())
    return std::nullopt;
  return it->second;
}

namespace {

std::optional<util::SecretBuffer> take_from(
    std::vector<std::pair<std::string, util::SecretBuffer>>& list, std::string_view name) {
  for (auto it = list.begin(); it != list.end(); ++it) {
    if (it->first == name) {
      util::SecretBuffer out = std::move(it->second);
      list.erase(it);
      return out;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<util::SecretBuffer> Request::take_secret(std::string_view name) {
  return take_from(secrets_, name);
}

std::optional<util::SecretBuffer> Request::take_secret_cookie(std::string_view name) {
  return take_from(secret_cookies_, name);
}

std::optional<std::string> Request::env(const char* name) const {
  if (std::string_view(name) == "HTTP_COOKIE")
    return cookie_header_;
  return env_ ? env_(name) : std::nullopt;
}

}  // namespace wmk::cgi

#include "core/config/config.h"

#include <charconv>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include "core/util/fs.h"
#include "core/util/net.h"

namespace wmk::config {

namespace {

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::optional<std::uint64_t> parse_uint(const std::string& v) {
  std::uint64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty())
    return std::nullopt;
  return out;
}

using Setter = std::function<std::optional<std::string>(Config&, const std::string&)>;

Setter uint_in(std::uint32_t Config::*field, std::uint64_t lo, std::uint64_t hi) {
  return [=](Config& c, const std::string& v) -> std::optional<std::string> {
    auto n = parse_uint(v);
    if (!n || *n < lo || *n > hi) {
      return "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
    }
    c.*field = static_cast<std::uint32_t>(*n);
    return std::nullopt;
  };
}

Setter seconds_in(std::chrono::seconds Config::*field, std::uint64_t lo, std::uint64_t hi) {
  return [=](Config& c, const std::string& v) -> std::optional<std::string> {
    auto n = parse_uint(v);
    if (!n || *n < lo || *n > hi) {
      return "expected seconds from " + std::to_string(lo) + " to " + std::to_string(hi);
    }
    c.*field = std::chrono::seconds(*n);
    return std::nullopt;
  };
}

Setter boolean(bool Config::*field) {
  return [=](Config& c, const std::string& v) -> std::optional<std::string> {
    if (v == "true" || v == "yes" || v == "on" || v == "1") {
      c.*field = true;
    } else if (v == "false" || v == "no" || v == "off" || v == "0") {
      c.*field = false;
    } else {
      return "expected true or false";
    }
    return std::nullopt;
  };
}

Setter absolute_path(std::string Config::*field) {
  return [=](Config& c, const std::string& v) -> std::optional<std::string> {
    if (v.empty() || v[0] != '/')
      return "expected an absolute path";
    c.*field = v;
    return std::nullopt;
  };
}

const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> kSetters = {
      {"data_dir", absolute_path(&Config::data_dir)},
      {"maildir",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.empty() || (v[0] != '/' && v.rfind("%h", 0) != 0)) {
           return "expected an absolute path pattern (may start with %h)";
         }
         if (v.find("%u") == std::string::npos && v.find("%n") == std::string::npos) {
           return "the pattern must contain %u or %n so users get separate Maildirs";
         }
         c.maildir = v;
         return std::nullopt;
       }},
      {"sendmail", absolute_path(&Config::sendmail)},
      {"allow_insecure_http", boolean(&Config::allow_insecure_http)},
      {"session_idle_timeout", seconds_in(&Config::session_idle_timeout, 10, 86400 * 7)},
      {"session_absolute_timeout", seconds_in(&Config::session_absolute_timeout, 10, 86400 * 30)},
      {"grant_idle_timeout", seconds_in(&Config::grant_idle_timeout, 5, 86400)},
      {"grant_absolute_timeout", seconds_in(&Config::grant_absolute_timeout, 5, 86400 * 7)},
      {"kdf_memory_kib", uint_in(&Config::kdf_memory_kib, 8, 4 * 1024 * 1024)},
      {"kdf_iterations", uint_in(&Config::kdf_iterations, 1, 100)},
      {"kdf_parallelism", uint_in(&Config::kdf_parallelism, 1, 16)},
      {"password_memory_kib", uint_in(&Config::password_memory_kib, 8, 4 * 1024 * 1024)},
      {"password_iterations", uint_in(&Config::password_iterations, 1, 100)},
      {"unlock_confirmation", boolean(&Config::unlock_confirmation)},
      {"max_failures", uint_in(&Config::max_failures, 1, 1000)},
      {"max_failures_per_address", uint_in(&Config::max_failures_per_address, 1, 100000)},
      {"lockout", seconds_in(&Config::lockout, 1, 86400)},
      {"trusted_proxies",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         std::vector<std::string> out;
         std::string item;
         for (std::size_t i = 0; i <= v.size(); ++i) {
           char ch = i < v.size() ? v[i] : ' ';
           if (ch == ' ' || ch == ',' || ch == '\t') {
             if (!item.empty()) {
               auto canon = util::canonical_ip(item);
               if (!canon)
                 return "`" + item + "` is not an IPv4 or IPv6 address";
               out.push_back(*canon);
             }
             item.clear();
           } else {
             item += ch;
           }
         }
         c.trusted_proxies = std::move(out);
         return std::nullopt;
       }},
      {"attachment_max_bytes",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto n = parse_uint(v);
         if (!n || *n < 1024 || *n > (std::uint64_t{1} << 31)) {
           return "expected bytes from 1024 to 2147483648";
         }
         c.attachment_max_bytes = *n;
         return std::nullopt;
       }},
      {"page_size", uint_in(&Config::page_size, 5, 500)},
      {"max_header_bytes", uint_in(&Config::max_header_bytes, 1024, 1024 * 1024)},
      {"worker_max_requests", uint_in(&Config::worker_max_requests, 1, 1000000)},
      {"smime_unprotected",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v == "text")
           c.smime_unprotected = SmimeUnprotected::text;
         else if (v == "refuse")
           c.smime_unprotected = SmimeUnprotected::refuse;
         else
           return "expected text or refuse";
         return std::nullopt;
       }},
  };
  return kSetters;
}

}  // namespace

const char* smime_unprotected_name(SmimeUnprotected v) {
  return v == SmimeUnprotected::refuse ? "refuse" : "text";
}

Result<Config> parse(const std::string& text, const std::string& source_name) {
  Config c;
  c.source = source_name;
  std::vector<Problem> problems;
  std::map<std::string, int> seen;
  std::istringstream in(text);
  std::string raw;
  int lineno = 0;
  while (std::getline(in, raw)) {
    ++lineno;
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';')
      continue;
    if (line.front() == '[' && line.back() == ']')
      continue;  // sections are for readers only
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      problems.push_back({lineno, "expected `key = value`"});
      continue;
    }
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    auto it = setters().find(key);
    if (it == setters().end()) {
      problems.push_back({lineno, "unknown key `" + key + "`"});
      continue;
    }
    if (auto prev = seen.find(key); prev != seen.end()) {
      problems.push_back(
          {lineno, "`" + key + "` is already set on line " + std::to_string(prev->second)});
      continue;
    }
    seen[key] = lineno;
    if (auto why = it->second(c, value))
      problems.push_back({lineno, key + ": " + *why});
  }
  if (c.grant_idle_timeout > c.grant_absolute_timeout) {
    problems.push_back({seen.count("grant_idle_timeout") ? seen["grant_idle_timeout"] : 0,
                        "grant_idle_timeout is longer than grant_absolute_timeout"});
  }
  if (c.session_idle_timeout > c.session_absolute_timeout) {
    problems.push_back({seen.count("session_idle_timeout") ? seen["session_idle_timeout"] : 0,
                        "session_idle_timeout is longer than session_absolute_timeout"});
  }
  if (!problems.empty()) {
    std::string msg;
    for (const auto& p : problems) {
      if (!msg.empty())
        msg += "\n";
      msg += source_name + ":" + std::to_string(p.line) + ": " + p.message;
    }
    return make_error(Errc::config, msg);
  }
  return c;
}

Result<Config> load(const std::string& path) {
  auto text = util::read_file(path);
  if (!text) {
    return make_error(text.code(), "cannot read the configuration: " + text.error().message);
  }
  return parse(*text, path);
}

std::string resolve_path(const std::optional<std::string>& explicit_path) {
  if (explicit_path && !explicit_path->empty())
    return *explicit_path;
  if (const char* env = std::getenv(kConfigEnv); env != nullptr && *env != '\0')
    return env;
  return kDefaultConfigPath;
}

static std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words)
    out += (out.empty() ? "" : " ") + w;
  return out;
}

std::string render(const Config& c) {
  auto b = [](bool v) { return v ? "true" : "false"; };
  std::ostringstream o;
  o << "# webmailkey configuration. Every key is shown at its value; see docs/admin-guide.md.\n"
    << "data_dir = " << c.data_dir << "\n"
    << "# %u login, %d domain and %n local part of the primary address, %h data_dir\n"
    << "maildir = " << c.maildir << "\n"
    << "sendmail = " << c.sendmail << "\n"
    << "# Only for tests on loopback: serve without HTTPS.\n"
    << "allow_insecure_http = " << b(c.allow_insecure_http) << "\n\n"
    << "# Seconds.\n"
    << "session_idle_timeout = " << c.session_idle_timeout.count() << "\n"
    << "session_absolute_timeout = " << c.session_absolute_timeout.count() << "\n"
    << "grant_idle_timeout = " << c.grant_idle_timeout.count() << "\n"
    << "grant_absolute_timeout = " << c.grant_absolute_timeout.count() << "\n\n"
    << "# Argon2id cost of key passphrases (paid once per unlock) and of login passwords.\n"
    << "kdf_memory_kib = " << c.kdf_memory_kib << "\n"
    << "kdf_iterations = " << c.kdf_iterations << "\n"
    << "kdf_parallelism = " << c.kdf_parallelism << "\n"
    << "password_memory_kib = " << c.password_memory_kib << "\n"
    << "password_iterations = " << c.password_iterations << "\n\n"
    << "# Ask for the key passphrase twice on the unlock page.\n"
    << "unlock_confirmation = " << b(c.unlock_confirmation) << "\n"
    << "# Failures in a row before a lockout, and the first lockout in seconds (doubles).\n"
    << "max_failures = " << c.max_failures << "\n"
    << "# The same for all logins from one client address.\n"
    << "max_failures_per_address = " << c.max_failures_per_address << "\n"
    << "lockout = " << c.lockout.count() << "\n"
    << "# Reverse proxies (addresses, space-separated) whose X-Forwarded-For names the\n"
    << "# client; see docs/security.md. Empty: the connecting address is the client.\n"
    << "trusted_proxies = " << join_words(c.trusted_proxies) << "\n"
    << "attachment_max_bytes = " << c.attachment_max_bytes << "\n"
    << "page_size = " << c.page_size << "\n"
    << "# The largest mail header `deliver` accepts, in bytes (at most 1048576).\n"
    << "max_header_bytes = " << c.max_header_bytes << "\n"
    << "# A FastCGI worker serves this many requests, then renews itself (a fresh process\n"
    << "# image, which reads this file again; SIGHUP does it at once).\n"
    << "worker_max_requests = " << c.worker_max_requests << "\n\n"
    << "# S/MIME encrypted without integrity protection (EnvelopedData, AES-CBC): text\n"
    << "# (shown as plain text only, marked as possibly altered) or refuse.\n"
    << "smime_unprotected = " << smime_unprotected_name(c.smime_unprotected) << "\n";
  return o.str();
}

std::string maildir_for(const Config& c, const std::string& login, const std::string& email) {
  auto at = email.find('@');
  std::string local = at == std::string::npos ? email : email.substr(0, at);
  std::string domain = at == std::string::npos ? "" : email.substr(at + 1);
  std::string out;
  for (std::size_t i = 0; i < c.maildir.size(); ++i) {
    if (c.maildir[i] == '%' && i + 1 < c.maildir.size()) {
      char k = c.maildir[++i];
      if (k == 'u')
        out += login;
      else if (k == 'd')
        out += domain;
      else if (k == 'n')
        out += local;
      else if (k == 'h')
        out += c.data_dir;
      else if (k == '%')
        out += '%';
      else
        out += std::string("%") + k;
    } else {
      out += c.maildir[i];
    }
  }
  return out;
}

}  // namespace wmk::config

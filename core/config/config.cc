#include "core/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>

#include "core/util/fs.h"
#include "core/util/net.h"
#include "core/util/utf8.h"

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

using Getter = std::function<std::string(const Config&)>;

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words)
    out += (out.empty() ? "" : " ") + w;
  return out;
}

std::string seconds_text(std::chrono::seconds s) {
  return std::to_string(s.count());
}

// The one table of keys: the parser, render() and the generated reference in
// docs/admin-guide.md all read it, so they cannot disagree.
struct KeySpec {
  const char* name;
  const char* help;
  Setter set;
  Getter get;
};

const std::vector<KeySpec>& key_specs() {
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  static const std::vector<KeySpec> kKeys = {
      {"data_dir", "database, GnuPG home, and (by default) the Maildirs",
       absolute_path(&Config::data_dir), [](const Config& c) { return c.data_dir; }},
      {"store",
       "where users, sessions, grants, keys, the audit and the mail index live: `sqlite` "
       "(`data_dir`/webmailkey.db, embedded) or `postgresql` (the server `store_postgresql` "
       "names; `store migrate --to postgresql` copies a SQLite store across)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v == "sqlite")
           c.store = StoreEngine::sqlite;
         else if (v == "postgresql")
           c.store = StoreEngine::postgresql;
         else
           return "expected sqlite or postgresql";
         return std::nullopt;
       },
       [](const Config& c) { return std::string(store_engine_name(c.store)); }},
      {"store_postgresql",
       "the PostgreSQL connection string (libpq, e.g. `host=/run/postgresql dbname=webmailkey "
       "user=webmailkey`); prefer peer authentication or a `passfile`: with a `password=` the "
       "config file must not be readable by every user, and the password is never shown",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         for (char ch : v) {
           if (static_cast<unsigned char>(ch) < 0x20)
             return "control characters are not allowed";
         }
         c.store_postgresql = v;
         return std::nullopt;
       },
       [](const Config& c) { return mask_conninfo_password(c.store_postgresql); }},
      {"maildir",
       "each user's Maildir: `%u` login, `%d` domain and `%n` local part of the primary "
       "address, `%h` data_dir (e.g. `/var/vmail/%d/%n/Maildir`)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.empty() || (v[0] != '/' && v.rfind("%h", 0) != 0)) {
           return "expected an absolute path pattern (may start with %h)";
         }
         if (v.find("%u") == std::string::npos && v.find("%n") == std::string::npos) {
           return "the pattern must contain %u or %n so users get separate Maildirs";
         }
         c.maildir = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.maildir; }},
      {"mailbox",
       "where users' mail is read: `maildir` (the `maildir` pattern on this machine) or "
       "`imap` (the server `imap_host`; the MTA or Dovecot delivers there, not "
       "`webmailkey deliver`)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v == "maildir")
           c.mailbox = MailboxBackend::maildir;
         else if (v == "imap")
           c.mailbox = MailboxBackend::imap;
         else
           return "expected maildir or imap";
         return std::nullopt;
       },
       [](const Config& c) { return std::string(mailbox_backend_name(c.mailbox)); }},
      {"imap_host", "the IMAP server (`mailbox = imap`); its certificate must name this host",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         for (char ch : v) {
           if (static_cast<unsigned char>(ch) <= 0x20 || ch == '/' || ch == '@')
             return "expected a host name or address";
         }
         c.imap_host = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.imap_host; }},
      {"imap_port", "the IMAP server's port (0: 993 for `imaps`, 143 for `starttls`)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto n = parse_uint(v);
         if (!n || *n > 65535)
           return "expected a port from 0 to 65535";
         c.imap_port = static_cast<std::uint16_t>(*n);
         return std::nullopt;
       },
       [](const Config& c) { return std::to_string(c.imap_port); }},
      {"imap_tls",
       "`imaps` (TLS from the first byte) or `starttls` (refused if the server does not offer "
       "it); either way the certificate is verified before the login",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v == "imaps")
           c.imap_tls = ImapTlsMode::imaps;
         else if (v == "starttls")
           c.imap_tls = ImapTlsMode::starttls;
         else
           return "expected imaps or starttls";
         return std::nullopt;
       },
       [](const Config& c) {
         return std::string(c.imap_tls == ImapTlsMode::imaps ? "imaps" : "starttls");
       }},
      {"imap_ca_file",
       "a PEM file of CAs the IMAP server's certificate may chain to, beside the system store "
       "(empty: the system store only)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (!v.empty() && v[0] != '/')
           return "expected an absolute path (or nothing)";
         c.imap_ca_file = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.imap_ca_file; }},
      {"imap_user",
       "each user's IMAP user name, a pattern as `maildir`'s: `%u` login, `%d` domain and "
       "`%n` local part of the primary address (e.g. `%n@%d`)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v.find("%u") == std::string::npos && v.find("%n") == std::string::npos)
           return "the pattern must contain %u or %n so users get separate mailboxes";
         for (char ch : v) {
           if (static_cast<unsigned char>(ch) <= 0x20 || ch == '*' || ch == '"')
             return "expected a pattern without spaces, quotes or `*`";
         }
         c.imap_user = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.imap_user; }},
      {"imap_login",
       "how the server logs in to IMAP as a user: `master` (a Dovecot master user, "
       "`imap_master_user`); `user` (the password the user logs in with, kept for the session "
       "sealed under a secret only the browser's cookie holds)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v == "master")
           c.imap_login = ImapLogin::master;
         else if (v == "user")
           c.imap_login = ImapLogin::user;
         else
           return "expected master or user";
         return std::nullopt;
       },
       [](const Config& c) {
         return std::string(c.imap_login == ImapLogin::master ? "master" : "user");
       }},
      {"imap_master_user",
       "the Dovecot master user's name: the server logs in as `LOGIN*MASTER` "
       "(`auth_master_user_separator = *`)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         for (char ch : v) {
           if (static_cast<unsigned char>(ch) <= 0x20 || ch == '*' || ch == '"' || ch == '\\')
             return "expected a user name without spaces, quotes or `*`";
         }
         c.imap_master_user = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.imap_master_user; }},
      {"imap_master_password_file",
       "a file holding the master user's password on its first line, readable by webmailkey "
       "and not by every user (refused otherwise); the password is never in the config, a "
       "command line, the environment or a log",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (!v.empty() && v[0] != '/')
           return "expected an absolute path (or nothing)";
         c.imap_master_password_file = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.imap_master_password_file; }},
      {"imap_keep_seconds",
       "how long a FastCGI worker keeps its logged-in IMAP connection after a request, for the "
       "next request of the same user (checked with NOOP before use, at most one per worker); "
       "only with `imap_login = master`: with `user` every request logs in with the password "
       "its own mail cookie opens; 0: never keep",
       seconds_in(&Config::imap_keep_seconds, 0, 3600),
       [](const Config& c) { return seconds_text(c.imap_keep_seconds); }},
      {"sendmail",
       "the sendmail-compatible program outgoing mail goes to, run as `PROGRAM -i -f SENDER "
       "-- RECIPIENT...` (Postfix's `/usr/sbin/sendmail`); `config check` fails when it is "
       "missing or not executable",
       absolute_path(&Config::sendmail), [](const Config& c) { return c.sendmail; }},
      {"allow_insecure_http", "**tests only**: answer over plain HTTP",
       boolean(&Config::allow_insecure_http),
       [b](const Config& c) { return b(c.allow_insecure_http); }},
      {"session_idle_timeout", "seconds a login session lasts without a request",
       seconds_in(&Config::session_idle_timeout, 10, 86400 * 7),
       [](const Config& c) { return seconds_text(c.session_idle_timeout); }},
      {"session_absolute_timeout", "seconds a login session lasts at most",
       seconds_in(&Config::session_absolute_timeout, 10, 86400 * 30),
       [](const Config& c) { return seconds_text(c.session_absolute_timeout); }},
      {"grant_idle_timeout", "seconds a key stays unlocked without being used",
       seconds_in(&Config::grant_idle_timeout, 5, 86400),
       [](const Config& c) { return seconds_text(c.grant_idle_timeout); }},
      {"grant_absolute_timeout", "seconds a key stays unlocked at most",
       seconds_in(&Config::grant_absolute_timeout, 5, 86400 * 7),
       [](const Config& c) { return seconds_text(c.grant_absolute_timeout); }},
      {"kdf_memory_kib", "Argon2id memory (KiB) for key passphrases, paid once per unlock",
       uint_in(&Config::kdf_memory_kib, 8, 4 * 1024 * 1024),
       [](const Config& c) { return std::to_string(c.kdf_memory_kib); }},
      {"kdf_iterations", "Argon2id passes for key passphrases",
       uint_in(&Config::kdf_iterations, 1, 100),
       [](const Config& c) { return std::to_string(c.kdf_iterations); }},
      {"kdf_parallelism", "Argon2id lanes for key passphrases",
       uint_in(&Config::kdf_parallelism, 1, 16),
       [](const Config& c) { return std::to_string(c.kdf_parallelism); }},
      {"password_memory_kib", "Argon2id memory (KiB) for login passwords (OWASP's minimum)",
       uint_in(&Config::password_memory_kib, 8, 4 * 1024 * 1024),
       [](const Config& c) { return std::to_string(c.password_memory_kib); }},
      {"password_iterations", "Argon2id passes for login passwords",
       uint_in(&Config::password_iterations, 1, 100),
       [](const Config& c) { return std::to_string(c.password_iterations); }},
      {"password_min_length",
       "fewest characters a new login password may have (`user add`, `user passwd`)",
       uint_in(&Config::password_min_length, 1, 1024),
       [](const Config& c) { return std::to_string(c.password_min_length); }},
      {"key_passphrase_min_length",
       "fewest characters (at least 8) a new key passphrase may have (`key generate`, "
       "`key import`, `key passwd`, and the passphrase of `key export --secret`)",
       uint_in(&Config::key_passphrase_min_length, 8, 1024),
       [](const Config& c) { return std::to_string(c.key_passphrase_min_length); }},
      {"unlock_confirmation", "ask for the key passphrase twice on the unlock page",
       boolean(&Config::unlock_confirmation),
       [b](const Config& c) { return b(c.unlock_confirmation); }},
      {"max_failures",
       "online-guessing throttle: failures in a row per login and per key before a lock",
       uint_in(&Config::max_failures, 1, 1000),
       [](const Config& c) { return std::to_string(c.max_failures); }},
      {"max_failures_per_address",
       "wrong passwords in a row from one client address, over all logins, before that "
       "address is locked out",
       uint_in(&Config::max_failures_per_address, 1, 100000),
       [](const Config& c) { return std::to_string(c.max_failures_per_address); }},
      {"lockout", "seconds of the first lock (doubles per further failure, up to a day)",
       seconds_in(&Config::lockout, 1, 86400),
       [](const Config& c) { return seconds_text(c.lockout); }},
      {"trusted_proxies",
       "reverse proxies (addresses, space-separated) whose `X-Forwarded-For` names the "
       "client, e.g. `127.0.0.1 ::1` when a proxy runs in front on the same host; empty: "
       "the connecting address is the client, and every client behind a proxy shares one "
       "address for the throttle (docs/security.md)",
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
       },
       [](const Config& c) { return join_words(c.trusted_proxies); }},
      {"attachment_max_bytes",
       "largest upload the compose page takes; the web server's request limit must be above it",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         auto n = parse_uint(v);
         if (!n || *n < 1024 || *n > (std::uint64_t{1} << 31)) {
           return "expected bytes from 1024 to 2147483648";
         }
         c.attachment_max_bytes = *n;
         return std::nullopt;
       },
       [](const Config& c) { return std::to_string(c.attachment_max_bytes); }},
      {"page_size", "messages per inbox page", uint_in(&Config::page_size, 5, 500),
       [](const Config& c) { return std::to_string(c.page_size); }},
      {"max_header_bytes",
       "the largest mail header `deliver` accepts, in bytes; larger mail is refused with exit "
       "65 so the MTA bounces it",
       uint_in(&Config::max_header_bytes, 1024, 1024 * 1024),
       [](const Config& c) { return std::to_string(c.max_header_bytes); }},
      {"worker_max_requests",
       "a FastCGI worker serves this many requests, then renews itself (a fresh process "
       "image, which reads this file again; SIGHUP does it at once)",
       uint_in(&Config::worker_max_requests, 1, 1000000),
       [](const Config& c) { return std::to_string(c.worker_max_requests); }},
      {"wkd_ca_file",
       "an extra PEM bundle of CAs that WKD lookups trust beside the system store (empty: none)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (!v.empty() && v[0] != '/')
           return "expected an absolute path (or nothing)";
         c.wkd_ca_file = v;
         return std::nullopt;
       },
       [](const Config& c) { return c.wkd_ca_file; }},
      {"wkd_resolve",
       "host names pinned for WKD lookups, `HOST:PORT:ADDRESS` entries as curl's `--resolve` "
       "(for tests and private networks)",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         // HOST:PORT:ADDRESS entries separated by spaces or commas.
         c.wkd_resolve.clear();
         std::string entry;
         for (std::size_t i = 0; i <= v.size(); ++i) {
           char ch = i < v.size() ? v[i] : ' ';
           if (ch != ' ' && ch != ',' && ch != '\t') {
             entry += ch;
             continue;
           }
           if (entry.empty())
             continue;
           auto first = entry.find(':');
           auto second = first == std::string::npos ? first : entry.find(':', first + 1);
           if (second == std::string::npos || first == 0 || second == first + 1 ||
               second + 1 == entry.size())
             return "expected HOST:PORT:ADDRESS entries, not " + entry;
           for (std::size_t k = first + 1; k < second; ++k) {
             if (entry[k] < '0' || entry[k] > '9')
               return "the port of " + entry + " is not a number";
           }
           c.wkd_resolve.push_back(entry);
           entry.clear();
         }
         return std::nullopt;
       },
       [](const Config& c) {
         std::string out;
         for (const auto& r : c.wkd_resolve)
           out += (out.empty() ? "" : " ") + r;
         return out;
       }},
      {"autocrypt",
       "outgoing mail carries the sender's Autocrypt header (Autocrypt Level 1: the address "
       "and the sender's OpenPGP public key, when they have one); incoming Autocrypt headers "
       "are read at delivery either way",
       boolean(&Config::autocrypt), [b](const Config& c) { return b(c.autocrypt); }},
      {"smime_unprotected",
       "S/MIME mail encrypted without integrity protection (EnvelopedData, AES-CBC, what "
       "most mail programs send): `text` shows it as plain text only (never HTML, no links, "
       "attachments listed but not offered), marked as possibly altered; `refuse` does not "
       "show it. OpenPGP without integrity protection is always refused",
       [](Config& c, const std::string& v) -> std::optional<std::string> {
         if (v == "text")
           c.smime_unprotected = SmimeUnprotected::text;
         else if (v == "refuse")
           c.smime_unprotected = SmimeUnprotected::refuse;
         else
           return "expected text or refuse";
         return std::nullopt;
       },
       [](const Config& c) { return std::string(smime_unprotected_name(c.smime_unprotected)); }},
  };
  return kKeys;
}

const KeySpec* find_key(const std::string& name) {
  for (const KeySpec& k : key_specs()) {
    if (name == k.name)
      return &k;
  }
  return nullptr;
}

}  // namespace

namespace {

// text for an error message: printable ASCII and valid UTF-8 as they are, anything
// else (control characters, invalid bytes) as \xNN; at most 200 bytes of it.
std::string shown(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size() && out.size() < 200) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    auto [cp, len] = util::next_code_point(text, i);
    if (c >= 0x80 && len > 1 && cp != 0xFFFD && cp >= 0xA0) {
      out.append(text.substr(i, len));
      i += len;
      continue;
    }
    static const char* hex = "0123456789abcdef";
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
    ++i;
  }
  if (i < text.size())
    out += "...";
  return out;
}

}  // namespace

const char* smime_unprotected_name(SmimeUnprotected v) {
  return v == SmimeUnprotected::refuse ? "refuse" : "text";
}

const char* store_engine_name(StoreEngine v) {
  return v == StoreEngine::postgresql ? "postgresql" : "sqlite";
}

namespace {
// The [begin, end) of each password value in a libpq key=value connection string.
std::vector<std::pair<std::size_t, std::size_t>> password_values(const std::string& s) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0)
      ++i;
    std::size_t key_begin = i;
    while (i < s.size() && s[i] != '=' && std::isspace(static_cast<unsigned char>(s[i])) == 0)
      ++i;
    std::string key = s.substr(key_begin, i - key_begin);
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0)
      ++i;
    if (i >= s.size() || s[i] != '=')
      break;
    ++i;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0)
      ++i;
    std::size_t value_begin = i;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      while (i < s.size() && s[i] != '\'') {
        if (s[i] == '\\')
          ++i;
        ++i;
      }
      if (i < s.size())
        ++i;
    } else {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) == 0) {
        if (s[i] == '\\')
          ++i;
        ++i;
      }
    }
    if (key == "password")
      out.emplace_back(value_begin, std::min(i, s.size()));
  }
  return out;
}
}  // namespace

bool conninfo_has_password(const std::string& conninfo) {
  // A URI (postgresql://user:secret@host/db) may carry one too.
  if (conninfo.rfind("postgres", 0) == 0 && conninfo.find("://") != std::string::npos)
    return conninfo.find('@') != std::string::npos ||
           conninfo.find("password") != std::string::npos;
  return !password_values(conninfo).empty();
}

std::string mask_conninfo_password(const std::string& conninfo) {
  if (conninfo.rfind("postgres", 0) == 0 && conninfo.find("://") != std::string::npos)
    return conninfo_has_password(conninfo) ? "***** (a URI with a password)" : conninfo;
  std::string out = conninfo;
  auto spans = password_values(conninfo);
  for (auto it = spans.rbegin(); it != spans.rend(); ++it)
    out.replace(it->first, it->second - it->first, "*****");
  return out;
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
    const KeySpec* spec = find_key(key);
    if (spec == nullptr) {
      problems.push_back({lineno, "unknown key `" + key + "`"});
      continue;
    }
    if (auto prev = seen.find(key); prev != seen.end()) {
      problems.push_back(
          {lineno, "`" + key + "` is already set on line " + std::to_string(prev->second)});
      continue;
    }
    seen[key] = lineno;
    if (auto why = spec->set(c, value))
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
  if (c.mailbox == MailboxBackend::imap) {
    int at = seen.count("mailbox") ? seen["mailbox"] : 0;
    if (c.imap_host.empty())
      problems.push_back({at, "mailbox = imap needs imap_host"});
    if (c.imap_login == ImapLogin::master) {
      if (c.imap_master_user.empty())
        problems.push_back({at, "mailbox = imap with imap_login = master needs imap_master_user"});
      if (c.imap_master_password_file.empty())
        problems.push_back(
            {at, "mailbox = imap with imap_login = master needs imap_master_password_file"});
    }
  }
  if (!problems.empty()) {
    // A garbage file must not put control characters or invalid UTF-8 on the admin's
    // terminal, nor thousands of lines: the first kMaxProblems, each shown safely.
    constexpr std::size_t kMaxProblems = 20;
    std::string msg;
    for (std::size_t i = 0; i < problems.size() && i < kMaxProblems; ++i) {
      if (!msg.empty())
        msg += "\n";
      msg += shown(source_name) + ":" + std::to_string(problems[i].line) + ": " +
             shown(problems[i].message);
    }
    if (problems.size() > kMaxProblems)
      msg += "\n" + shown(source_name) + ": and " + std::to_string(problems.size() - kMaxProblems) +
             " more problems";
    return make_error(Errc::config, msg);
  }
  return c;
}

Result<Config> load(const std::string& path) {
  auto text = util::read_file(path);
  if (!text) {
    return make_error(text.code(), "cannot read the configuration: " + text.error().message);
  }
  auto c = parse(*text, path);
  if (c && conninfo_has_password(c->store_postgresql)) {
    // The same rule as for every secret: not for every local user to read.
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
      return make_error(Errc::config, path +
                                          ": store_postgresql holds a password but the file is "
                                          "readable by every user (chmod o-rwx " +
                                          path + ", or use a passfile or peer authentication)");
    }
  }
  return c;
}

std::string resolve_path(const std::optional<std::string>& explicit_path) {
  if (explicit_path && !explicit_path->empty())
    return *explicit_path;
  if (const char* env = std::getenv(kConfigEnv); env != nullptr && *env != '\0')
    return env;
  return kDefaultConfigPath;
}

std::vector<KeyInfo> describe(const Config& c) {
  std::vector<KeyInfo> out;
  for (const KeySpec& k : key_specs())
    out.push_back({k.name, k.get(c), k.help});
  return out;
}

std::string render(const Config& c) {
  std::ostringstream o;
  o << "# webmailkey configuration: every key at its value, with what it means.\n"
    << "# The reference is docs/admin-guide.md, section \"Configuration reference\".\n";
  for (const KeyInfo& k : describe(c)) {
    // The help text is Markdown in the guide; here it is a plain comment.
    std::string help;
    for (char ch : k.help) {
      if (ch != '`' && ch != '*')
        help += ch;
    }
    o << "\n# " << help << "\n" << k.name << " = " << k.value << "\n";
  }
  return o.str();
}

std::string reference_markdown() {
  const Config defaults;
  std::ostringstream o;
  o << "| key | default | meaning |\n|---|---|---|\n";
  for (const KeyInfo& k : describe(defaults))
    o << "| `" << k.name << "` | `" << k.value << "` | " << k.help << " |\n";
  return o.str();
}

std::vector<std::string> check_environment(const Config& c) {
  std::vector<std::string> problems;
  struct stat st {};
  if (::stat(c.sendmail.c_str(), &st) != 0) {
    problems.push_back("sendmail: " + c.sendmail + " does not exist (" + std::strerror(errno) +
                       "); install an MTA (e.g. Postfix) or point `sendmail` at its "
                       "sendmail program");
  } else if (!S_ISREG(st.st_mode) || ::access(c.sendmail.c_str(), X_OK) != 0) {
    problems.push_back("sendmail: " + c.sendmail + " is not an executable file");
  }
  if (c.mailbox == MailboxBackend::imap) {
    if (!c.imap_ca_file.empty() && ::access(c.imap_ca_file.c_str(), R_OK) != 0)
      problems.push_back("imap_ca_file: " + c.imap_ca_file + " cannot be read (" +
                         std::strerror(errno) + ")");
    if (c.imap_login == ImapLogin::master && !c.imap_master_password_file.empty()) {
      if (auto pw = imap_master_password(c); !pw)
        problems.push_back(pw.error().message);
    }
  }
  if (::stat(c.data_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    problems.push_back("data_dir: " + c.data_dir +
                       " is not a directory (run `webmailkey init --data-dir " + c.data_dir + "`)");
  }
  return problems;
}

const char* mailbox_backend_name(MailboxBackend v) {
  return v == MailboxBackend::imap ? "imap" : "maildir";
}

Result<util::SecretBuffer> imap_master_password(const Config& c) {
  const std::string& path = c.imap_master_password_file;
  if (path.empty())
    return make_error(Errc::config, "imap_master_password_file is not set");
  util::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid())
    return make_error(Errc::config, "imap_master_password_file: " + path + " cannot be read (" +
                                        std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return make_error(Errc::config, "imap_master_password_file: " + path + " is not a file");
  if ((st.st_mode & S_IROTH) != 0)
    return make_error(Errc::config, "imap_master_password_file: " + path +
                                        " is readable by every user (chmod o-rwx " + path + ")");
  util::SecretBuffer pw;
  try {
    pw = util::read_secret_line(fd.get());
  } catch (const std::runtime_error& e) {
    return make_error(Errc::config, "imap_master_password_file: " + path + ": " + e.what());
  }
  if (pw.empty())
    return make_error(Errc::config, "imap_master_password_file: " + path + " is empty");
  return pw;
}

namespace {

std::string expand_user_pattern(const Config& c, const std::string& pattern,
                                const std::string& login, const std::string& email) {
  auto at = email.find('@');
  std::string local = at == std::string::npos ? email : email.substr(0, at);
  std::string domain = at == std::string::npos ? "" : email.substr(at + 1);
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size()) {
      char k = pattern[++i];
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
      out += pattern[i];
    }
  }
  return out;
}

}  // namespace

std::string maildir_for(const Config& c, const std::string& login, const std::string& email) {
  return expand_user_pattern(c, c.maildir, login, email);
}

std::string imap_user_for(const Config& c, const std::string& login, const std::string& email) {
  return expand_user_pattern(c, c.imap_user, login, email);
}

}  // namespace wmk::config

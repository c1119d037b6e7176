#pragma once
// The configuration file: flat `key = value` lines, `#` or `;` comments.
// Unknown keys and bad values are refused with the line number and the reason.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::config {

inline constexpr const char* kDefaultConfigPath = "/etc/webmailkey/webmailkey.conf";
inline constexpr const char* kConfigEnv = "WEBMAILKEY_CONFIG";

// How S/MIME EnvelopedData (AES-CBC, no integrity protection) is read: decrypted and
// shown as plain text only, marked as possibly altered; or refused as a whole.
enum class SmimeUnprotected { text, refuse };

// "text" or "refuse".
const char* smime_unprotected_name(SmimeUnprotected v);

// Where the state (users, sessions, grants, keys, audit, index) lives.
enum class StoreEngine { sqlite, postgresql };

// "sqlite" or "postgresql".
const char* store_engine_name(StoreEngine v);

// The connection string with any password=... value replaced by "*****".
std::string mask_conninfo_password(const std::string& conninfo);
// Whether the connection string sets a password.
bool conninfo_has_password(const std::string& conninfo);

// Where users' mail is read: a Maildir on this machine, or an IMAP server.
enum class MailboxBackend { maildir, imap };
// "maildir" or "imap".
const char* mailbox_backend_name(MailboxBackend v);

// How the IMAP connection is secured: IMAPS (TLS from the first byte) or STARTTLS.
enum class ImapTlsMode { imaps, starttls };
// How the server logs in to IMAP as a user: as a Dovecot master user, or with the
// password the user logs in with (kept for the session like a grant).
enum class ImapLogin { master, user };

struct Config {
  std::string data_dir = "/var/lib/webmailkey";
  // The store engine; for PostgreSQL, the libpq connection string (may hold a
  // password: never logged or shown, and the config file must then not be readable by
  // every user).
  StoreEngine store = StoreEngine::sqlite;
  std::string store_postgresql;
  // %u login, %d domain of the primary address, %n local part, %h data_dir.
  std::string maildir = "%h/mail/%u/Maildir";
  // The mailbox backend; for IMAP the server, its TLS, an extra CA file and the login.
  MailboxBackend mailbox = MailboxBackend::maildir;
  std::string imap_host;
  std::uint16_t imap_port = 0;  // 0: 993 for imaps, 143 for starttls
  ImapTlsMode imap_tls = ImapTlsMode::imaps;
  std::string imap_ca_file;
  // %u login, %d domain of the primary address, %n local part.
  std::string imap_user = "%u";
  ImapLogin imap_login = ImapLogin::master;
  std::string imap_master_user;
  // A file holding the master user's password (one line); never readable by every user.
  std::string imap_master_password_file;
  // How long a FastCGI worker keeps its logged-in IMAP connection between requests, for
  // the next request of the same user (imap_login = master only); 0: never.
  std::chrono::seconds imap_keep_seconds{60};
  std::string sendmail = "/usr/sbin/sendmail";
  bool allow_insecure_http = false;

  std::chrono::seconds session_idle_timeout{1800};
  std::chrono::seconds session_absolute_timeout{43200};
  std::chrono::seconds grant_idle_timeout{600};
  std::chrono::seconds grant_absolute_timeout{7200};

  // Argon2id cost for key passphrases (~250 ms on a 2-core machine at the defaults).
  std::uint32_t kdf_memory_kib = 131072;
  std::uint32_t kdf_iterations = 2;
  std::uint32_t kdf_parallelism = 1;
  // Argon2id cost for login passwords: OWASP's minimum (19 MiB, t=2), chosen from
  // measurement (docs/security.md "Login passwords").
  std::uint32_t password_memory_kib = 19456;
  std::uint32_t password_iterations = 2;

  // Fewest characters of a new login password.
  std::uint32_t password_min_length = 10;
  // Fewest characters of a new key passphrase (generate, import, passwd, export). Not
  // below 8: the config can raise the floor the key store always had, not lower it.
  std::uint32_t key_passphrase_min_length = 8;

  bool unlock_confirmation = true;
  SmimeUnprotected smime_unprotected = SmimeUnprotected::text;
  // Online guessing: after this many failures in a row, a lockout that doubles each time.
  std::uint32_t max_failures = 5;
  // The same for all logins from one client address (password spraying).
  std::uint32_t max_failures_per_address = 20;
  std::chrono::seconds lockout{60};
  // Proxies whose X-Forwarded-For is believed (exact addresses). Empty: the
  // connection's own address is the client's.
  std::vector<std::string> trusted_proxies;
  std::uint64_t attachment_max_bytes = 10 * 1024 * 1024;
  // The largest header block `deliver` accepts (bytes); larger mail is refused with
  // EX_DATAERR so the MTA bounces it.
  std::uint32_t max_header_bytes = 256 * 1024;
  std::uint32_t page_size = 50;
  // A FastCGI worker exits after this many requests and the web server starts a new
  // one (which reads the config afresh).
  std::uint32_t worker_max_requests = 500;

  // WKD lookups: an extra PEM CA bundle trusted beside the system store, and
  // HOST:PORT:ADDRESS entries that pin a host name to an address (curl --resolve);
  // both for tests and private deployments.
  std::string wkd_ca_file;
  std::vector<std::string> wkd_resolve;
  // Outgoing mail carries the sender's Autocrypt header (their OpenPGP public key).
  bool autocrypt = true;

  // Where the file came from ("" for built-in defaults).
  std::string source;

  std::string database_path() const { return data_dir + "/webmailkey.db"; }
  std::uint16_t imap_port_or_default() const {
    return imap_port != 0 ? imap_port : (imap_tls == ImapTlsMode::imaps ? 993 : 143);
  }
  std::string gnupg_home() const { return data_dir + "/gnupg"; }
};

struct Problem {
  int line;  // 0 when not tied to a line
  std::string message;
};

// Parses text. On bad input returns Errc::config whose message lists every problem
// as "FILE:LINE: reason", one per line.
Result<Config> parse(const std::string& text, const std::string& source_name);

// Reads and parses the file. Errc::not_found if missing.
Result<Config> load(const std::string& path);

// The path to use: explicit if given, else $WEBMAILKEY_CONFIG, else the default path.
std::string resolve_path(const std::optional<std::string>& explicit_path);

// One key of the config file: its name, its value in some Config, what it means.
struct KeyInfo {
  std::string name;
  std::string value;
  std::string help;  // Markdown
};

// Every key, in file order, at its value in c.
std::vector<KeyInfo> describe(const Config& c);

// A complete config file with every key at its value in c, commented.
std::string render(const Config& c);

// The Markdown table of every key, its default and meaning: the config reference of
// docs/admin-guide.md (scripts/gen-docs writes it there; a unit test fails when stale).
std::string reference_markdown();

// What the file cannot show: problems of the machine around a parsed config (the
// sendmail program missing or not executable, data_dir missing). Empty when fine.
std::vector<std::string> check_environment(const Config& c);

// The IMAP master user's password from imap_master_password_file (its first line).
// Errc::config if the file is missing, empty, or readable by every user.
Result<util::SecretBuffer> imap_master_password(const Config& c);

// Expands the maildir pattern for one user.
std::string maildir_for(const Config& c, const std::string& login, const std::string& email);

// Expands the imap_user pattern for one user: their IMAP user name.
std::string imap_user_for(const Config& c, const std::string& login, const std::string& email);

}  // namespace wmk::config

#include "core/session/session.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "core/audit/audit.h"
#include "core/crypto/aead.h"
#include "core/util/encoding.h"
#include "core/util/secret_cookie.h"

namespace wmk::session {

namespace {

constexpr std::size_t kTokenBytes = 32;
constexpr std::size_t kTokenChars = 43;  // base64url of 32 bytes, unpadded
constexpr std::size_t kShortIdBytes = 4;
constexpr int kShortIdAttempts = 8;
constexpr std::size_t kMaxAddr = 64;
constexpr std::size_t kMaxAgent = 256;
constexpr std::size_t kMaxNotice = 1000;

// base64url of bytes into locked memory: the token never passes through a std::string.
util::SecretBuffer base64url_secret(const util::SecretBuffer& bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const std::size_t n = bytes.size();
  util::SecretBuffer out((n * 4 + 2) / 3);
  const std::uint8_t* in = bytes.data();
  std::size_t o = 0;
  for (std::size_t i = 0; i < n; i += 3) {
    std::uint32_t v = static_cast<std::uint32_t>(in[i]) << 16;
    if (i + 1 < n)
      v |= static_cast<std::uint32_t>(in[i + 1]) << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    out.data()[o++] = static_cast<std::uint8_t>(kAlphabet[(v >> 18) & 63]);
    out.data()[o++] = static_cast<std::uint8_t>(kAlphabet[(v >> 12) & 63]);
    if (i + 1 < n)
      out.data()[o++] = static_cast<std::uint8_t>(kAlphabet[(v >> 6) & 63]);
    if (i + 2 < n)
      out.data()[o++] = static_cast<std::uint8_t>(kAlphabet[v & 63]);
    v = 0;
  }
  return out;
}

bool looks_like_token(std::string_view t) {
  return t.size() == kTokenChars && std::all_of(t.begin(), t.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
         });
}

std::string clean(std::string_view s, std::size_t max) {
  std::string out(s.substr(0, max));
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f)
      c = '?';
  }
  return out;
}

constexpr std::string_view kSelect =
    "SELECT s.id, s.short_id, s.user_id, u.login, s.csrf_token, s.created, s.last_seen, "
    "s.client_addr, s.user_agent, u.disabled FROM sessions s JOIN users u ON u.id = s.user_id ";

Session read_session(const store::Statement& st) {
  Session s;
  s.id = st.column_text(0);
  s.short_id = st.column_text(1);
  s.user_id = st.column_int(2);
  s.login = st.column_text(3);
  s.csrf_token = st.column_text(4);
  s.created = st.column_int(5);
  s.last_seen = st.column_int(6);
  s.client_addr = st.column_text(7);
  s.user_agent = st.column_text(8);
  return s;
}

}  // namespace

SessionStore::SessionStore(store::Db& db, const util::Clock& clock, const config::Config& cfg)
    : db_(db),
      clock_(clock),
      idle_timeout_(cfg.session_idle_timeout.count()),
      absolute_timeout_(cfg.session_absolute_timeout.count()) {}

std::int64_t SessionStore::expiry_of(const Session& s) const {
  return std::min(s.last_seen + idle_timeout_, s.created + absolute_timeout_);
}

bool SessionStore::is_expired(const Session& s, std::int64_t now) const {
  return now > s.last_seen + idle_timeout_ || now > s.created + absolute_timeout_;
}

Result<NewSession> SessionStore::create(std::int64_t user_id, std::string_view client_addr,
                                        std::string_view user_agent) {
  auto raw = util::SecretBuffer::random(kTokenBytes);
  NewSession ns{Session{}, base64url_secret(raw)};
  Session& s = ns.session;
  s.id = util::sha256_hex(ns.token.view());
  s.user_id = user_id;
  s.csrf_token = util::random_token(32);
  s.created = s.last_seen = clock_.now();
  s.client_addr = clean(client_addr, kMaxAddr);
  s.user_agent = clean(user_agent, kMaxAgent);
  s.expires = expiry_of(s);

  store::Transaction tx(db_);
  auto user = db_.prepare("SELECT login FROM users WHERE id = ?");
  user.bind(1, user_id);
  if (!user.step())
    return make_error(Errc::not_found, "no user with id " + std::to_string(user_id));
  s.login = user.column_text(0);
  for (int attempt = 0;; ++attempt) {
    s.short_id = util::hex_encode(util::random_bytes(kShortIdBytes));
    auto ins = db_.prepare(
        "INSERT INTO sessions (id, short_id, user_id, csrf_token, created, last_seen, "
        "client_addr, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    ins.bind_all(s.id, s.short_id, s.user_id, s.csrf_token, s.created, s.last_seen, s.client_addr,
                 s.user_agent);
    auto r = ins.try_step();
    if (r.ok())
      break;
    // Only a short-id collision can land here (the id is a hash of 256 random bits).
    if (r.code() != Errc::already_exists || attempt + 1 >= kShortIdAttempts)
      return r.error();
  }
  tx.commit();
  return ns;
}

void SessionStore::remove_audited(const Session& s, const char* event, const char* outcome,
                                  const std::string& detail) {
  auto del = db_.prepare("DELETE FROM sessions WHERE id = ?");
  del.bind(1, s.id);
  del.run();
  audit::AuditLog(db_, clock_)
      .record(audit::AuditEvent{s.login, event, outcome, "", s.short_id, s.client_addr, detail});
}

Result<Session> SessionStore::resume(std::string_view token) {
  const auto unknown = make_error(Errc::not_found, "no such session (logged out or expired)");
  if (!looks_like_token(token))
    return unknown;
  const std::string id = util::sha256_hex(token);
  store::Transaction tx(db_);
  auto st = db_.prepare(std::string(kSelect) + "WHERE s.id = ?");
  st.bind(1, id);
  if (!st.step())
    return unknown;
  Session s = read_session(st);
  const bool disabled = st.column_int(9) != 0;
  const std::int64_t now = clock_.now();
  if (is_expired(s, now)) {
    const bool idle = now > s.last_seen + idle_timeout_;
    remove_audited(s, audit::event::kSessionExpire, audit::outcome::kExpired,
                   idle ? "idle limit" : "absolute limit");
    tx.commit();
    return make_error(Errc::expired, idle ? "the session expired after inactivity"
                                          : "the session reached its time limit");
  }
  if (disabled) {
    remove_audited(s, audit::event::kSessionExpire, audit::outcome::kDisabled,
                   "the account is disabled");
    tx.commit();
    return make_error(Errc::disabled, "the account is disabled");
  }
  auto up = db_.prepare("UPDATE sessions SET last_seen = ? WHERE id = ?");
  up.bind_all(now, s.id);
  up.run();
  tx.commit();
  s.last_seen = now;
  s.expires = expiry_of(s);
  return s;
}

Status SessionStore::end(const std::string& session_id) {
  store::Transaction tx(db_);
  auto st = db_.prepare(std::string(kSelect) + "WHERE s.id = ?");
  st.bind(1, session_id);
  if (!st.step())
    return make_error(Errc::not_found, "no such session (logged out or expired)");
  remove_audited(read_session(st), audit::event::kLogout, audit::outcome::kOk, "");
  tx.commit();
  return {};
}

Result<int> SessionStore::kill(const std::string& short_id) {
  auto st = db_.prepare("DELETE FROM sessions WHERE short_id = ?");
  st.bind(1, short_id);
  WMK_TRY(st.try_step());
  if (db_.changes() == 0)
    return make_error(Errc::not_found, "no session with id '" + short_id + "'");
  return 1;
}

Result<int> SessionStore::kill_for_login(const std::string& login) {
  store::Transaction tx(db_);
  auto user = db_.prepare("SELECT id FROM users WHERE login = ?");
  user.bind(1, login);
  if (!user.step())
    return make_error(Errc::not_found, "no user with login '" + login + "'");
  auto st = db_.prepare("DELETE FROM sessions WHERE user_id = ?");
  st.bind(1, user.column_int(0));
  st.run();
  const int n = db_.changes();
  tx.commit();
  return n;
}

std::vector<Session> SessionStore::list() {
  std::vector<Session> out;
  auto st = db_.prepare(std::string(kSelect) + "ORDER BY s.created DESC, s.short_id");
  while (st.step()) {
    out.push_back(read_session(st));
    out.back().expires = expiry_of(out.back());
  }
  return out;
}

int SessionStore::purge(store::PurgeMode mode) {
  store::Transaction tx(db_);
  const std::int64_t now = clock_.now();
  auto st = db_.prepare(std::string(kSelect) + "WHERE ? > s.last_seen + ? OR ? > s.created + ?");
  st.bind_all(now, idle_timeout_, now, absolute_timeout_);
  std::vector<Session> expired;
  while (st.step())
    expired.push_back(read_session(st));
  if (mode == store::PurgeMode::remove) {
    for (const auto& s : expired) {
      remove_audited(
          s, audit::event::kSessionExpire, audit::outcome::kExpired,
          now > s.last_seen + idle_timeout_ ? "idle limit (purge)" : "absolute limit (purge)");
    }
    tx.commit();
  }
  return static_cast<int>(expired.size());
}

Result<NewSession> SessionStore::rotate(const Session& s, const Rebind& rebind) {
  auto raw = util::SecretBuffer::random(kTokenBytes);
  NewSession ns{s, base64url_secret(raw)};
  ns.session.id = util::sha256_hex(ns.token.view());
  ns.session.expires = expiry_of(ns.session);

  store::Transaction tx(db_);
  // The grants still name the old id until rebind has moved them: check the foreign
  // keys at commit, not at each statement.
  db_.defer_foreign_keys();
  auto up = db_.prepare("UPDATE sessions SET id = ? WHERE id = ?");
  up.bind_all(ns.session.id, s.id);
  WMK_TRY(up.try_step());
  if (db_.changes() == 0)
    return make_error(Errc::not_found, "no such session (logged out or expired)");
  if (rebind)
    WMK_TRY(rebind(s.id, ns.session.id));
  audit::AuditLog(db_, clock_)
      .record({s.login, "session.rotate", audit::outcome::kOk, "", s.short_id, s.client_addr,
               "new session token"});
  tx.commit();
  return ns;
}

Status SessionStore::set_notice(const std::string& session_id, std::string_view text) {
  auto st = db_.prepare("UPDATE sessions SET notice = ? WHERE id = ?");
  st.bind_all(clean(text, kMaxNotice), session_id);
  WMK_TRY(st.try_step());
  if (db_.changes() == 0)
    return make_error(Errc::not_found, "no such session (logged out or expired)");
  return {};
}

void SessionStore::append_notice(store::Db& db, const std::string& session_id,
                                 std::string_view text) {
  // The line is cleaned and cut like a whole notice (set_notice).
  db.prepare(R"sql(
UPDATE sessions
   SET notice = CASE WHEN coalesce(length(notice), 0) BETWEEN 1 AND 800
                     THEN notice || '
' || ?1 ELSE ?1 END
 WHERE id = ?2)sql")
      .bind_all(clean(text, kMaxNotice), session_id)
      .run();
}

std::optional<std::string> SessionStore::take_notice(const std::string& session_id) {
  store::Transaction tx(db_);
  auto st = db_.prepare("SELECT notice FROM sessions WHERE id = ?");
  st.bind(1, session_id);
  if (!st.step())
    return std::nullopt;
  auto notice = st.column_optional_text(0);
  if (!notice)
    return std::nullopt;
  auto clear = db_.prepare("UPDATE sessions SET notice = NULL WHERE id = ?");
  clear.bind(1, session_id);
  clear.run();
  tx.commit();
  return notice;
}

namespace {

// Binds a sealed mail password to its session: the short id outlives rotate().
std::string mail_password_ad(const Session& s) {
  return "webmailkey mail password\n" + s.short_id;
}

}  // namespace

Result<util::SecretBuffer> SessionStore::keep_mail_password(const Session& s,
                                                            const util::SecretBuffer& password) {
  if (password.empty())
    return make_error(Errc::invalid_argument, "no mail password to keep");
  auto secret = util::SecretBuffer::random(kMailSecretSize);
  auto sealed = crypto::seal(secret, password.bytes(), mail_password_ad(s));
  auto st = db_.prepare("UPDATE sessions SET mail_password = ? WHERE id = ?");
  st.bind_all(sealed, s.id);
  WMK_TRY(st.try_step());
  if (db_.changes() == 0)
    return make_error(Errc::not_found, "no such session (logged out or expired)");
  return secret;
}

Result<util::SecretBuffer> SessionStore::mail_password(const Session& s,
                                                       const util::SecretBuffer& secret) {
  auto st = db_.prepare("SELECT mail_password FROM sessions WHERE id = ?");
  st.bind(1, s.id);
  if (!st.step())
    return make_error(Errc::not_found, "no such session (logged out or expired)");
  if (st.column_is_null(0))
    return make_error(Errc::not_found, "this session keeps no mail password: log in again");
  auto sealed = st.column_blob(0);
  st.reset();
  auto password = crypto::open(secret, sealed, mail_password_ad(s));
  if (!password)
    return make_error(Errc::bad_credentials,
                      "the mail password cookie does not open this session's mail password: "
                      "log in again");
  return password;
}

void SessionStore::open_mail_password(Session& s, std::string_view cookie_value) {
  s.mail_password.reset();
  auto secret = util::decode_secret_cookie(cookie_value, kMailSecretSize, "mail password");
  if (!secret)
    return;
  auto password = mail_password(s, *secret);
  if (password)
    s.mail_password = std::make_shared<const util::SecretBuffer>(std::move(password).value());
}

bool SessionStore::csrf_matches(const Session& s, std::string_view token) {
  if (s.csrf_token.empty() || token.size() != s.csrf_token.size())
    return false;
  return CRYPTO_memcmp(s.csrf_token.data(), token.data(), token.size()) == 0;
}

}  // namespace wmk::session

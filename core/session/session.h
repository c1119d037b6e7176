#pragma once
// Login sessions. The browser holds a random 256-bit token (cookie); the database
// keeps only its SHA-256 (the session id), so a copy of the database cannot be
// turned into a live session. Admins see and kill sessions by a short random id.
// Every resume checks the idle and absolute limits and the account's state; an
// expired session is deleted on the spot, and its grants with it (ON DELETE CASCADE).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.h"
#include "core/store/db.h"
#include "core/store/purge.h"
#include "core/util/clock.h"
#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::session {

// The cookie that carries the secret opening a session's kept mail password.
inline constexpr const char* kMailCookieName = "__Host-wmk-mail";
inline constexpr std::size_t kMailSecretSize = 32;

struct Session {
  std::string id;        // lowercase hex SHA-256 of the token
  std::string short_id;  // 8 hex characters, what admins see
  std::int64_t user_id = 0;
  std::string login;
  std::string csrf_token;  // the form token for this session's POSTs
  std::int64_t created = 0;
  std::int64_t last_seen = 0;
  std::int64_t expires = 0;  // when it ends if unused: min(idle, absolute limit)
  std::string client_addr;
  std::string user_agent;
  // The user's own mail-server password (imap_login = user), opened for this request
  // from the browser's mail cookie by open_mail_password(); null when there is none.
  std::shared_ptr<const util::SecretBuffer> mail_password;
};

struct NewSession {
  Session session;
  util::SecretBuffer token;  // base64url of 32 random bytes: the cookie value; a credential
};

class SessionStore {
 public:
  SessionStore(store::Db& db, const util::Clock& clock, const config::Config& cfg);

  // Starts a session for user_id. Errc::not_found if there is no such user.
  Result<NewSession> create(std::int64_t user_id, std::string_view client_addr,
                            std::string_view user_agent);

  // The session the token opens, with last_seen moved to now. Errc::not_found for an
  // unknown or malformed token; Errc::expired (the session is deleted and audited)
  // past the idle or absolute limit; Errc::disabled (likewise deleted) when the
  // account is switched off.
  Result<Session> resume(std::string_view token);

  // Logs the session out: deletes it and its grants, audited as a logout.
  // Errc::not_found if it is already gone.
  Status end(const std::string& session_id);

  // Deletes the session an admin names by short id; returns 1. Errc::not_found.
  Result<int> kill(const std::string& short_id);
  // Deletes every session of login; returns how many. Errc::not_found if no such user.
  Result<int> kill_for_login(const std::string& login);

  // Every session (live or past its limits but not yet purged), newest first.
  std::vector<Session> list();
  // Sessions past their limits: counts them and, unless mode is dry_run, deletes them
  // (with their grants), auditing each. Live sessions are never touched.
  int purge(store::PurgeMode mode);

  // Gives the session a new token, and so a new id, keeping everything else (short id,
  // CSRF token, times, notice): done when the session gains a privilege (a key
  // unlocked), so that a token that may have leaked before, or was planted, stops
  // working. rebind(old_id, new_id) moves what refers to the old id (grants) inside
  // the same transaction; foreign keys are checked at its end. Audited as
  // session.rotate. Returns the session with its new id and the new token (the
  // cookie value). Errc::not_found if the session is gone; an error of rebind undoes
  // everything and is returned.
  using Rebind = std::function<Status(const std::string& old_id, const std::string& new_id)>;
  Result<NewSession> rotate(const Session& s, const Rebind& rebind);

  // Leaves a message for the session's next request (replacing any earlier one).
  // Errc::not_found if the session is gone.
  Status set_notice(const std::string& session_id, std::string_view text);
  // Adds a line to the session's pending message: what another module (grant, when it
  // stops this session's unlock) has to tell the session's next request. Runs in the
  // caller's transaction, if any; only db is used, so a caller without the session
  // limits at hand can call it. A pending message grown past 800 bytes is replaced.
  // A session that is gone is no error (there is no one left to tell).
  static void append_notice(store::Db& db, const std::string& session_id, std::string_view text);
  // The pending message, cleared as it is read; nullopt if there is none.
  std::optional<std::string> take_notice(const std::string& session_id);

  // The user's own mail-server password (config `imap_login = user`), kept for the
  // session like a grant: sealed (AES-256-GCM, bound to the session) under a fresh
  // random secret that is returned for the browser's cookie kMailCookieName and never
  // stored. The row holds only the sealed blob, gone with the session. Errc::not_found
  // if the session is gone.
  Result<util::SecretBuffer> keep_mail_password(const Session& s,
                                                const util::SecretBuffer& password);
  // The kept mail password, opened with the cookie's secret. Errc::not_found if the
  // session keeps none or is gone; Errc::bad_credentials if the secret does not open it.
  Result<util::SecretBuffer> mail_password(const Session& s, const util::SecretBuffer& secret);
  // Opens the kept mail password with the cookie's value (cookie_value: the browser's
  // kMailCookieName cookie) into s.mail_password for this request. A missing, forged
  // or stale cookie leaves it null: the mailbox then asks the user to log in again.
  void open_mail_password(Session& s, std::string_view cookie_value);

  // True if token equals the session's CSRF token; constant-time.
  static bool csrf_matches(const Session& s, std::string_view token);

 private:
  bool is_expired(const Session& s, std::int64_t now) const;
  std::int64_t expiry_of(const Session& s) const;
  void remove_audited(const Session& s, const char* event, const char* outcome,
                      const std::string& detail);

  store::Db& db_;
  const util::Clock& clock_;
  std::int64_t idle_timeout_;
  std::int64_t absolute_timeout_;
};

}  // namespace wmk::session

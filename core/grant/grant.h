#pragma once
// Grants: permission for one login session to use one key, made when the user gives
// the right key passphrase (docs/security.md, "Grants").
//
// The key secret is sealed (AES-256-GCM) under the session's grant secret, which
// only the browser's cookie holds (core/grant/cookie.h); the row in `grants` keeps
// the sealed blob, bound by its associated data to the grant id, session, key and
// absolute expiry. At most one live grant per key. Every use checks the idle and
// absolute limits and that the session still exists and is within its own limits.
// Revoking deletes the row (secure_delete on) and scrubs the WAL.
//
// One GrantStore per Db connection; not shared between threads.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config/config.h"
#include "core/store/db.h"
#include "core/store/purge.h"
#include "core/util/clock.h"
#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::grant {

struct GrantInfo {
  std::string id;  // short random id (10 hex characters) shown to admins
  std::int64_t key_id = 0;
  std::string key_fingerprint;
  std::string session_id;
  std::string session_short_id;
  std::string login;
  std::int64_t created = 0;
  std::int64_t last_used = 0;
  std::int64_t expires = 0;  // absolute limit (never after the session's absolute limit)
  // When the grant dies for lack of use: last_used + grant_idle_timeout, or the
  // session's own idle end if that comes first.
  std::int64_t idle_deadline = 0;
  std::string client_addr;  // where the unlock came from
  std::string user_agent;

  // The moment the grant stops working unless used again before it.
  std::int64_t deadline() const { return expires < idle_deadline ? expires : idle_deadline; }
  // Seconds of life left at now (0 when expired): what the page banner shows.
  std::int64_t seconds_left(std::int64_t now) const {
    return now < deadline() ? deadline() - now : 0;
  }
  bool live(std::int64_t now) const { return now < deadline(); }
};

// Who ends a grant; decides the wording of the notice its session is left.
enum class RevokedBy {
  owner,          // the grant's own user: /lock, logout, re-unlock in the same session
  admin,          // `webmailkey grant revoke`
  other_session,  // a sign-in that took the key over (flow 6)
  expiry,         // idle or absolute limit, or the session ended
};

// The actor of a revocation. Grants of actor_session get no notice (that session
// is told directly); every other victim session gets one in sessions.notice,
// unless the cause is expiry.
struct Revoker {
  RevokedBy by = RevokedBy::admin;
  std::string actor_session;  // session id of the acting request; "" for the CLI
  std::string origin;         // client address of the acting request, or audit::admin_actor()

  static Revoker owner(std::string session_id, std::string client_addr) {
    return {RevokedBy::owner, std::move(session_id), std::move(client_addr)};
  }
  static Revoker admin(std::string origin) { return {RevokedBy::admin, {}, std::move(origin)}; }
  static Revoker other_session(std::string session_id, std::string client_addr) {
    return {RevokedBy::other_session, std::move(session_id), std::move(client_addr)};
  }
};

class GrantStore {
 public:
  GrantStore(store::Db& db, const util::Clock& clock, const config::Config& config);

  // Records a grant letting session_id use key_id until the idle or absolute limit,
  // sealing key_secret under grant_secret (32 bytes). A grant of the same session on
  // the key is replaced; an expired grant of another session is removed first.
  // Returns the new grant. Errc::key_in_use if another session holds a live grant
  // on the key (see live_for_key for who/when/where; nothing is written but an
  // audit row); Errc::not_found if the session or key does not exist or the key is
  // not the session user's; Errc::invalid_argument if grant_secret is not 32 bytes
  // or key_secret is empty; Errc::conflict if the database stayed busy.
  Result<GrantInfo> create(const std::string& session_id, std::int64_t key_id,
                           const util::SecretBuffer& key_secret,
                           const util::SecretBuffer& grant_secret, std::string_view client_addr,
                           std::string_view user_agent);

  // The key secret of session_id's grant on key_id, opened with the cookie's
  // grant_secret; marks the grant used now. Errc::not_found if the session holds no
  // grant on the key; Errc::expired if the grant is past a limit (it is deleted and
  // audited); Errc::revoked if grant_secret does not open it (wrong, damaged or
  // missing cookie: the grant can never be opened again, so it is deleted and audited).
  Result<util::SecretBuffer> use(const std::string& session_id, std::int64_t key_id,
                                 const util::SecretBuffer& grant_secret);

  // The live grant of session_id on key_id, if any (for the page banner).
  std::optional<GrantInfo> for_session_and_key(const std::string& session_id, std::int64_t key_id);
  // The live grant on key_id in any session (the "key in use elsewhere" page).
  std::optional<GrantInfo> live_for_key(std::int64_t key_id);
  // The live grants of session_id, oldest first.
  std::vector<GrantInfo> for_session(const std::string& session_id);
  // Every stored grant (expired ones not yet purged included), of one login or all,
  // oldest first. Errc::not_found if login names no user.
  Result<std::vector<GrantInfo>> list(const std::optional<std::string>& login);

  // Ends the grant with this id. Returns 1. Errc::not_found if no such grant.
  Result<int> revoke(const std::string& grant_id, const Revoker& by);
  // Ends every grant of the session (lock, logout). Returns how many.
  Result<int> revoke_for_session(const std::string& session_id, const Revoker& by);
  // Ends every grant of the user. Returns how many. Errc::not_found if no such login.
  Result<int> revoke_for_login(const std::string& login, const Revoker& by);
  // Ends the grant on key_id, if any (taking a key over). Returns 0 or 1.
  Result<int> revoke_for_key(std::int64_t key_id, const Revoker& by);
  // Ends every grant. Returns how many.
  Result<int> revoke_all(const Revoker& by);

  // Moves every grant of session old_id to new_id (the session got a new token:
  // SessionStore::rotate), sealing each key secret again under grant_secret with the
  // new id in its associated data. A grant that grant_secret does not open is deleted
  // and audited, as use() would. Joins the caller's transaction. Returns how many
  // grants moved.
  Result<int> rebind_session(const std::string& old_id, const std::string& new_id,
                             const util::SecretBuffer& grant_secret);

  // Deletes grants past their idle or absolute limit or whose session is gone or
  // past its own limits, in short transactions that re-check each row, so a grant
  // in use is never touched. Returns how many were (dry_run: would be) deleted.
  Result<int> purge(store::PurgeMode mode);

  // The id of the key whose fingerprint is text or starts with text (hex, at least
  // 8 digits; case, spaces and colons ignored). Errc::invalid_argument if text is not
  // such a prefix or matches several keys; Errc::not_found if it matches none.
  // Interim: the key store (core/keys) will own this lookup.
  Result<std::int64_t> find_key(std::string_view text);

 private:
  struct Row;
  using Binder = std::function<void(store::Statement&)>;
  std::vector<Row> load(std::string_view where, const Binder& bind);
  Row row_from(const store::Statement& st) const;
  int remove(const std::vector<Row>& victims, const Revoker& by, std::int64_t now);
  Result<int> revoke_where(std::string_view where, const Binder& bind, const Revoker& by);
  void scrub_wal();

  store::Db& db_;
  const util::Clock& clock_;
  const config::Config& config_;
};

}  // namespace wmk::grant

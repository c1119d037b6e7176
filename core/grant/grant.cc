#include "core/grant/grant.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "core/audit/audit.h"
#include "core/crypto/aead.h"
#include "core/grant/cookie.h"
#include "core/keys/types.h"
#include "core/session/session.h"
#include "core/util/encoding.h"

namespace wmk::grant {

// One stored grant with what its liveness depends on.
struct GrantStore::Row {
  GrantInfo info;
  std::int64_t stored_expires = 0;  // as bound into the sealed blob
  bool session_exists = false;
  std::int64_t session_end = 0;  // the session's absolute limit
  std::vector<std::uint8_t> wrapped;
};

namespace {

// Grant ids: 5 random bytes as 10 hex characters; unique by the primary key.
constexpr std::size_t kGrantIdBytes = 5;
// Rows per purge transaction, so that cron never holds the write lock for long.
constexpr std::size_t kPurgeBatch = 100;

constexpr const char* kSelect = R"sql(
SELECT g.id, g.key_id, k.fingerprint, g.session_id, coalesce(s.short_id, ''), u.login,
       g.created, g.last_used, g.expires, g.client_addr, g.user_agent,
       s.id IS NOT NULL, coalesce(s.created, 0), coalesce(s.last_seen, 0), g.wrapped
  FROM grants g
  JOIN keys k ON k.id = g.key_id
  JOIN users u ON u.id = k.user_id
  LEFT JOIN sessions s ON s.id = g.session_id
 WHERE )sql";

// The associated data that ties a sealed key secret to its row: moved to another
// row, session or key, or with its expiry pushed back, the blob no longer opens.
std::string associated_data(const std::string& grant_id, const std::string& session_id,
                            std::int64_t key_id, const std::string& fingerprint,
                            std::int64_t expires) {
  return "webmailkey grant v1\n" + grant_id + "\n" + session_id + "\n" + std::to_string(key_id) +
         "\n" + fingerprint + "\n" + std::to_string(expires);
}

// "2024-05-01" and "14:05" of t in UTC.
std::tm utc_tm(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}
std::string utc_date(std::int64_t t) {
  std::tm tm = utc_tm(t);
  char buf[32];
  return std::string(buf, std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm));
}
std::string utc_hour_minute(std::int64_t t) {
  std::tm tm = utc_tm(t);
  char buf[32];
  return std::string(buf, std::strftime(buf, sizeof buf, "%H:%M", &tm));
}

std::string short_fingerprint(const std::string& fpr) {
  constexpr std::size_t kShown = 16;
  return fpr.size() > kShown ? fpr.substr(0, kShown) + "\u2026" : fpr;
}

const char* revoked_by_name(RevokedBy by) {
  switch (by) {
    case RevokedBy::owner:
      return "owner";
    case RevokedBy::admin:
      return "admin";
    case RevokedBy::other_session:
      return "other_session";
    case RevokedBy::expiry:
      return "expiry";
  }
  return "unknown";
}

// Audit event names of this module.
constexpr const char* kEventCreate = "grant.create";
constexpr const char* kEventUse = "grant.use";
constexpr const char* kEventExpire = "grant.expire";
constexpr const char* kEventRevoke = "grant.revoke";

// Written in the caller's transaction, so a change and its audit row commit together.
void record(store::Db& db, const util::Clock& clock, const audit::AuditEvent& e) {
  audit::AuditLog(db, clock).record(e);
}

std::string session_short_id(store::Db& db, const std::string& session_id) {
  auto st = db.prepare("SELECT short_id FROM sessions WHERE id = ?");
  st.bind(1, session_id);
  return st.step() ? st.column_text(0) : std::string();
}

// The first second at which a session is dead by its absolute or idle limit.
// SessionStore (core/session) counts the limit second itself as live.
std::int64_t session_absolute_end(const config::Config& c, std::int64_t created) {
  return created + c.session_absolute_timeout.count() + 1;
}
std::int64_t session_idle_end(const config::Config& c, std::int64_t last_seen) {
  return last_seen + c.session_idle_timeout.count() + 1;
}

// Why a row is no longer live, or "" if it is.
std::string expiry_reason(const GrantInfo& g, bool session_exists, std::int64_t session_end,
                          std::int64_t now) {
  if (!session_exists)
    return "its session ended";
  if (now >= session_end)
    return "its session reached its time limit";
  if (now >= g.expires)
    return "it reached its time limit";
  if (now >= g.idle_deadline)
    return "it was not used for too long";
  return {};
}

}  // namespace

GrantStore::GrantStore(store::Db& db, const util::Clock& clock, const config::Config& config)
    : db_(db), clock_(clock), config_(config) {}

GrantStore::Row GrantStore::row_from(const store::Statement& st) const {
  Row r;
  GrantInfo& g = r.info;
  g.id = st.column_text(0);
  g.key_id = st.column_int(1);
  g.key_fingerprint = st.column_text(2);
  g.session_id = st.column_text(3);
  g.session_short_id = st.column_text(4);
  g.login = st.column_text(5);
  g.created = st.column_int(6);
  g.last_used = st.column_int(7);
  r.stored_expires = st.column_int(8);
  g.client_addr = st.column_text(9);
  g.user_agent = st.column_text(10);
  r.session_exists = st.column_int(11) != 0;
  const std::int64_t session_created = st.column_int(12);
  const std::int64_t session_last_seen = st.column_int(13);
  r.wrapped = st.column_blob(14);

  // A grant never outlives its session: the session's own limits cap the grant's.
  const std::int64_t grant_idle_end = g.last_used + config_.grant_idle_timeout.count();
  if (r.session_exists) {
    r.session_end = session_absolute_end(config_, session_created);
    g.expires = std::min(r.stored_expires, r.session_end);
    g.idle_deadline = std::min(grant_idle_end, session_idle_end(config_, session_last_seen));
  } else {
    g.expires = r.stored_expires;
    g.idle_deadline = grant_idle_end;
  }
  return r;
}

std::vector<GrantStore::Row> GrantStore::load(std::string_view where, const Binder& bind) {
  std::string sql = std::string(kSelect) + std::string(where) + " ORDER BY g.created, g.id";
  auto st = db_.prepare(sql);
  if (bind)
    bind(st);
  std::vector<Row> rows;
  while (st.step())
    rows.push_back(row_from(st));
  return rows;
}

int GrantStore::remove(const std::vector<Row>& victims, const Revoker& by, std::int64_t now) {
  int removed = 0;
  std::string actor_short;
  if (by.by == RevokedBy::other_session || by.by == RevokedBy::owner)
    actor_short = session_short_id(db_, by.actor_session);
  for (const Row& r : victims) {
    const GrantInfo& g = r.info;
    auto del = db_.prepare("DELETE FROM grants WHERE id = ?");
    del.bind(1, g.id).run();
    if (db_.changes() == 0)
      continue;
    ++removed;
    // A grant already past its limits ends by expiry whoever removes it: nobody
    // stopped it, so its session gets no notice.
    if (by.by == RevokedBy::expiry || !r.session_exists || !g.live(now)) {
      record(
          db_, clock_,
          {g.login, kEventExpire, audit::outcome::kExpired, g.key_fingerprint, g.session_short_id,
           g.client_addr,
           "grant " + g.id + " ended: " + expiry_reason(g, r.session_exists, r.session_end, now)});
      continue;
    }
    std::string detail = "grant " + g.id + " revoked by " + revoked_by_name(by.by);
    if (!actor_short.empty())
      detail += " (session " + actor_short + ")";
    record(db_, clock_,
           {g.login, kEventRevoke, audit::outcome::kOk, g.key_fingerprint, g.session_short_id,
            by.origin, detail});

    // The acting session learns the outcome directly; any other victim is told at
    // its next request.
    if (!r.session_exists || g.session_id == by.actor_session)
      continue;
    std::string cause;
    if (by.by == RevokedBy::admin) {
      cause = "by an administrator";
    } else {
      cause = "by a sign-in";
      if (!by.origin.empty())
        cause += " from " + by.origin;
    }
    std::string notice = "Your unlock of key " + short_fingerprint(g.key_fingerprint) +
                         " was stopped on " + utc_date(now) + " at " + utc_hour_minute(now) +
                         " UTC " + cause + ".";
    // The sessions table is core/session's: it writes the notice.
    session::SessionStore::append_notice(db_, g.session_id, notice);
  }
  return removed;
}

void GrantStore::scrub_wal() {
  // Deleted rows are zeroed in the database file (secure_delete), but earlier copies
  // of their pages stay in SQLite's WAL until it is checkpointed and truncated. Best
  // effort: with a long reader the checkpoint is partial and the next one finishes.
  db_.scrub_deleted();
}

Result<GrantInfo> GrantStore::create(const std::string& session_id, std::int64_t key_id,
                                     const util::SecretBuffer& key_secret,
                                     const util::SecretBuffer& grant_secret,
                                     std::string_view client_addr, std::string_view user_agent) {
  if (grant_secret.size() != kGrantSecretSize)
    return make_error(Errc::invalid_argument, "a grant secret must be 32 bytes");
  if (key_secret.empty())
    return make_error(Errc::invalid_argument, "the key secret is empty");
  const std::int64_t now = clock_.now();
  bool removed_any = false;
  Result<GrantInfo> out = make_error(Errc::internal, "grant not created");
  {
    store::Transaction tx(db_);
    auto s = db_.prepare("SELECT user_id, short_id, created, last_seen FROM sessions WHERE id = ?");
    s.bind(1, session_id);
    if (!s.step())
      return make_error(Errc::not_found, "the session has ended");
    const std::int64_t user_id = s.column_int(0);
    const std::string short_id = s.column_text(1);
    const std::int64_t session_end = session_absolute_end(config_, s.column_int(2));
    if (now >= session_end || now >= session_idle_end(config_, s.column_int(3)))
      return make_error(Errc::expired, "the session has reached its time limit");

    auto k = db_.prepare(
        "SELECT fingerprint, u.login FROM keys JOIN users u ON u.id = user_id"
        " WHERE keys.id = ? AND user_id = ?");
    k.bind_all(key_id, user_id);
    if (!k.step())
      return make_error(Errc::not_found, "no such key for this user");
    const std::string fingerprint = k.column_text(0);
    const std::string login = k.column_text(1);

    auto existing = load("g.key_id = ?", [&](store::Statement& st) { st.bind(1, key_id); });
    std::string replaced;
    if (!existing.empty()) {
      const Row& old = existing.front();
      if (!old.info.live(now) || !old.session_exists) {
        removed_any = remove(existing, Revoker{RevokedBy::expiry, {}, {}}, now) > 0;
      } else if (old.info.session_id == session_id) {
        // The same session unlocking again (e.g. after losing its cookie): its own
        // grant, replaced; nobody else is affected.
        removed_any =
            remove(existing, Revoker::owner(session_id, std::string(client_addr)), now) > 0;
        replaced = " (replaces grant " + old.info.id + ")";
      } else {
        const GrantInfo& o = old.info;
        std::string where = "session " + o.session_short_id + " since " + utc_date(o.created) +
                            " " + utc_hour_minute(o.created) + " UTC" +
                            (o.client_addr.empty() ? "" : " from " + o.client_addr);
        record(db_, clock_,
               {login, kEventCreate, audit::outcome::kDenied, fingerprint, short_id,
                std::string(client_addr), "key in use by " + where});
        tx.commit();
        return make_error(Errc::key_in_use, "the key " + fingerprint +
                                                " is unlocked in another session (" + where + ")");
      }
    }

    std::string id;
    for (;;) {
      id = util::hex_encode(util::random_bytes(kGrantIdBytes));
      auto taken = db_.prepare("SELECT 1 FROM grants WHERE id = ?");
      taken.bind(1, id);
      if (!taken.step())
        break;
    }
    const std::int64_t expires =
        std::min(now + config_.grant_absolute_timeout.count(), session_end);
    const auto wrapped =
        crypto::seal(grant_secret, key_secret.bytes(),
                     associated_data(id, session_id, key_id, fingerprint, expires));
    auto ins = db_.prepare(
        "INSERT INTO grants (id, key_id, session_id, wrapped, created, last_used, expires,"
        " client_addr, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ins.bind_all(id, key_id, session_id, wrapped, now, now, expires, client_addr, user_agent);
    auto step = ins.try_step();
    if (!step) {
      // Within BEGIN IMMEDIATE nobody else can have inserted: a constraint here is a bug
      // or a database changed under us.
      return make_error(Errc::conflict, "could not record the grant: " + step.error().message);
    }
    record(db_, clock_,
           {login, kEventCreate, audit::outcome::kOk, fingerprint, short_id,
            std::string(client_addr), "grant " + id + replaced});
    tx.commit();

    auto rows = load("g.id = ?", [&](store::Statement& st) { st.bind(1, id); });
    if (rows.empty())
      return make_error(Errc::internal, "the new grant vanished");
    out = rows.front().info;
  }
  if (removed_any)
    scrub_wal();
  return out;
}

Result<util::SecretBuffer> GrantStore::use(const std::string& session_id, std::int64_t key_id,
                                           const util::SecretBuffer& grant_secret) {
  const std::int64_t now = clock_.now();
  store::Transaction tx(db_);
  auto rows = load("g.session_id = ? AND g.key_id = ?", [&](store::Statement& st) {
    st.bind(1, session_id);
    st.bind(2, key_id);
  });
  if (rows.empty())
    return make_error(Errc::not_found, "this session holds no grant on the key");
  const Row& r = rows.front();
  if (!r.session_exists || !r.info.live(now)) {
    std::string why = expiry_reason(r.info, r.session_exists, r.session_end, now);
    remove(rows, Revoker{RevokedBy::expiry, {}, {}}, now);
    tx.commit();
    scrub_wal();
    return make_error(Errc::expired, "the key's unlock has ended: " + why);
  }

  Result<util::SecretBuffer> opened =
      make_error(Errc::crypto, "the grant secret has the wrong size");
  if (grant_secret.size() == kGrantSecretSize) {
    opened = crypto::open(grant_secret, r.wrapped,
                          associated_data(r.info.id, r.info.session_id, key_id,
                                          r.info.key_fingerprint, r.stored_expires));
  }
  if (!opened) {
    // The cookie's secret does not open the grant: a lost, damaged or forged cookie.
    // Nothing can ever open this grant again, and keeping it would block the key, so
    // it goes.
    db_.prepare("DELETE FROM grants WHERE id = ?").bind(1, r.info.id).run();
    record(db_, clock_,
           {r.info.login,
            "grant.use",
            "fail",
            r.info.key_fingerprint,
            r.info.session_short_id,
            {},
            "grant " + r.info.id + ": the grant cookie does not open it (" +
                errc_name(opened.code()) + "); grant deleted"});
    tx.commit();
    scrub_wal();
    return make_error(Errc::revoked,
                      "the browser's grant cookie does not match the key's unlock; unlock again");
  }
  db_.prepare("UPDATE grants SET last_used = ? WHERE id = ?").bind_all(now, r.info.id).run();
  tx.commit();
  return std::move(opened).value();
}

Result<int> GrantStore::rebind_session(const std::string& old_id, const std::string& new_id,
                                       const util::SecretBuffer& grant_secret) {
  int moved = 0;
  for (const Row& r : load("g.session_id = ?", [&](store::Statement& st) { st.bind(1, old_id); })) {
    const GrantInfo& g = r.info;
    Result<util::SecretBuffer> opened =
        make_error(Errc::crypto, "the grant secret has the wrong size");
    if (grant_secret.size() == kGrantSecretSize) {
      opened = crypto::open(
          grant_secret, r.wrapped,
          associated_data(g.id, old_id, g.key_id, g.key_fingerprint, r.stored_expires));
    }
    if (!opened) {
      db_.prepare("DELETE FROM grants WHERE id = ?").bind(1, g.id).run();
      record(db_, clock_,
             {g.login,
              kEventUse,
              audit::outcome::kFail,
              g.key_fingerprint,
              g.session_short_id,
              {},
              "grant " + g.id + ": the grant cookie does not open it (" + errc_name(opened.code()) +
                  "); grant deleted"});
      continue;
    }
    const auto wrapped =
        crypto::seal(grant_secret, opened->bytes(),
                     associated_data(g.id, new_id, g.key_id, g.key_fingerprint, r.stored_expires));
    db_.prepare("UPDATE grants SET session_id = ?, wrapped = ? WHERE id = ?")
        .bind_all(new_id, wrapped, g.id)
        .run();
    ++moved;
  }
  return moved;
}

std::optional<GrantInfo> GrantStore::for_session_and_key(const std::string& session_id,
                                                         std::int64_t key_id) {
  auto rows = load("g.session_id = ? AND g.key_id = ?", [&](store::Statement& st) {
    st.bind(1, session_id);
    st.bind(2, key_id);
  });
  if (rows.empty() || !rows.front().session_exists || !rows.front().info.live(clock_.now()))
    return std::nullopt;
  return rows.front().info;
}

std::optional<GrantInfo> GrantStore::live_for_key(std::int64_t key_id) {
  auto rows = load("g.key_id = ?", [&](store::Statement& st) { st.bind(1, key_id); });
  if (rows.empty() || !rows.front().session_exists || !rows.front().info.live(clock_.now()))
    return std::nullopt;
  return rows.front().info;
}

std::vector<GrantInfo> GrantStore::for_session(const std::string& session_id) {
  const std::int64_t now = clock_.now();
  std::vector<GrantInfo> out;
  for (auto& r : load("g.session_id = ?", [&](store::Statement& st) { st.bind(1, session_id); })) {
    if (r.session_exists && r.info.live(now))
      out.push_back(std::move(r.info));
  }
  return out;
}

Result<std::vector<GrantInfo>> GrantStore::list(const std::optional<std::string>& login) {
  std::vector<Row> rows;
  if (login) {
    auto u = db_.prepare("SELECT 1 FROM users WHERE login = ?");
    u.bind(1, *login);
    if (!u.step())
      return make_error(Errc::not_found, "no user with login " + *login);
    rows = load("u.login = ?", [&](store::Statement& st) { st.bind(1, *login); });
  } else {
    rows = load("1 = 1", {});
  }
  std::vector<GrantInfo> out;
  out.reserve(rows.size());
  for (auto& r : rows)
    out.push_back(std::move(r.info));
  return out;
}

Result<int> GrantStore::revoke_where(std::string_view where, const Binder& bind,
                                     const Revoker& by) {
  const std::int64_t now = clock_.now();
  int n = 0;
  {
    store::Transaction tx(db_);
    n = remove(load(where, bind), by, now);
    tx.commit();
  }
  if (n > 0)
    scrub_wal();
  return n;
}

Result<int> GrantStore::revoke(const std::string& grant_id, const Revoker& by) {
  auto n = revoke_where(
      "g.id = ?", [&](store::Statement& st) { st.bind(1, grant_id); }, by);
  if (n && *n == 0)
    return make_error(Errc::not_found, "no grant with id " + grant_id);
  return n;
}

Result<int> GrantStore::revoke_for_session(const std::string& session_id, const Revoker& by) {
  return revoke_where(
      "g.session_id = ?", [&](store::Statement& st) { st.bind(1, session_id); }, by);
}

Result<int> GrantStore::revoke_for_login(const std::string& login, const Revoker& by) {
  auto u = db_.prepare("SELECT 1 FROM users WHERE login = ?");
  u.bind(1, login);
  if (!u.step())
    return make_error(Errc::not_found, "no user with login " + login);
  return revoke_where(
      "u.login = ?", [&](store::Statement& st) { st.bind(1, login); }, by);
}

Result<int> GrantStore::revoke_for_key(std::int64_t key_id, const Revoker& by) {
  return revoke_where(
      "g.key_id = ?", [&](store::Statement& st) { st.bind(1, key_id); }, by);
}

Result<int> GrantStore::revoke_all(const Revoker& by) {
  return revoke_where("1 = 1", {}, by);
}

Result<int> GrantStore::purge(store::PurgeMode mode) {
  auto dead = [](std::vector<Row> rows, std::int64_t now) {
    std::vector<Row> out;
    for (auto& r : rows) {
      if (!r.session_exists || !r.info.live(now))
        out.push_back(std::move(r));
    }
    return out;
  };
  if (mode == store::PurgeMode::dry_run)
    return static_cast<int>(dead(load("1 = 1", {}), clock_.now()).size());

  int total = 0;
  for (;;) {
    // Each batch re-reads the rows inside its own write transaction, so a grant used
    // a moment ago is seen as live and left alone.
    store::Transaction tx(db_);
    const std::int64_t now = clock_.now();
    auto victims = dead(load("1 = 1", {}), now);
    if (victims.empty())
      break;
    const bool more = victims.size() > kPurgeBatch;
    if (more)
      victims.resize(kPurgeBatch);
    total += remove(victims, Revoker{RevokedBy::expiry, {}, {}}, now);
    tx.commit();
    if (!more)
      break;
  }
  if (total > 0)
    scrub_wal();
  return total;
}

Result<std::int64_t> GrantStore::find_key(std::string_view text) {
  auto normalized = keys::normalize_fingerprint_prefix(text);
  if (!normalized)
    return normalized.error();
  const std::string& wanted = *normalized;
  auto st = db_.prepare(
      "SELECT id, n FROM (SELECT id, replace(replace(upper(fingerprint), ':', ''), ' ', '') AS n"
      " FROM keys) AS f WHERE substr(n, 1, length(?1)) = ?1 ORDER BY id");
  st.bind(1, wanted);
  std::vector<std::int64_t> ids;
  while (st.step()) {
    if (st.column_text(1) == wanted)
      return st.column_int(0);  // an exact fingerprint wins over longer ones it prefixes
    ids.push_back(st.column_int(0));
  }
  if (ids.empty())
    return make_error(Errc::not_found, "no key with fingerprint " + wanted);
  if (ids.size() > 1)
    return make_error(Errc::invalid_argument, "the prefix " + wanted + " matches " +
                                                  std::to_string(ids.size()) +
                                                  " keys: give more of the fingerprint");
  return ids.front();
}

}  // namespace wmk::grant

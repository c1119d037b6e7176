#include "core/auth/throttle.h"

#include <algorithm>

#include "core/config/config.h"

namespace wmk::auth {

namespace {

std::string describe(const std::string& scope) {
  auto colon = scope.find(':');
  if (colon == std::string::npos)
    return "'" + scope + "'";
  std::string kind = scope.substr(0, colon);
  std::string name = scope.substr(colon + 1);
  if (kind == "login")
    return "for login '" + name + "'";
  if (kind == "addr")
    return "from address " + name;
  if (kind == "key")
    return "for key " + name;
  return "for " + scope;
}

struct Row {
  std::int64_t failures = 0;
  std::int64_t last_failure = 0;
  std::int64_t locked_until = 0;
};

std::optional<Row> read_row(store::Db& db, const std::string& scope) {
  auto st =
      db.prepare("SELECT failures, last_failure, locked_until FROM auth_failures WHERE scope = ?");
  st.bind(1, scope);
  if (!st.step())
    return std::nullopt;
  return Row{st.column_int(0), st.column_int(1), st.column_int(2)};
}

}  // namespace

ThrottlePolicy throttle_policy(const config::Config& cfg) {
  ThrottlePolicy p;
  p.max_failures = std::max<std::uint32_t>(cfg.max_failures, 1);
  p.lockout = std::min(cfg.lockout, p.max_lockout);
  return p;
}

std::string login_scope(std::string_view login) {
  return "login:" + std::string(login);
}

std::string address_scope(std::string_view client_addr) {
  return "addr:" + std::string(client_addr);
}

std::string key_scope(std::string_view fingerprint) {
  return "key:" + std::string(fingerprint);
}

Status Throttle::locked_status(const std::string& scope, std::int64_t until,
                               std::int64_t now) const {
  const std::int64_t wait = until - now;
  return make_error(Errc::locked_out, "too many failed attempts " + describe(scope) +
                                          ": try again in " + std::to_string(wait) +
                                          (wait == 1 ? " second" : " seconds"));
}

Status Throttle::check(const std::string& scope) {
  const std::int64_t now = clock_.now();
  auto row = read_row(db_, scope);
  if (row && row->locked_until > now)
    return locked_status(scope, row->locked_until, now);
  return {};
}

void Throttle::count_failure(const std::string& scope, std::int64_t now) {
  Row r = read_row(db_, scope).value_or(Row{});
  const std::int64_t max_lockout = policy_.max_lockout.count();
  // A day of quiet after the last failure and after the end of any lock: start afresh.
  if (now - std::max(r.last_failure, r.locked_until) >= max_lockout)
    r.failures = 0;
  r.failures += 1;
  r.last_failure = now;
  const auto limit = static_cast<std::int64_t>(policy_.max_failures);
  if (r.failures >= limit) {
    // lockout * 2^(failures beyond the limit), capped; the shift is bounded first.
    const std::int64_t doublings = std::min<std::int64_t>(r.failures - limit, 32);
    const std::int64_t lock = std::min(policy_.lockout.count() << doublings, max_lockout);
    r.locked_until = now + lock;
  }
  auto st = db_.prepare(
      "INSERT INTO auth_failures (scope, failures, last_failure, locked_until) "
      "VALUES (?, ?, ?, ?) ON CONFLICT(scope) DO UPDATE SET failures = excluded.failures, "
      "last_failure = excluded.last_failure, locked_until = excluded.locked_until");
  st.bind_all(scope, r.failures, r.last_failure, r.locked_until);
  st.run();
}

Status Throttle::acquire(const std::string& scope) {
  store::Transaction tx(db_);
  const std::int64_t now = clock_.now();
  auto row = read_row(db_, scope);
  if (row && row->locked_until > now)
    return locked_status(scope, row->locked_until, now);
  count_failure(scope, now);
  tx.commit();
  return {};
}

void Throttle::record_failure(const std::string& scope) {
  store::Transaction tx(db_);
  count_failure(scope, clock_.now());
  tx.commit();
}

void Throttle::record_success(const std::string& scope) {
  auto st = db_.prepare("DELETE FROM auth_failures WHERE scope = ?");
  st.bind(1, scope);
  st.run();
}

std::int64_t Throttle::seconds_locked(const std::string& scope) {
  const std::int64_t now = clock_.now();
  auto row = read_row(db_, scope);
  return row && row->locked_until > now ? row->locked_until - now : 0;
}

std::uint32_t Throttle::failures(const std::string& scope) {
  auto row = read_row(db_, scope);
  return row ? static_cast<std::uint32_t>(row->failures) : 0;
}

int Throttle::purge_stale(store::PurgeMode mode) {
  const std::int64_t now = clock_.now();
  const std::int64_t before = now - policy_.max_lockout.count();
  const char* where = " FROM auth_failures WHERE locked_until <= ? AND last_failure <= ?";
  // Same rule as the reset in count_failure: a day of quiet after the failure and the lock.
  if (mode == store::PurgeMode::dry_run) {
    auto st = db_.prepare(std::string("SELECT count(*)") + where);
    st.bind_all(before, before);
    st.step();
    return static_cast<int>(st.column_int(0));
  }
  auto st = db_.prepare(std::string("DELETE") + where);
  st.bind_all(before, before);
  st.run();
  return db_.changes();
}

}  // namespace wmk::auth

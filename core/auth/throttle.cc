#include "core/auth/throttle.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "core/config/config.h"
#include "core/util/encoding.h"

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
  std::int64_t interrupted = 0;
};

std::optional<Row> read_row(store::Db& db, const std::string& scope) {
  auto st = db.prepare(
      "SELECT failures, last_failure, locked_until, interrupted FROM auth_failures "
      "WHERE scope = ?");
  st.bind(1, scope);
  if (!st.step())
    return std::nullopt;
  return Row{st.column_int(0), st.column_int(1), st.column_int(2), st.column_int(3)};
}

constexpr std::chrono::milliseconds kSlotPoll{20};

// One marker line: "key=value", the value without control characters.
void put(std::string& out, const char* key, std::string_view value) {
  out += key;
  out += '=';
  for (char c : value.substr(0, 1000))
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  out += '\n';
}

std::string marker_text(const audit::AuditEvent& e, bool audit_here, std::int64_t now) {
  std::string out = "wmk-attempt 1\n";
  put(out, "started", std::to_string(now));
  put(out, "audit", audit_here ? "1" : "0");
  put(out, "login", e.login);
  put(out, "event", e.event);
  put(out, "key", e.key_fpr);
  put(out, "session", e.session);
  put(out, "addr", e.client_addr);
  put(out, "detail", e.detail);
  return out;
}

// The marker's fields; an unreadable (half-written) marker gives empty ones.
std::string marker_field(const std::string& marker, std::string_view key) {
  std::size_t pos = 0;
  while (pos < marker.size()) {
    auto eol = marker.find('\n', pos);
    std::string_view line(marker.data() + pos,
                          (eol == std::string::npos ? marker.size() : eol) - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == '=')
      return std::string(line.substr(key.size() + 1));
    if (eol == std::string::npos)
      break;
    pos = eol + 1;
  }
  return "";
}

Status write_marker(int fd, const std::string& text) {
  if (::ftruncate(fd, 0) != 0)
    return make_error(Errc::io,
                      std::string("cannot reset an attempt marker: ") + std::strerror(errno));
  if (::lseek(fd, 0, SEEK_SET) < 0)
    return make_error(Errc::io,
                      std::string("cannot seek an attempt marker: ") + std::strerror(errno));
  return util::write_all(fd, text);
}

std::string read_marker(int fd) {
  std::string out;
  char buf[4096];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || out.size() > 64 * 1024)
      break;
    out.append(buf, static_cast<std::size_t>(n));
    off += n;
  }
  return out;
}

// The slot file for scope: named by a hash, so no login or address becomes a path.
std::string slot_path(const std::string& dir, const std::string& scope, int slot) {
  return dir + "/" + util::sha256_hex(scope).substr(0, 32) + "." + std::to_string(slot);
}

enum class Take { taken, busy };

// Opens and locks path without waiting. The file must still be the one at path after
// locking: purge may have removed it in between, and a lock on a removed file locks
// nothing anyone else will open.
Result<Take> try_take(const std::string& path, util::Fd& out) {
  for (int tries = 0; tries < 10; ++tries) {
    util::Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) {
      return make_error(Errc::io,
                        "cannot open the attempt lock " + path + ": " + std::strerror(errno));
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK || errno == EINTR)
        return Take::busy;
      return make_error(Errc::io, "cannot lock " + path + ": " + std::strerror(errno));
    }
    struct stat held {
    }, named{};
    if (::fstat(fd.get(), &held) == 0 && ::stat(path.c_str(), &named) == 0 &&
        held.st_ino == named.st_ino && held.st_dev == named.st_dev) {
      out = std::move(fd);
      return Take::taken;
    }
  }
  return Take::busy;
}

}  // namespace

ThrottlePolicy throttle_policy(const config::Config& cfg) {
  ThrottlePolicy p;
  p.max_failures = std::max<std::uint32_t>(cfg.max_failures, 1);
  p.address_max_failures = std::max<std::uint32_t>(cfg.max_failures_per_address, 1);
  p.lockout = std::min(cfg.lockout, p.max_lockout);
  return p;
}

std::string throttle_lock_dir(const config::Config& cfg) {
  return cfg.data_dir + "/throttle";
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

Status Throttle::locked_status(const std::string& scope, std::int64_t until, std::int64_t now,
                               std::int64_t interrupted) const {
  const std::int64_t wait = until - now;
  std::string why;
  if (interrupted > 0) {
    why = " (" + std::to_string(interrupted) +
          (interrupted == 1 ? " of them was a request" : " of them were requests") +
          " interrupted before the check finished, which count as failures)";
  }
  return make_error(Errc::locked_out, "too many failed attempts " + describe(scope) + why +
                                          ": try again in " + std::to_string(wait) +
                                          (wait == 1 ? " second" : " seconds"));
}

std::uint32_t Throttle::limit_for(const std::string& scope) const {
  return scope.rfind("addr:", 0) == 0 ? policy_.address_max_failures : policy_.max_failures;
}

Status Throttle::check(const std::string& scope) {
  const std::int64_t now = clock_.now();
  auto row = read_row(db_, scope);
  if (row && row->locked_until > now)
    return locked_status(scope, row->locked_until, now, row->interrupted);
  return {};
}

void Throttle::count_failure(const std::string& scope, std::int64_t now, Cause cause) {
  Row r = read_row(db_, scope).value_or(Row{});
  const std::int64_t max_lockout = policy_.max_lockout.count();
  // A day of quiet after the last failure and after the end of any lock: start afresh.
  if (now - std::max(r.last_failure, r.locked_until) >= max_lockout) {
    r.failures = 0;
    r.interrupted = 0;
  }
  r.failures += 1;
  if (cause == Cause::interrupted)
    r.interrupted += 1;
  r.last_failure = now;
  const auto limit = static_cast<std::int64_t>(limit_for(scope));
  if (r.failures >= limit) {
    // lockout * 2^(failures beyond the limit), capped; the shift is bounded first.
    const std::int64_t doublings = std::min<std::int64_t>(r.failures - limit, 32);
    const std::int64_t lock = std::min(policy_.lockout.count() << doublings, max_lockout);
    r.locked_until = now + lock;
  }
  auto st = db_.prepare(
      "INSERT INTO auth_failures (scope, failures, last_failure, locked_until, interrupted) "
      "VALUES (?, ?, ?, ?, ?) ON CONFLICT(scope) DO UPDATE SET failures = excluded.failures, "
      "last_failure = excluded.last_failure, locked_until = excluded.locked_until, "
      "interrupted = excluded.interrupted");
  st.bind_all(scope, r.failures, r.last_failure, r.locked_until, r.interrupted);
  st.run();
}

void Throttle::settle_interrupted(const std::string& scope, const std::string& marker) {
  store::Transaction tx(db_);
  count_failure(scope, clock_.now(), Cause::interrupted);
  if (marker_field(marker, "audit") != "0") {
    audit::AuditEvent e{marker_field(marker, "login"),   marker_field(marker, "event"),
                        audit::outcome::kInterrupted,    marker_field(marker, "key"),
                        marker_field(marker, "session"), marker_field(marker, "addr"),
                        marker_field(marker, "detail")};
    if (e.event.empty())
      e.event = "attempt";
    if (!e.detail.empty())
      e.detail += ": ";
    std::string started = marker_field(marker, "started");
    e.detail += "the request ended before the check finished" +
                (started.empty() ? std::string() : " (started at " + started + ")") +
                "; counted as a failed attempt " + describe(scope);
    audit::AuditLog(db_, clock_).record(e);
  }
  tx.commit();
}

Result<Attempt> Throttle::begin(const std::vector<AttemptScope>& scopes,
                                const audit::AuditEvent& what, std::chrono::milliseconds wait) {
  if (lock_dir_.empty())
    throw std::logic_error("Throttle::begin needs the lock directory");
  WMK_TRY(util::ensure_private_dir(lock_dir_));
  const auto deadline = std::chrono::steady_clock::now() + wait;
  std::vector<Attempt::Slot> held;
  for (const auto& sc : scopes) {
    util::Fd fd;
    for (;;) {
      bool taken = false;
      for (int slot = 0; slot < std::max(sc.slots, 1) && !taken; ++slot) {
        auto t = try_take(slot_path(lock_dir_, sc.scope, slot), fd);
        if (!t)
          return t.error();
        taken = *t == Take::taken;
      }
      if (taken)
        break;
      if (std::chrono::steady_clock::now() >= deadline) {
        return make_error(Errc::busy, "another attempt " + describe(sc.scope) +
                                          " is being checked right now: try again in a moment");
      }
      std::this_thread::sleep_for(kSlotPoll);
    }
    held.push_back(Attempt::Slot{sc.scope, std::move(fd)});
  }
  // A marker left on a slot we now hold: its attempt's process died (the kernel freed
  // the lock) or gave up by an exception before finishing. It counts.
  for (auto& h : held) {
    std::string marker = read_marker(h.fd.get());
    if (!marker.empty()) {
      settle_interrupted(h.scope, marker);
      WMK_TRY(write_marker(h.fd.get(), ""));
    }
  }
  for (const auto& h : held)
    WMK_TRY(check(h.scope));
  const std::int64_t now = clock_.now();
  for (std::size_t i = 0; i < held.size(); ++i)
    WMK_TRY(write_marker(held[i].fd.get(), marker_text(what, i + 1 == held.size(), now)));
  return Attempt(*this, std::move(held));
}

void Attempt::clear_markers() {
  for (auto& s : slots_)
    (void)write_marker(s.fd.get(), "");
}

void Attempt::finish(Verdict verdict) {
  if (throttle_ == nullptr)
    return;
  Throttle& t = *throttle_;
  // The counts are written before the slots are freed, so the next attempt is judged
  // on this one's verdict.
  if (verdict != Verdict::not_tried && !slots_.empty()) {
    store::Transaction tx(t.db_);
    const std::int64_t now = t.clock_.now();
    for (const auto& s : slots_) {
      if (verdict == Verdict::right)
        t.record_success(s.scope);
      else
        t.count_failure(s.scope, now, Throttle::Cause::wrong);
    }
    tx.commit();
  }
  clear_markers();
  slots_.clear();
  throttle_ = nullptr;
}

void Throttle::record_failure(const std::string& scope) {
  store::Transaction tx(db_);
  count_failure(scope, clock_.now(), Cause::wrong);
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

std::uint32_t Throttle::interrupted(const std::string& scope) {
  auto row = read_row(db_, scope);
  return row ? static_cast<std::uint32_t>(row->interrupted) : 0;
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
  int removed = db_.changes();
  // Slot files unused for as long: free (lock taken without waiting), no marker.
  if (!lock_dir_.empty()) {
    if (DIR* dir = ::opendir(lock_dir_.c_str())) {
      std::vector<std::string> names;
      while (dirent* d = ::readdir(dir)) {
        if (d->d_name[0] != '.')
          names.emplace_back(d->d_name);
      }
      ::closedir(dir);
      for (const auto& name : names) {
        const std::string path = lock_dir_ + "/" + name;
        struct stat st_file {};
        if (::lstat(path.c_str(), &st_file) != 0 || !S_ISREG(st_file.st_mode) ||
            st_file.st_size != 0 || st_file.st_mtime > before)
          continue;
        util::Fd fd;
        auto t = try_take(path, fd);
        if (!t || *t != Take::taken || !read_marker(fd.get()).empty())
          continue;
        if (mode == store::PurgeMode::remove)
          ::unlink(path.c_str());
        ++removed;
      }
    }
  }
  return removed;
}

}  // namespace wmk::auth

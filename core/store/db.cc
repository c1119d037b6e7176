#include "core/store/db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "core/util/fs.h"

namespace wmk::store {

namespace {
constexpr std::chrono::milliseconds kBusyTimeout{10000};

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  throw StoreError(rc, msg);
}
}  // namespace

Statement::~Statement() {
  if (stmt_ != nullptr)
    sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK)
    fail(db_, rc, "bind");
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK)
    fail(db_, rc, "bind");
  return *this;
}

Statement& Statement::bind(int index, std::span<const std::uint8_t> blob) {
  // An empty span must still bind a zero-length blob, not NULL.
  static const std::uint8_t kEmpty = 0;
  const void* p = blob.empty() ? &kEmpty : blob.data();
  int rc = sqlite3_bind_blob64(stmt_, index, p, blob.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK)
    fail(db_, rc, "bind");
  return *this;
}

Statement& Statement::bind(int index, std::nullopt_t) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK)
    fail(db_, rc, "bind");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW)
    return true;
  if (rc == SQLITE_DONE)
    return false;
  fail(db_, rc, "database step failed");
}

Result<bool> Statement::try_step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW)
    return true;
  if (rc == SQLITE_DONE)
    return false;
  int primary = rc & 0xff;
  if (primary == SQLITE_CONSTRAINT) {
    return make_error(Errc::already_exists, sqlite3_errmsg(db_));
  }
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return make_error(Errc::conflict, "the database is busy; try again");
  }
  fail(db_, rc, "database step failed");
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::column_int(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

std::string Statement::column_text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr)
    return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::vector<std::uint8_t> Statement::column_blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr || n <= 0)
    return {};
  const auto* b = static_cast<const std::uint8_t*>(p);
  return std::vector<std::uint8_t>(b, b + n);
}

bool Statement::column_is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

std::optional<std::int64_t> Statement::column_optional_int(int col) const {
  if (column_is_null(col))
    return std::nullopt;
  return column_int(col);
}

std::optional<std::string> Statement::column_optional_text(int col) const {
  if (column_is_null(col))
    return std::nullopt;
  return column_text(col);
}

Result<Db> Db::open(const std::string& path, OpenMode mode) {
  if (mode == OpenMode::must_exist && !util::path_exists(path)) {
    return make_error(Errc::not_found, "no database at " + path + " (run `webmailkey init` first)");
  }
  if (mode == OpenMode::create_if_missing && !util::path_exists(path)) {
    // Create the file ourselves so it is owner-only from its first byte.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
      ::close(fd);
  }
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;
  if (mode == OpenMode::create_if_missing)
    flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return make_error(Errc::io, "cannot open database " + path + ": " + msg);
  }
  Db out(db);
  try {
    out.configure();
  } catch (const StoreError& e) {
    return make_error(Errc::io, "cannot configure database " + path + ": " + e.what());
  }
  return out;
}

Db Db::open_memory() {
  sqlite3* db = nullptr;
  int rc = sqlite3_open(":memory:", &db);
  if (rc != SQLITE_OK)
    fail(db, rc, "open :memory:");
  Db out(db);
  out.configure();
  return out;
}

void Db::configure() {
  sqlite3_busy_timeout(db_, static_cast<int>(kBusyTimeout.count()));
  sqlite3_extended_result_codes(db_, 1);
  exec(
      "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
      " PRAGMA synchronous=NORMAL;");
}

Db& Db::operator=(Db&& o) noexcept {
  if (this != &o) {
    if (db_ != nullptr)
      sqlite3_close_v2(db_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}

Db::~Db() {
  if (db_ != nullptr)
    sqlite3_close_v2(db_);
}

Statement Db::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK)
    fail(db_, rc, "prepare `" + std::string(sql) + "`");
  return Statement(db_, stmt);
}

void Db::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw StoreError(rc, "exec failed: " + msg);
  }
}

std::int64_t Db::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}
int Db::changes() const {
  return sqlite3_changes(db_);
}

Transaction::Transaction(Db& db, TxKind kind) : db_(db) {
  db_.exec(kind == TxKind::immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

Transaction::~Transaction() {
  if (!done_) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {
      // Nothing sensible to do in a destructor; SQLite rolls back on close anyway.
    }
  }
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace wmk::store

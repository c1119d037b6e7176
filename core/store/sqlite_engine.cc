// The SQLite engine: embedded, the default. Portable SQL is SQLite's own dialect, so
// nothing is translated here.

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "core/store/engine.h"
#include "core/util/fs.h"

namespace wmk::store::detail {

namespace {

constexpr std::chrono::milliseconds kBusyTimeout{10000};

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
  throw StoreError(std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

class SqliteStatement final : public StatementImpl {
 public:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }

  void bind_int(int index, std::int64_t value) override {
    check(sqlite3_bind_int64(stmt_, index, value));
  }
  void bind_text(int index, std::string_view text) override {
    check(
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  void bind_blob(int index, std::span<const std::uint8_t> blob) override {
    // An empty span must still bind a zero-length blob, not NULL.
    static const std::uint8_t kEmpty = 0;
    const void* p = blob.empty() ? &kEmpty : blob.data();
    check(sqlite3_bind_blob64(stmt_, index, p, blob.size(), SQLITE_TRANSIENT));
  }
  void bind_null(int index) override { check(sqlite3_bind_null(stmt_, index)); }

  Result<bool> step(bool) override {
    if (!sqlite3_stmt_busy(stmt_))
      check_no_open_read();
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc == SQLITE_DONE)
      return false;
    int primary = rc & 0xff;
    if (primary == SQLITE_CONSTRAINT)
      return make_error(Errc::already_exists, sqlite3_errmsg(db_));
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
      return make_error(Errc::conflict, "the database is busy; try again");
    fail(db_, rc, "database step failed");
  }
  void reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  std::int64_t column_int(int col) const override { return sqlite3_column_int64(stmt_, col); }
  std::string column_text(int col) const override {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr)
      return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::vector<std::uint8_t> column_blob(int col) const override {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    if (p == nullptr || n <= 0)
      return {};
    const auto* b = static_cast<const std::uint8_t*>(p);
    return std::vector<std::uint8_t>(b, b + n);
  }
  bool column_is_null(int col) const override {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }
  int column_count() const override { return sqlite3_column_count(stmt_); }
  std::string column_name(int col) const override {
    const char* n = sqlite3_column_name(stmt_, col);
    return n ? n : "";
  }
  ColumnKind column_kind(int col) const override {
    switch (sqlite3_column_type(stmt_, col)) {
      case SQLITE_NULL:
        return ColumnKind::null;
      case SQLITE_INTEGER:
        return ColumnKind::integer;
      case SQLITE_TEXT:
        return ColumnKind::text;
      case SQLITE_BLOB:
        return ColumnKind::blob;
      default:
        return ColumnKind::other;
    }
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK)
      fail(db_, rc, "bind");
  }
  // A write outside a transaction while a read on the same connection is still open
  // upgrades the read's snapshot to a write. In WAL mode SQLite refuses that at once,
  // without waiting, whenever another process wrote since the read began (busy
  // snapshot), so the code works alone and fails under load. Refuse it every time
  // instead, so the tests find it: finish or reset the read first.
  void check_no_open_read() {
    if (sqlite3_stmt_readonly(stmt_) || !sqlite3_get_autocommit(db_))
      return;
    for (sqlite3_stmt* s = sqlite3_next_stmt(db_, nullptr); s != nullptr;
         s = sqlite3_next_stmt(db_, s)) {
      if (s != stmt_ && sqlite3_stmt_busy(s) && sqlite3_stmt_readonly(s)) {
        const char* read = sqlite3_sql(s);
        throw StoreError(std::string("a write while a read is still open on the connection "
                                     "(finish or reset the read first); the read: ") +
                         (read ? read : "?"));
      }
    }
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override { sqlite3_close_v2(db_); }

  void configure() {
    sqlite3_busy_timeout(db_, static_cast<int>(kBusyTimeout.count()));
    sqlite3_extended_result_codes(db_, 1);
    exec(
        "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
        " PRAGMA synchronous=NORMAL;");
  }

  Engine engine() const override { return Engine::sqlite; }

  std::unique_ptr<StatementImpl> prepare(std::string_view sql) override {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK)
      fail(db_, rc, "prepare `" + std::string(sql) + "`");
    return std::make_unique<SqliteStatement>(db_, stmt);
  }

  void exec(std::string_view sql) override {
    std::string s(sql);
    char* err = nullptr;
    int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      throw StoreError("exec failed: " + msg);
    }
  }

  int changes() const override { return sqlite3_changes(db_); }

  void begin(TxKind kind) override {
    exec(kind == TxKind::immediate ? "BEGIN IMMEDIATE" : "BEGIN");
  }
  void commit() override { exec("COMMIT"); }
  void rollback() override { exec("ROLLBACK"); }

  int schema_version() override {
    auto st = prepare("PRAGMA user_version");
    (void)st->step(false);
    return static_cast<int>(st->column_int(0));
  }
  void set_schema_version(int version) override {
    exec("PRAGMA user_version = " + std::to_string(version));
  }
  void before_first_migration() override {}
  void defer_foreign_keys() override { exec("PRAGMA defer_foreign_keys = ON"); }

  void scrub_deleted() override {
    // Deleted rows are zeroed in the database file (secure_delete), but earlier copies
    // of their pages stay in the WAL until a checkpoint truncates it.
    try {
      exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch (const StoreError&) {
      // Busy: nothing is lost, the bytes go at the next checkpoint.
    }
  }

  std::vector<std::string> tables() override {
    auto st = prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY rowid");
    std::vector<std::string> out;
    while (*st->step(false))
      out.push_back(st->column_text(0));
    return out;
  }
  void resync_generated_ids(const std::string&) override {
    // INTEGER PRIMARY KEY continues after the largest rowid by itself.
  }
  Result<void> revive() override { return {}; }  // a file: nothing to reconnect

 private:
  sqlite3* db_;
};

}  // namespace

Result<std::unique_ptr<Connection>> open_sqlite(const std::string& path, OpenMode mode) {
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
  auto conn = std::make_unique<SqliteConnection>(db);
  try {
    conn->configure();
  } catch (const StoreError& e) {
    return make_error(Errc::io, "cannot configure database " + path + ": " + e.what());
  }
  return std::unique_ptr<Connection>(std::move(conn));
}

std::unique_ptr<Connection> open_sqlite_memory() {
  sqlite3* db = nullptr;
  int rc = sqlite3_open(":memory:", &db);
  if (rc != SQLITE_OK) {
    sqlite3_close(db);
    fail(nullptr, rc, "open :memory:");
  }
  auto conn = std::make_unique<SqliteConnection>(db);
  conn->configure();
  return conn;
}

}  // namespace wmk::store::detail

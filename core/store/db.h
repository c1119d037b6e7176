#pragma once
// SQLite access: one owning type per handle (Db, Statement), transactions as RAII.
// Every connection runs in WAL mode with a busy timeout, foreign keys on and
// secure_delete on (deleted rows, such as revoked grants, leave no bytes behind).
//
// SQL errors that mean a bug or a broken disk throw StoreError; the expected ones
// (a UNIQUE constraint lost to a concurrent writer) come back through try_step().

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace wmk::store {

class StoreError : public std::runtime_error {
 public:
  StoreError(int sqlite_code, const std::string& what)
      : std::runtime_error(what), sqlite_code_(sqlite_code) {}
  int sqlite_code() const { return sqlite_code_; }

 private:
  int sqlite_code_;
};

class Statement {
 public:
  Statement(Statement&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const std::string& text) {
    return bind(index, std::string_view(text));
  }
  Statement& bind(int index, std::span<const std::uint8_t> blob);
  Statement& bind(int index, const std::vector<std::uint8_t>& blob) {
    return bind(index, std::span<const std::uint8_t>(blob));
  }
  Statement& bind(int index, std::nullopt_t);
  template <class T>
  Statement& bind(int index, const std::optional<T>& v) {
    return v ? bind(index, *v) : bind(index, std::nullopt);
  }
  // Binds args to parameters 1..N in order.
  template <class... Args>
  Statement& bind_all(const Args&... args) {
    int i = 0;
    (bind(++i, args), ...);
    return *this;
  }

  // Advances: true when a row is ready, false when done. Throws StoreError on failure.
  bool step();
  // Like step(), but a constraint violation is Errc::already_exists and a lock that
  // outlasted the busy timeout is Errc::conflict.
  Result<bool> try_step();
  // Runs to completion, discarding rows.
  void run();
  void reset();

  std::int64_t column_int(int col) const;
  std::string column_text(int col) const;
  std::vector<std::uint8_t> column_blob(int col) const;
  bool column_is_null(int col) const;
  std::optional<std::int64_t> column_optional_int(int col) const;
  std::optional<std::string> column_optional_text(int col) const;

 private:
  friend class Db;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

enum class OpenMode { create_if_missing, must_exist };

class Db {
 public:
  // Opens (or creates) the database at path with the connection settings above.
  // A new file is created with mode 0600. Errc::not_found if must_exist and missing.
  static Result<Db> open(const std::string& path, OpenMode mode);
  // An in-memory database, for unit tests.
  static Db open_memory();

  Db(Db&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Db& operator=(Db&& o) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Throws StoreError if the SQL does not compile (a bug).
  Statement prepare(std::string_view sql);
  // Runs one or more statements with no parameters.
  void exec(std::string_view sql);
  std::int64_t last_insert_rowid() const;
  // Rows changed by the last statement.
  int changes() const;
  sqlite3* handle() { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  void configure();
  sqlite3* db_;
};

enum class TxKind { deferred, immediate };

// BEGIN on construction; ROLLBACK on destruction unless commit() ran.
// Use immediate for read-modify-write so the write lock is taken up front.
class Transaction {
 public:
  explicit Transaction(Db& db, TxKind kind = TxKind::immediate);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace wmk::store

#pragma once
// The store: one interface (Db, Statement, Transaction) over two engines, each in its
// own file: SQLite (sqlite_engine.cc, embedded, the default) and PostgreSQL through
// libpq (postgres_engine.cc). Callers write SQL in the portable subset both engines
// accept: `?` or `?N` parameters, INTEGER, TEXT and BLOB columns, INTEGER PRIMARY KEY
// for generated ids (read back with RETURNING id), ON CONFLICT ... DO UPDATE for
// upserts, COLLATE NOCASE for case-insensitive addresses. The PostgreSQL engine
// translates what differs (docs/architecture.md, "Store").
//
// SQLite connections run in WAL mode with a busy timeout, foreign keys on and
// secure_delete on (deleted rows, such as revoked grants, leave no bytes behind).
// Writers run one at a time on both engines: SQLite's BEGIN IMMEDIATE, and on
// PostgreSQL a transaction-scoped advisory lock taken by every writing transaction.
//
// SQL errors that mean a bug or a broken disk throw StoreError; a database server that
// cannot be reached, or that went away in the middle of a request, throws
// StoreUnavailable (a StoreError), which the entry points answer with "try again
// later" (HTTP 503, or the CLI's exit status 1) and after which Db::revive() connects
// again. The expected errors (a UNIQUE constraint lost to a concurrent writer) come
// back through try_step().

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/result.h"

namespace wmk::store {

enum class Engine { sqlite, postgresql };

// What a result column holds: on SQLite the current value's storage class, on
// PostgreSQL the column's type (known even before the first row).
enum class ColumnKind { null, integer, text, blob, other };

// "sqlite" or "postgresql".
const char* engine_name(Engine e);

class StoreError : public std::runtime_error {
 public:
  explicit StoreError(const std::string& what) : std::runtime_error(what) {}
};

// The database server cannot be reached (it stopped, restarted or the network broke).
// what(): "the database at DESCRIPTION is unreachable: REASON", never a password.
// Nothing of the request's open transaction was committed (but see
// StoreOutcomeUnknown).
class StoreUnavailable : public StoreError {
 public:
  explicit StoreUnavailable(const std::string& what) : StoreError(what) {}
};

// The connection was lost at COMMIT: the server may or may not have committed before
// it went, so nobody can say whether the change was saved. Never retried by itself.
class StoreOutcomeUnknown : public StoreUnavailable {
 public:
  using StoreUnavailable::StoreUnavailable;
};

namespace detail {
class StatementImpl;
class Connection;
}  // namespace detail

class Statement {
 public:
  explicit Statement(std::unique_ptr<detail::StatementImpl> impl);
  Statement(Statement&& o) noexcept;
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
  // outlasted the busy timeout (or a serialization failure) is Errc::conflict. The
  // caller's transaction stays usable after either.
  Result<bool> try_step();
  // Runs to completion, discarding rows.
  void run();
  // Ready to run again; the bindings are cleared.
  void reset();

  std::int64_t column_int(int col) const;
  std::string column_text(int col) const;
  std::vector<std::uint8_t> column_blob(int col) const;
  bool column_is_null(int col) const;
  std::optional<std::int64_t> column_optional_int(int col) const;
  std::optional<std::string> column_optional_text(int col) const;
  int column_count() const;
  std::string column_name(int col) const;
  ColumnKind column_kind(int col) const;

 private:
  std::unique_ptr<detail::StatementImpl> impl_;
};

enum class OpenMode { create_if_missing, must_exist };

class Db {
 public:
  // Opens (or creates) the SQLite database at path with the connection settings above.
  // A new file is created with mode 0600. Errc::not_found if must_exist and missing.
  static Result<Db> open(const std::string& path, OpenMode mode);
  // An in-memory SQLite database, for unit tests.
  static Db open_memory();
  // Connects to PostgreSQL with a libpq connection string ("host=... dbname=...").
  // The string may hold a password: it is never put in an error message.
  static Result<Db> open_postgresql(const std::string& conninfo);

  explicit Db(std::unique_ptr<detail::Connection> conn);
  Db(Db&& o) noexcept;
  Db& operator=(Db&& o) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  Engine engine() const;

  // Checks, without a round trip, that the connection still stands (PostgreSQL: reads
  // what the server sent meanwhile, such as its shutdown notice) and connects again
  // when it does not: what a process that keeps its Db between requests (a FastCGI
  // worker) calls before each one. Errc::unavailable, saying where and why, while the
  // server cannot be reached; then the next call tries again. SQLite: always ok.
  Result<void> revive();

  // Throws StoreError if the SQL does not compile (a bug).
  Statement prepare(std::string_view sql);
  // Runs one or more statements with no parameters.
  void exec(std::string_view sql);
  // Rows changed by the last statement.
  int changes() const;

  // The schema version the database is at (0: empty); set inside a transaction.
  int schema_version();
  void set_schema_version(int version);
  // Foreign keys are checked at commit, not at each statement, for the rest of the
  // current transaction.
  void defer_foreign_keys();
  // Best effort: pushes deleted rows' bytes out of logs the engine keeps beside the
  // tables (SQLite's WAL). Never throws.
  void scrub_deleted();
  // The names of the tables the migrations made, in creation order.
  std::vector<std::string> tables();
  // After rows were copied in with their ids: the next generated id follows the largest.
  void resync_generated_ids(const std::string& table);

  detail::Connection& connection() { return *conn_; }

 private:
  std::unique_ptr<detail::Connection> conn_;
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

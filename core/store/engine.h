#pragma once
// What each store engine implements (sqlite_engine.cc, postgres_engine.cc). Only
// core/store uses this header; everything else goes through Db and Statement.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/store/db.h"
#include "core/util/result.h"

namespace wmk::store::detail {

class StatementImpl {
 public:
  virtual ~StatementImpl() = default;
  virtual void bind_int(int index, std::int64_t value) = 0;
  virtual void bind_text(int index, std::string_view text) = 0;
  virtual void bind_blob(int index, std::span<const std::uint8_t> blob) = 0;
  virtual void bind_null(int index) = 0;
  // true: a row; false: done. Expected failures (constraint, busy) as errors;
  // everything else throws StoreError. recoverable: the caller goes on in its
  // transaction after an expected failure (try_step), so the engine must keep the
  // transaction usable.
  virtual Result<bool> step(bool recoverable) = 0;
  virtual void reset() = 0;
  virtual std::int64_t column_int(int col) const = 0;
  virtual std::string column_text(int col) const = 0;
  virtual std::vector<std::uint8_t> column_blob(int col) const = 0;
  virtual bool column_is_null(int col) const = 0;
  virtual int column_count() const = 0;
  virtual std::string column_name(int col) const = 0;
  virtual ColumnKind column_kind(int col) const = 0;
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Engine engine() const = 0;
  virtual std::unique_ptr<StatementImpl> prepare(std::string_view sql) = 0;
  virtual void exec(std::string_view sql) = 0;
  virtual int changes() const = 0;
  virtual void begin(TxKind kind) = 0;
  virtual void commit() = 0;
  virtual void rollback() = 0;
  virtual int schema_version() = 0;
  virtual void set_schema_version(int version) = 0;
  // Runs inside the transaction of the first migration (PostgreSQL: the collation
  // COLLATE NOCASE stands for, and the version table).
  virtual void before_first_migration() = 0;
  virtual void defer_foreign_keys() = 0;
  virtual void scrub_deleted() = 0;
  virtual std::vector<std::string> tables() = 0;
  virtual void resync_generated_ids(const std::string& table) = 0;
  // See Db::revive().
  virtual Result<void> revive() = 0;
};

Result<std::unique_ptr<Connection>> open_sqlite(const std::string& path, OpenMode mode);
std::unique_ptr<Connection> open_sqlite_memory();
Result<std::unique_ptr<Connection>> open_postgres(const std::string& conninfo);

// The PostgreSQL spelling of portable SQL (exposed for its unit test).
std::string postgres_sql(std::string_view sql);

}  // namespace wmk::store::detail

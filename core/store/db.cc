#include "core/store/db.h"

#include "core/store/engine.h"

namespace wmk::store {

const char* engine_name(Engine e) {
  return e == Engine::postgresql ? "postgresql" : "sqlite";
}

Statement::Statement(std::unique_ptr<detail::StatementImpl> impl) : impl_(std::move(impl)) {}
Statement::Statement(Statement&& o) noexcept = default;
Statement::~Statement() = default;

Statement& Statement::bind(int index, std::int64_t value) {
  impl_->bind_int(index, value);
  return *this;
}
Statement& Statement::bind(int index, std::string_view text) {
  impl_->bind_text(index, text);
  return *this;
}
Statement& Statement::bind(int index, std::span<const std::uint8_t> blob) {
  impl_->bind_blob(index, blob);
  return *this;
}
Statement& Statement::bind(int index, std::nullopt_t) {
  impl_->bind_null(index);
  return *this;
}

bool Statement::step() {
  auto r = impl_->step(false);
  if (!r)
    throw StoreError("database step failed: " + r.error().message);
  return *r;
}

Result<bool> Statement::try_step() {
  return impl_->step(true);
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() {
  impl_->reset();
}

std::int64_t Statement::column_int(int col) const {
  return impl_->column_int(col);
}
std::string Statement::column_text(int col) const {
  return impl_->column_text(col);
}
std::vector<std::uint8_t> Statement::column_blob(int col) const {
  return impl_->column_blob(col);
}
bool Statement::column_is_null(int col) const {
  return impl_->column_is_null(col);
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

int Statement::column_count() const {
  return impl_->column_count();
}
std::string Statement::column_name(int col) const {
  return impl_->column_name(col);
}
ColumnKind Statement::column_kind(int col) const {
  return impl_->column_kind(col);
}

Result<Db> Db::open(const std::string& path, OpenMode mode) {
  auto conn = detail::open_sqlite(path, mode);
  if (!conn)
    return conn.error();
  return Db(std::move(conn).value());
}

Db Db::open_memory() {
  return Db(detail::open_sqlite_memory());
}

Result<Db> Db::open_postgresql(const std::string& conninfo) {
  auto conn = detail::open_postgres(conninfo);
  if (!conn)
    return conn.error();
  return Db(std::move(conn).value());
}

Db::Db(std::unique_ptr<detail::Connection> conn) : conn_(std::move(conn)) {}
Db::Db(Db&& o) noexcept = default;
Db& Db::operator=(Db&& o) noexcept = default;
Db::~Db() = default;

Engine Db::engine() const {
  return conn_->engine();
}
Result<void> Db::revive() {
  return conn_->revive();
}
Statement Db::prepare(std::string_view sql) {
  return Statement(conn_->prepare(sql));
}
void Db::exec(std::string_view sql) {
  conn_->exec(sql);
}
int Db::changes() const {
  return conn_->changes();
}
int Db::schema_version() {
  return conn_->schema_version();
}
void Db::set_schema_version(int version) {
  conn_->set_schema_version(version);
}
void Db::defer_foreign_keys() {
  conn_->defer_foreign_keys();
}
void Db::scrub_deleted() {
  conn_->scrub_deleted();
}
std::vector<std::string> Db::tables() {
  return conn_->tables();
}
void Db::resync_generated_ids(const std::string& table) {
  conn_->resync_generated_ids(table);
}

Transaction::Transaction(Db& db, TxKind kind) : db_(db) {
  db_.connection().begin(kind);
}

Transaction::~Transaction() {
  if (!done_) {
    try {
      db_.connection().rollback();
    } catch (...) {
      // Nothing sensible to do in a destructor; both engines roll back on close anyway.
    }
  }
}

void Transaction::commit() {
  db_.connection().commit();
  done_ = true;
}

}  // namespace wmk::store

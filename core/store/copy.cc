#include "core/store/copy.h"

#include <algorithm>
#include <set>

#include "core/store/schema.h"
#include "core/util/encoding.h"

namespace wmk::store {

namespace {

// One row in a form both engines give alike: text and blob are both bytes (a SQLite
// value's storage class may differ from its column's declared type).
std::string canonical_row(const Statement& st) {
  std::string out;
  for (int c = 0; c < st.column_count(); ++c) {
    if (st.column_is_null(c)) {
      out += "n;";
      continue;
    }
    switch (st.column_kind(c)) {
      case ColumnKind::integer:
        out += "i" + std::to_string(st.column_int(c)) + ";";
        break;
      case ColumnKind::text:
      case ColumnKind::blob: {
        auto b = st.column_blob(c);
        out += "b" + std::to_string(b.size()) + ":";
        out.append(b.begin(), b.end());
        out += ";";
        break;
      }
      default:
        throw StoreError("column " + st.column_name(c) + " has a type the copy does not know");
    }
  }
  return out;
}

TableCopy checksum_of(Db& db, const std::string& table) {
  TableCopy t;
  t.table = table;
  auto st = db.prepare("SELECT * FROM " + table);
  std::vector<std::string> digests;
  while (st.step())
    digests.push_back(util::sha256_hex(canonical_row(st)));
  std::sort(digests.begin(), digests.end());
  std::string all;
  for (const auto& d : digests)
    all += d;
  t.rows = static_cast<std::int64_t>(digests.size());
  t.checksum = util::sha256_hex(all);
  return t;
}

std::int64_t count_rows(Db& db, const std::string& table) {
  auto st = db.prepare("SELECT count(*) FROM " + table);
  st.step();
  return st.column_int(0);
}

void copy_table(Db& from, Db& to, const std::string& table) {
  // The target's column types decide how a value is bound (a SQLite TEXT value in a
  // BLOB column goes to bytea as bytes).
  auto shape = to.prepare("SELECT * FROM " + table + " WHERE 1 = 0");
  (void)shape.step();
  auto src = from.prepare("SELECT * FROM " + table);
  std::optional<Statement> ins;
  std::vector<ColumnKind> target_kind;
  while (src.step()) {
    const int n = src.column_count();
    if (!ins) {
      std::string cols, marks;
      for (int c = 0; c < n; ++c) {
        cols += (c ? ", " : "") + src.column_name(c);
        marks += c ? ", ?" : "?";
        target_kind.push_back(to.engine() == Engine::postgresql ? shape.column_kind(c)
                                                                : ColumnKind::other);
      }
      ins.emplace(to.prepare("INSERT INTO " + table + " (" + cols + ") VALUES (" + marks + ")"));
    }
    ins->reset();
    for (int c = 0; c < n; ++c) {
      const int p = c + 1;
      if (src.column_is_null(c)) {
        ins->bind(p, std::nullopt);
        continue;
      }
      const ColumnKind kind =
          target_kind[c] == ColumnKind::other ? src.column_kind(c) : target_kind[c];
      switch (kind) {
        case ColumnKind::integer:
          ins->bind(p, src.column_int(c));
          break;
        case ColumnKind::text:
          ins->bind(p, src.column_text(c));
          break;
        case ColumnKind::blob:
          ins->bind(p, src.column_blob(c));
          break;
        default:
          throw StoreError("column " + src.column_name(c) + " of " + table +
                           " has a type the copy does not know");
      }
    }
    ins->run();
  }
}

}  // namespace

std::vector<TableCopy> table_checksums(Db& db) {
  std::vector<TableCopy> out;
  for (const auto& t : db.tables())
    out.push_back(checksum_of(db, t));
  return out;
}

Result<CopyReport> copy_store(Db& from, Db& to) {
  WMK_TRY(check_schema(from));
  WMK_TRY(migrate(to));
  const auto tables = from.tables();
  {
    auto target_tables = to.tables();
    if (std::set<std::string>(tables.begin(), tables.end()) !=
        std::set<std::string>(target_tables.begin(), target_tables.end()))
      return make_error(Errc::corrupt, "the two stores' tables differ at the same schema version");
  }
  for (const auto& t : tables) {
    if (auto n = count_rows(to, t); n > 0) {
      return make_error(Errc::already_exists, "the target store is not empty (" + t + " has " +
                                                  std::to_string(n) + " rows): nothing was copied");
    }
  }
  CopyReport report;
  report.schema_version = schema_version(from);
  try {
    Transaction read(from, TxKind::deferred);  // one snapshot of the source
    Transaction write(to);
    to.defer_foreign_keys();
    for (const auto& t : tables) {
      copy_table(from, to, t);
      to.resync_generated_ids(t);
    }
    for (const auto& t : tables) {
      TableCopy source = checksum_of(from, t);
      TableCopy target = checksum_of(to, t);
      if (source.rows != target.rows || source.checksum != target.checksum) {
        return make_error(Errc::corrupt, "the copy of " + t + " differs from its source (" +
                                             std::to_string(source.rows) + " rows, " +
                                             std::to_string(target.rows) +
                                             " copied): nothing was copied");
      }
      report.tables.push_back(std::move(source));
    }
    write.commit();
  } catch (const StoreError& e) {
    return make_error(Errc::io, std::string("the copy failed, nothing was copied: ") + e.what());
  }
  return report;
}

}  // namespace wmk::store

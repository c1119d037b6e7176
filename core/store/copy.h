#pragma once
// Copies a whole store from one engine to another (`webmailkey store migrate`):
// every table, in one transaction on the target, checked before it commits.

#include <cstdint>
#include <string>
#include <vector>

#include "core/store/db.h"
#include "core/util/result.h"

namespace wmk::store {

struct TableCopy {
  std::string table;
  std::int64_t rows = 0;
  // SHA-256 over the table's rows (order-independent), the same on both engines.
  std::string checksum;
};

struct CopyReport {
  int schema_version = 0;
  std::vector<TableCopy> tables;
};

// The rows and checksum of each table of db, for checking a copy.
std::vector<TableCopy> table_checksums(Db& db);

// Migrates `to` to the schema `from` is at (which must be this build's), refuses it
// if any of its tables holds a row (Errc::already_exists), then copies every row of
// every table inside one transaction on `to`, reading `from` in one snapshot. Before
// committing it compares each table's row count and checksum on both sides; a
// mismatch (Errc::corrupt) or any failure rolls the target back, and `from` is only
// ever read. A copy killed midway leaves the target's tables empty.
Result<CopyReport> copy_store(Db& from, Db& to);

}  // namespace wmk::store

#pragma once
// Versioned schema migrations. `webmailkey init` applies them; every other open
// checks that the database is at the version this build expects.

#include "core/store/db.h"
#include "core/util/result.h"

namespace wmk::store {

// The schema version this build writes and expects.
int latest_schema_version();

// The database's current version (SQLite: PRAGMA user_version; PostgreSQL: a table).
int schema_version(Db& db);

// Applies every pending migration, each in its own transaction. Safe to run again.
// Errc::unsupported if the database is newer than this build.
Status migrate(Db& db);

// Errc::config if the database needs migrating ("run webmailkey init"), or
// Errc::unsupported if it is newer than this build.
Status check_schema(Db& db);

}  // namespace wmk::store

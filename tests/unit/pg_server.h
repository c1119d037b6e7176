#pragma once
// A real PostgreSQL server for the unit tests that run on both store engines: Debian's
// initdb and pg_ctl make a throwaway cluster in a temporary directory, listening only
// on a Unix socket in that directory, with its own config. It starts at the first test
// that needs it and stops when the test program exits; the server is the program's
// child with a parent-death signal, so a crashed run leaves none behind. PostgreSQL
// refuses to run as root, so under uid 0 the cluster belongs to, and the server runs
// as, `nobody`.

#include <gtest/gtest.h>

#include <sys/types.h>

#include <optional>
#include <string>

#include "core/store/db.h"
#include "core/util/result.h"

namespace wmk::test {

class PgServer {
 public:
  // The shared server, started on first use. Errc::unsupported when the PostgreSQL
  // server binaries are not installed (scripts/setup installs them); any other
  // error means they are there but the server did not start.
  static Result<PgServer*> shared();

  // A new, empty database in the server; its connection string.
  Result<std::string> create_database();

  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;
  ~PgServer();

  std::string conninfo(const std::string& dbname) const;

 private:
  PgServer() = default;
  Status start();

  std::string bin_;
  std::string dir_;
  pid_t pid_ = -1;
  bool running_ = false;
  int next_db_ = 0;
};

// Both engines, for INSTANTIATE_TEST_SUITE_P.
inline std::string engine_test_name(const ::testing::TestParamInfo<store::Engine>& info) {
  return store::engine_name(info.param);
}

// A fresh database of the engine: SQLite at sqlite_path, or a new database in the
// shared PostgreSQL server. open() opens another connection to the same database.
struct TestDatabase {
  store::Engine engine = store::Engine::sqlite;
  std::string sqlite_path;
  std::string conninfo;

  Result<store::Db> open() const;
};

// GTEST_SKIP() when PostgreSQL is not installed (with the reason); fails the test if
// it is but does not start.
#define WMK_NEW_TEST_DATABASE(out, engine, sqlite_path)                     \
  do {                                                                      \
    auto wmk_db_ = ::wmk::test::new_test_database((engine), (sqlite_path)); \
    if (!wmk_db_ && wmk_db_.code() == ::wmk::Errc::unsupported)             \
      GTEST_SKIP() << wmk_db_.error().message;                              \
    ASSERT_TRUE(wmk_db_.ok()) << wmk_db_.error().message;                   \
    (out) = std::move(wmk_db_).value();                                     \
  } while (0)

Result<TestDatabase> new_test_database(store::Engine engine, const std::string& sqlite_path);

}  // namespace wmk::test

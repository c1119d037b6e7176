#include "core/store/db.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/store/schema.h"
#include "tests/unit/test_util.h"

namespace wmk::store {

TEST(Store, MigratesToLatestAndIsIdempotent) {
  Db db = Db::open_memory();
  EXPECT_EQ(schema_version(db), 0);
  EXPECT_EQ(check_schema(db).code(), Errc::config);
  ASSERT_TRUE(migrate(db).ok());
  EXPECT_EQ(schema_version(db), latest_schema_version());
  ASSERT_TRUE(migrate(db).ok());
  EXPECT_TRUE(check_schema(db).ok());
}

TEST(Store, RefusesNewerSchema) {
  Db db = Db::open_memory();
  ASSERT_TRUE(migrate(db).ok());
  db.exec("PRAGMA user_version = 999");
  EXPECT_EQ(check_schema(db).code(), Errc::unsupported);
  EXPECT_EQ(migrate(db).code(), Errc::unsupported);
}

TEST(Store, FileIsOwnerOnlyAndWal) {
  test::TempDir dir;
  auto path = dir.path() + "/w.db";
  auto db = Db::open(path, OpenMode::create_if_missing);
  ASSERT_TRUE(db.ok()) << db.error().message;
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto s = db->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.column_text(0), "wal");
  auto fk = db->prepare("PRAGMA foreign_keys");
  ASSERT_TRUE(fk.step());
  EXPECT_EQ(fk.column_int(0), 1);
  auto sd = db->prepare("PRAGMA secure_delete");
  ASSERT_TRUE(sd.step());
  EXPECT_EQ(sd.column_int(0), 1);
}

TEST(Store, MustExistRefusesMissingFile) {
  test::TempDir dir;
  auto db = Db::open(dir.path() + "/missing.db", OpenMode::must_exist);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.code(), Errc::not_found);
}

TEST(Store, TransactionRollsBackUnlessCommitted) {
  Db db = Db::open_memory();
  db.exec("CREATE TABLE t (x INTEGER UNIQUE)");
  {
    Transaction tx(db);
    db.prepare("INSERT INTO t VALUES (1)").run();
  }
  auto count = [&] {
    auto s = db.prepare("SELECT count(*) FROM t");
    s.step();
    return s.column_int(0);
  };
  EXPECT_EQ(count(), 0);
  {
    Transaction tx(db);
    db.prepare("INSERT INTO t VALUES (1)").run();
    tx.commit();
  }
  EXPECT_EQ(count(), 1);
  auto dup = db.prepare("INSERT INTO t VALUES (1)");
  auto r = dup.try_step();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::already_exists);
}

}  // namespace wmk::store

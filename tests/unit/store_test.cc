#include "core/store/db.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <thread>

#include "core/store/copy.h"
#include "core/store/engine.h"
#include "core/store/schema.h"
#include "tests/unit/db_fixture.h"
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
  db.set_schema_version(999);
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

// SQLite in WAL mode: a write outside a transaction while a read on the same
// connection is open upgrades the read's snapshot, and fails at once (no busy wait)
// if another connection wrote meanwhile. The engine refuses such a write every time,
// so the mistake shows in tests instead of under load (the admin-guide walkthrough
// once met it: `key export` against Postfix delivering through `webmailkey deliver`).
TEST(Store, AWriteWhileAReadIsOpenIsRefusedEveryTime) {
  test::TempDir dir;
  auto path = dir.path() + "/r.db";
  auto a = Db::open(path, OpenMode::create_if_missing);
  ASSERT_TRUE(a.ok()) << a.error().message;
  a->exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);");
  auto b = Db::open(path, OpenMode::must_exist);
  ASSERT_TRUE(b.ok());

  auto read = a->prepare("SELECT x FROM t");
  ASSERT_TRUE(read.step());
  b->prepare("INSERT INTO t VALUES (3)").run();  // another writer, meanwhile
  try {
    a->prepare("INSERT INTO t VALUES (4)").run();
    ADD_FAILURE() << "a write with a read open was allowed";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("SELECT x FROM t"), std::string::npos) << e.what();
  }
  // Without the other writer it is refused too: the mistake does not hide.
  read.reset();
  ASSERT_TRUE(read.step());
  EXPECT_THROW(a->prepare("INSERT INTO t VALUES (5)").run(), StoreError);
  // Once the read is over the same write goes through, and one inside a transaction
  // is the transaction's business (BEGIN IMMEDIATE takes the lock up front).
  read.reset();
  a->prepare("INSERT INTO t VALUES (6)").run();
  {
    Transaction tx(*a);
    auto r = a->prepare("SELECT count(*) FROM t");
    ASSERT_TRUE(r.step());
    EXPECT_EQ(r.column_int(0), 4);
    a->prepare("INSERT INTO t VALUES (7)").run();
    r.reset();
    tx.commit();
  }
  auto n = b->prepare("SELECT count(*) FROM t");
  ASSERT_TRUE(n.step());
  EXPECT_EQ(n.column_int(0), 5);
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

// ---- both engines (tests/unit/pg_server.h starts the PostgreSQL one)

namespace wmk::store {
namespace {

class EngineTest : public test::DbTest {};

std::int64_t count(Db& db, const std::string& sql) {
  auto st = db.prepare(sql);
  EXPECT_TRUE(st.step());
  return st.column_int(0);
}

TEST_P(EngineTest, MigratesOnceAndRefusesNewerSchema) {
  EXPECT_EQ(schema_version(*db), latest_schema_version());
  EXPECT_EQ(db->engine(), GetParam());
  ASSERT_TRUE(migrate(*db).ok());
  EXPECT_TRUE(check_schema(*db).ok());
  {
    Transaction tx(*db);
    db->set_schema_version(999);
    tx.commit();
  }
  EXPECT_EQ(check_schema(*db).code(), Errc::unsupported);
  EXPECT_EQ(migrate(*db).code(), Errc::unsupported);
}

TEST_P(EngineTest, ValuesRoundTripExactly) {
  db->exec("CREATE TABLE v (id INTEGER PRIMARY KEY, i INTEGER, t TEXT, b BLOB)");
  const std::int64_t big = 1'700'000'000'123'456'789;
  const std::vector<std::uint8_t> bytes{0, 1, 0xff, 0, '\\', 'x', 0x80};
  auto ins = db->prepare("INSERT INTO v (i, t, b) VALUES (?, ?, ?) RETURNING id");
  ins.bind_all(big, std::string("gr\xc3\xbc\xc3\x9f 'quoted' ?"), bytes);
  ASSERT_TRUE(ins.step());
  const std::int64_t first = ins.column_int(0);
  ins.reset();
  ins.bind(1, -1).bind(2, std::nullopt).bind(3, std::vector<std::uint8_t>{});
  ASSERT_TRUE(ins.step());
  EXPECT_EQ(ins.column_int(0), first + 1);
  EXPECT_EQ(db->changes(), 1);

  auto st = db->prepare("SELECT i, t, b FROM v WHERE id = ?1 OR id = ?1 + 1 ORDER BY id");
  st.bind(1, first);
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.column_int(0), big);
  EXPECT_EQ(st.column_text(1), "gr\xc3\xbc\xc3\x9f 'quoted' ?");
  EXPECT_EQ(st.column_blob(2), bytes);
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.column_int(0), -1);
  EXPECT_TRUE(st.column_is_null(1));
  EXPECT_FALSE(st.column_optional_text(1));
  EXPECT_FALSE(st.column_is_null(2));  // an empty blob is not NULL
  EXPECT_TRUE(st.column_blob(2).empty());
  EXPECT_FALSE(st.step());

  db->prepare("UPDATE v SET i = i + 1").run();
  EXPECT_EQ(db->changes(), 2);
}

TEST_P(EngineTest, TransactionRollsBackUnlessCommittedAndSurvivesALostConstraint) {
  db->exec("CREATE TABLE t (x INTEGER UNIQUE)");
  {
    Transaction tx(*db);
    db->prepare("INSERT INTO t VALUES (1)").run();
  }
  EXPECT_EQ(count(*db, "SELECT count(*) FROM t"), 0);
  {
    Transaction tx(*db);
    db->prepare("INSERT INTO t VALUES (1)").run();
    // A constraint lost inside a transaction leaves the transaction usable.
    auto dup = db->prepare("INSERT INTO t VALUES (?)");
    dup.bind(1, 1);
    auto r = dup.try_step();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.code(), Errc::already_exists);
    db->prepare("INSERT INTO t VALUES (2)").run();
    tx.commit();
  }
  EXPECT_EQ(count(*db, "SELECT count(*) FROM t"), 2);
  auto dup = db->prepare("INSERT INTO t VALUES (1)");
  EXPECT_EQ(dup.try_step().code(), Errc::already_exists);
  db->prepare("INSERT OR IGNORE INTO t VALUES (1)").run();
  EXPECT_EQ(count(*db, "SELECT count(*) FROM t"), 2);
}

// Addresses are unique without regard to case on both engines (COLLATE NOCASE).
TEST_P(EngineTest, NocaseColumnsCompareWithoutCase) {
  db->exec("INSERT INTO users (id, login, password_hash, created) VALUES (1, 'alice', 'x', 0)");
  db->prepare("INSERT INTO user_emails (user_id, email) VALUES (1, 'Alice@Example.org')").run();
  auto dup = db->prepare("INSERT INTO user_emails (user_id, email) VALUES (1, ?)");
  dup.bind(1, "alice@example.org");
  EXPECT_EQ(dup.try_step().code(), Errc::already_exists);
  auto st = db->prepare("SELECT count(*) FROM user_emails WHERE email = ?");
  st.bind(1, "ALICE@EXAMPLE.ORG");
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.column_int(0), 1);
}

// Writers are serialised: read-modify-write transactions on two connections never
// interleave (BEGIN IMMEDIATE; on PostgreSQL the writer lock).
TEST_P(EngineTest, WritingTransactionsDoNotInterleave) {
  db->exec("CREATE TABLE c (n INTEGER NOT NULL)");
  db->exec("INSERT INTO c VALUES (0)");
  constexpr int kPerThread = 25;
  auto work = [&] {
    auto conn = database.open();
    ASSERT_TRUE(conn.ok()) << conn.error().message;
    for (int i = 0; i < kPerThread; ++i) {
      Transaction tx(*conn);
      auto st = conn->prepare("SELECT n FROM c");
      ASSERT_TRUE(st.step());
      const std::int64_t n = st.column_int(0);
      st.reset();
      conn->prepare("UPDATE c SET n = ?").bind(1, n + 1).run();
      tx.commit();
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  EXPECT_EQ(count(*db, "SELECT n FROM c"), 2 * kPerThread);
}

TEST_P(EngineTest, ListsTheMigratedTables) {
  auto t = db->tables();
  for (const char* want : {"users", "sessions", "grants", "audit", "keys", "contact_signers"})
    EXPECT_NE(std::find(t.begin(), t.end(), want), t.end()) << want;
  EXPECT_EQ(std::find(t.begin(), t.end(), "wmk_schema_version"), t.end());
}

WMK_INSTANTIATE_ON_BOTH_ENGINES(EngineTest);

TEST(PostgresSql, TranslatesWhatDiffersAndLeavesStringsAlone) {
  EXPECT_EQ(detail::postgres_sql("SELECT a FROM t WHERE b = ? AND c = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = $2");
  EXPECT_EQ(detail::postgres_sql("UPDATE t SET x = ?1 || '?' WHERE y = ?2 OR z = ?1"),
            "UPDATE t SET x = $1 || '?' WHERE y = $2 OR z = $1");
  EXPECT_EQ(detail::postgres_sql("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n integer, "
                                 "b BLOB, e TEXT COLLATE NOCASE, u INTEGER REFERENCES v(id) ON "
                                 "DELETE CASCADE) -- INTEGER in a comment"),
            "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT, "
            "b BYTEA, e TEXT COLLATE wmk_nocase, u BIGINT REFERENCES v(id) ON DELETE CASCADE "
            "DEFERRABLE INITIALLY IMMEDIATE) -- INTEGER in a comment");
  EXPECT_EQ(detail::postgres_sql("INSERT OR IGNORE INTO t VALUES (?);"),
            "INSERT INTO t VALUES ($1) ON CONFLICT DO NOTHING");
  EXPECT_EQ(detail::postgres_sql("INSERT INTO t VALUES (x'00ff', X'')"),
            "INSERT INTO t VALUES ('\\x00ff'::bytea, '\\x'::bytea)");
  EXPECT_EQ(detail::postgres_sql("SELECT 'INTEGER ''BLOB''', \"INTEGER\""),
            "SELECT 'INTEGER ''BLOB''', \"INTEGER\"");
}

// ---- PostgreSQL going away (docs/admin-guide.md, "When PostgreSQL is down")

// Ends the server's session of db from another connection, as a server restart does;
// returns when that backend has exited.
void end_server_session(Db& db, Db& admin) {
  auto st = db.prepare("SELECT pg_backend_pid()");
  ASSERT_TRUE(st.step());
  const std::int64_t pid = st.column_int(0);
  st.reset();
  auto ended = admin.prepare("SELECT pg_terminate_backend(" + std::to_string(pid) + ", 10000)");
  ASSERT_TRUE(ended.step());
  ASSERT_EQ(ended.column_int(0), 1);
}

// A migrated PostgreSQL database, and a second connection to it (as an admin's).
class PgOutage : public ::testing::Test {
 protected:
  void SetUp() override {
    WMK_NEW_TEST_DATABASE(tdb_, Engine::postgresql, "");
    auto d = tdb_.open();
    auto a = tdb_.open();
    ASSERT_TRUE(d.ok() && a.ok());
    db.emplace(std::move(d).value());
    admin.emplace(std::move(a).value());
    ASSERT_TRUE(migrate(*db).ok());
  }
  test::TestDatabase tdb_;
  std::optional<Db> db;
  std::optional<Db> admin;
};

TEST_F(PgOutage, AServerThatEndedTheSessionMidTransactionIsUnavailableUntilReviveConnectsAgain) {
  // Mid-transaction: the next statement throws StoreUnavailable naming the database
  // (it cannot be run again: what the transaction did before is gone), and nothing of
  // the transaction stays.
  try {
    Transaction tx(*db);
    db->prepare("INSERT INTO users (login, password_hash, created) VALUES ('bob', 'h', 1)").run();
    end_server_session(*db, *admin);
    db->prepare("INSERT INTO users (login, password_hash, created) VALUES ('alice', 'h', 1)").run();
    tx.commit();
    ADD_FAILURE() << "no StoreUnavailable";
  } catch (const StoreUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("the database at dbname="), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(" is unreachable: "), std::string::npos) << e.what();
  }
  ASSERT_TRUE(db->revive().ok());
  EXPECT_EQ(count(*db, "SELECT count(*) FROM users"), 0);
  db->prepare("INSERT INTO users (login, password_hash, created) VALUES ('alice', 'h', 1)").run();
  EXPECT_EQ(count(*admin, "SELECT count(*) FROM users"), 1);

  // Between requests: revive() sees the session ended without a statement failing.
  end_server_session(*db, *admin);
  ASSERT_TRUE(db->revive().ok());
  EXPECT_EQ(count(*db, "SELECT count(*) FROM users"), 1);
  // A live connection is left as it is.
  auto pid = [&] { return count(*db, "SELECT pg_backend_pid()"); };
  const std::int64_t before = pid();
  ASSERT_TRUE(db->revive().ok());
  EXPECT_EQ(pid(), before);
}

// A close that revive() did not see yet (still in transit when the request began):
// the first statement of a request, a read, a write in its own transaction or a
// BEGIN, runs on a new connection instead of answering 503 once.
TEST_F(PgOutage, AClosedConnectionIsOpenedAgainByTheFirstStatementOutsideATransaction) {
  auto pid = [&] { return count(*db, "SELECT pg_backend_pid()"); };

  std::int64_t before = pid();
  end_server_session(*db, *admin);
  EXPECT_EQ(count(*db, "SELECT count(*) FROM users"), 0);  // a read
  EXPECT_NE(pid(), before);

  before = pid();
  end_server_session(*db, *admin);
  db->prepare("INSERT INTO users (login, password_hash, created) VALUES ('alice', 'h', 1)").run();
  EXPECT_NE(pid(), before);
  EXPECT_EQ(count(*admin, "SELECT count(*) FROM users WHERE login = 'alice'"), 1);  // once

  end_server_session(*db, *admin);
  {
    Transaction tx(*db);
    db->prepare("INSERT INTO users (login, password_hash, created) VALUES ('bob', 'h', 1)").run();
    tx.commit();
  }
  EXPECT_EQ(count(*admin, "SELECT count(*) FROM users"), 2);
}

// Lost at COMMIT, the outcome is not known: the error says so instead of claiming
// nothing was done, and the statement is not run a second time.
TEST_F(PgOutage, AConnectionLostAtCommitSaysTheOutcomeIsNotKnown) {
  try {
    Transaction tx(*db);
    db->prepare("INSERT INTO users (login, password_hash, created) VALUES ('alice', 'h', 1)").run();
    end_server_session(*db, *admin);
    tx.commit();
    ADD_FAILURE() << "no StoreUnavailable";
  } catch (const StoreUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("whether the change was saved is not known"),
              std::string::npos)
        << e.what();
  }
  ASSERT_TRUE(db->revive().ok());
  // Here the server ended the session before COMMIT arrived, so nothing was saved.
  EXPECT_EQ(count(*db, "SELECT count(*) FROM users"), 0);
}

TEST(PgUnreachable, AnUnreachableServerIsUnavailableAndTheMessageHoldsNoPassword) {
  auto db = Db::open_postgresql(
      "host=/nonexistent-wmk-socket-dir port=5432 dbname=wmk user=wmk password=hunter2-secret "
      "connect_timeout=2");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.code(), Errc::unavailable);
  EXPECT_EQ(db.error().message.rfind(
                "the database at dbname=wmk user=wmk host=/nonexistent-wmk-socket-dir port=5432 "
                "is unreachable: ",
                0),
            0u)
      << db.error().message;
  EXPECT_EQ(db.error().message.find("hunter2"), std::string::npos);
}

// ---- store migrate: SQLite -> PostgreSQL

class CopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Db::open(dir.path() + "/src.db", OpenMode::create_if_missing);
    ASSERT_TRUE(s.ok());
    source.emplace(std::move(s).value());
    ASSERT_TRUE(migrate(*source).ok());
    WMK_NEW_TEST_DATABASE(target_db, Engine::postgresql, "");
    auto t = target_db.open();
    ASSERT_TRUE(t.ok()) << t.error().message;
    target.emplace(std::move(t).value());
  }
  void fill(Db& db) {
    db.exec(
        "INSERT INTO users (id, login, password_hash, created) VALUES (1, 'alice', 'h1', 10), "
        "(7, 'bob', 'h2', 20);"
        "INSERT INTO user_emails (user_id, email, is_primary) VALUES (1, 'alice@example.org', 1);"
        "INSERT INTO sessions (id, short_id, user_id, csrf_token, created, last_seen) VALUES "
        "('s1', 'ab', 1, 'c', 1, 2);");
    auto k = db.prepare(
        "INSERT INTO keys (fingerprint, user_id, type, algorithm, created, kdf, kdf_params, "
        "kdf_salt, wrapped_secret, public_blob) VALUES ('F1', 1, 'openpgp', 'ed25519', 5, "
        "'argon2id', 'm=8,t=1,p=1', ?, ?, ?)");
    k.bind_all(std::vector<std::uint8_t>{0, 1, 2}, std::vector<std::uint8_t>{0xff, 0, 0x5c},
               std::string("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"))  // text in a BLOB column
        .run();
    auto g = db.prepare(
        "INSERT INTO grants (id, key_id, session_id, wrapped, created, last_used, expires) "
        "VALUES ('g1', 1, 's1', ?, 1, 1, 99)");
    g.bind(1, std::vector<std::uint8_t>(64, 0xab)).run();
    for (int i = 0; i < 50; ++i) {
      db.prepare("INSERT INTO audit (at, login, event, outcome, detail) VALUES (?, ?, ?, ?, ?)")
          .bind_all(i, "alice", "login", "ok", "d\xc3\xa9tail " + std::to_string(i))
          .run();
    }
  }

  test::TempDir dir;
  std::optional<Db> source;
  test::TestDatabase target_db;
  std::optional<Db> target;
};

TEST_F(CopyTest, CopiesEveryTableAndChecksIt) {
  fill(*source);
  auto report = copy_store(*source, *target);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->schema_version, latest_schema_version());
  EXPECT_EQ(report->tables.size(), source->tables().size());
  // The target, read on its own, holds the same rows.
  auto before = table_checksums(*source);
  auto after = table_checksums(*target);
  ASSERT_EQ(before.size(), after.size());
  std::int64_t rows = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    const auto& a = before[i];
    auto b = std::find_if(after.begin(), after.end(),
                          [&](const TableCopy& t) { return t.table == a.table; });
    ASSERT_NE(b, after.end()) << a.table;
    EXPECT_EQ(a.rows, b->rows) << a.table;
    EXPECT_EQ(a.checksum, b->checksum) << a.table;
    rows += a.rows;
  }
  EXPECT_EQ(rows, 2 + 1 + 1 + 1 + 1 + 50);
  EXPECT_TRUE(check_schema(*target).ok());
  // Generated ids continue after the copied ones.
  auto ins = target->prepare(
      "INSERT INTO users (login, password_hash, created) VALUES ('carol', 'h', 1) RETURNING id");
  ASSERT_TRUE(ins.step());
  EXPECT_EQ(ins.column_int(0), 8);
  // A second run refuses: the target is no longer empty, and stays as it was.
  auto again = copy_store(*source, *target);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.code(), Errc::already_exists);
  EXPECT_EQ(count(*target, "SELECT count(*) FROM audit"), 50);
}

TEST_F(CopyTest, AFailureMidwayLeavesTheTargetEmptyAndTheSourceUntouched) {
  fill(*source);
  const auto before = table_checksums(*source);
  // A value the copy cannot carry (a REAL in the last table): the copy fails after the
  // earlier tables went across.
  source->exec("INSERT INTO contact_signers VALUES (1, 'x@example.org', 'openpgp', 'F', 1.5)");
  auto report = copy_store(*source, *target);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.error().message.find("seen"), std::string::npos) << report.error().message;
  for (const auto& t : target->tables())
    EXPECT_EQ(count(*target, "SELECT count(*) FROM " + t), 0) << t;
  // The source is as it was (but for the row this test added).
  source->exec("DELETE FROM contact_signers");
  const auto after = table_checksums(*source);
  ASSERT_EQ(before.size(), after.size());
  for (std::size_t i = 0; i < before.size(); ++i)
    EXPECT_EQ(before[i].checksum, after[i].checksum) << before[i].table;
  // Fixed, the copy goes through.
  EXPECT_TRUE(copy_store(*source, *target).ok());
}

}  // namespace
}  // namespace wmk::store

#include "core/audit/audit.h"

#include <gtest/gtest.h>

#include "tests/unit/db_fixture.h"

namespace wmk::audit {

namespace {

class AuditTest : public test::DbTest {
 protected:
  AuditTest() : test::DbTest(1'000'000) {}
  void SetUp() override {
    test::DbTest::SetUp();
    if (HasFatalFailure() || IsSkipped())
      return;
    log.emplace(*db, clock);
  }
  void add(const std::string& login, const std::string& ev, const std::string& fpr = "") {
    log->record(AuditEvent{login, ev, outcome::kOk, fpr, "ab12cd34", "192.0.2.1", "d"});
    clock.advance(std::chrono::seconds(10));
  }
  std::optional<AuditLog> log;
};

}  // namespace

TEST_P(AuditTest, RecordsEveryFieldAndReturnsNewestFirst) {
  add("alice", "login");
  add("bob", "login");
  add("alice", "unlock", "FPR1");
  auto all = log->query({});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].event.event, "unlock");
  EXPECT_EQ(all[0].at, 1'000'020);
  EXPECT_EQ(all[0].event.login, "alice");
  EXPECT_EQ(all[0].event.outcome, "ok");
  EXPECT_EQ(all[0].event.key_fpr, "FPR1");
  EXPECT_EQ(all[0].event.session, "ab12cd34");
  EXPECT_EQ(all[0].event.client_addr, "192.0.2.1");
  EXPECT_EQ(all[0].event.detail, "d");
  EXPECT_EQ(all[2].event.login, "alice");
  EXPECT_EQ(all[2].event.event, "login");
  EXPECT_GT(all[0].id, all[1].id);
}

TEST_P(AuditTest, SameSecondStillNewestFirst) {
  log->record(AuditEvent{"a", "first", "ok", "", "", "", ""});
  log->record(AuditEvent{"a", "second", "ok", "", "", "", ""});
  auto all = log->query({});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].event.event, "second");
}

TEST_P(AuditTest, FiltersByLoginSinceKeyAndLimit) {
  add("alice", "login");            // 1'000'000
  add("bob", "login");              // 1'000'010
  add("alice", "unlock", "FPR1");   // 1'000'020
  add("alice", "decrypt", "FPR1");  // 1'000'030
  add("carol", "unlock", "FPR2");   // 1'000'040
  AuditQuery q;
  q.login = "alice";
  EXPECT_EQ(log->query(q).size(), 3u);
  q.since = 1'000'020;
  auto r = log->query(q);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].event.event, "decrypt");
  EXPECT_EQ(r[1].event.event, "unlock");
  AuditQuery k;
  k.key_fpr = "FPR1";
  EXPECT_EQ(log->query(k).size(), 2u);
  AuditQuery lim;
  lim.limit = 2;
  auto l = log->query(lim);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].event.login, "carol");
  AuditQuery unlimited;
  unlimited.limit = 0;
  EXPECT_EQ(log->query(unlimited).size(), 5u);
  AuditQuery none;
  none.login = "nobody";
  EXPECT_TRUE(log->query(none).empty());
}

TEST_P(AuditTest, ControlCharactersCannotForgeLines) {
  log->record(
      AuditEvent{"alice", "login", "fail", "", "", "", "bad\n2024-01-01 alice login ok\x1b[0m"});
  auto r = log->query({});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].event.detail.find('\n'), std::string::npos);
  EXPECT_EQ(r[0].event.detail.find('\x1b'), std::string::npos);
  EXPECT_EQ(r[0].event.detail, "bad?2024-01-01 alice login ok?[0m");
}

TEST_P(AuditTest, JoinsTheCallersTransaction) {
  {
    store::Transaction tx(*db);
    log->record(AuditEvent{"alice", "x", "ok", "", "", "", ""});
  }  // rolled back
  EXPECT_TRUE(log->query({}).empty());
}

TEST(AuditActor, NamesTheCliUser) {
  EXPECT_EQ(admin_actor().rfind("cli:", 0), 0u);
  EXPECT_GT(admin_actor().size(), 4u);
}

// The store itself refuses to change or remove an audit row, whoever asks (a trigger
// on both engines), so no module's bug or SQL can rewrite history.
TEST_P(AuditTest, TheStoreKeepsTheAuditAppendOnly) {
  add("alice", "login");
  EXPECT_THROW(db->exec("UPDATE audit SET outcome = 'fail'"), store::StoreError);
  EXPECT_THROW(db->exec("DELETE FROM audit"), store::StoreError);
  auto del = db->prepare("DELETE FROM audit WHERE login = ?");
  del.bind(1, "alice");
  EXPECT_FALSE(del.try_step().ok());
  if (GetParam() == store::Engine::postgresql) {
    EXPECT_THROW(db->exec("TRUNCATE audit"), store::StoreError);
  }
  auto all = log->query({});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].event.outcome, "ok");
  add("alice", "logout");  // appending still works
  EXPECT_EQ(log->query({}).size(), 2u);
}

WMK_INSTANTIATE_ON_BOTH_ENGINES(AuditTest);

}  // namespace wmk::audit

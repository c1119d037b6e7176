#include "core/auth/login.h"

#include <argon2.h>
#include <gtest/gtest.h>

#include <ctime>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <thread>

#include "core/audit/audit.h"
#include "core/auth/throttle.h"
#include "core/store/schema.h"
#include "tests/unit/test_util.h"

namespace wmk::auth {

namespace {

using std::chrono::seconds;

util::SecretBuffer pw(std::string_view s) {
  return util::SecretBuffer::copy_of(s);
}

class LoginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::Config cfg;
    cfg.data_dir = dir.path();
    cfg.password_memory_kib = 64;
    cfg.password_iterations = 1;
    cfg.max_failures = 3;
    cfg.lockout = seconds(60);
    auto d = store::Db::open(cfg.database_path(), store::OpenMode::create_if_missing);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(store::migrate(*d).ok());
    app.emplace(app::App{cfg, std::move(d).value(), &clock});
    UserStore users(app->db, clock);
    ASSERT_TRUE(users.add("alice", "alice@example.org", "Alice", pw("right"), params()).ok());
    ASSERT_TRUE(users.add("bob", "bob@example.org", "", pw("bobs"), params()).ok());
  }
  crypto::KdfParams params() const { return password_params(app->config); }
  std::vector<audit::AuditEntry> audit_log() {
    audit::AuditQuery q;
    q.limit = 0;
    return audit::AuditLog(app->db, clock).query(q);
  }
  std::int64_t failure_rows_like(const std::string& pattern) {
    auto st = app->db.prepare("SELECT count(*) FROM auth_failures WHERE scope LIKE ?");
    st.bind(1, pattern);
    st.step();
    return st.column_int(0);
  }
  test::TempDir dir;
  util::ManualClock clock;
  std::optional<app::App> app;
};

}  // namespace

TEST_F(LoginTest, RightPasswordOpensASession) {
  auto r = login(*app, "alice", pw("right"), "192.0.2.1", "Firefox");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->user.login, "alice");
  EXPECT_EQ(r->session.session.login, "alice");
  session::SessionStore sessions(app->db, clock, app->config);
  auto s = sessions.resume(r->session.token.view());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->user_id, r->user.id);
  EXPECT_EQ(s->client_addr, "192.0.2.1");
  auto log = audit_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].event.event, "login");
  EXPECT_EQ(log[0].event.outcome, "ok");
  EXPECT_EQ(log[0].event.login, "alice");
  EXPECT_EQ(log[0].event.session, r->session.session.short_id);
  EXPECT_EQ(log[0].event.client_addr, "192.0.2.1");
  EXPECT_EQ(failure_rows_like("%"), 0);
}

TEST_F(LoginTest, LoginNameIsCaseInsensitive) {
  auto r = login(*app, "ALICE", pw("right"), "", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->user.login, "alice");
}

TEST_F(LoginTest, WrongPasswordAndUnknownUserLookTheSame) {
  auto wrong = login(*app, "alice", pw("wrong"), "192.0.2.1", "");
  auto unknown = login(*app, "zed", pw("right"), "192.0.2.2", "");
  ASSERT_FALSE(wrong.ok());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(wrong.code(), Errc::bad_credentials);
  EXPECT_EQ(unknown.code(), Errc::bad_credentials);
  EXPECT_EQ(wrong.error().message, unknown.error().message);
  auto log = audit_log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].event.login, "zed");
  EXPECT_EQ(log[0].event.outcome, "fail");
  EXPECT_EQ(log[1].event.login, "alice");
  EXPECT_EQ(log[1].event.outcome, "fail");
  EXPECT_EQ(log[1].event.client_addr, "192.0.2.1");
}

TEST_F(LoginTest, PasswordInTheLoginFieldIsNotRecorded) {
  auto r = login(*app, "Tr0ub4dor&3", pw("x"), "192.0.2.1", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::bad_credentials);
  auto log = audit_log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].event.login, "");
  for (const auto& f : {log[0].event.login, log[0].event.detail})
    EXPECT_EQ(f.find("ub4dor"), std::string::npos);
  EXPECT_EQ(failure_rows_like("%ub4dor%"), 0);
}

TEST_F(LoginTest, LoginIsLockedOutAfterMaxFailures) {
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(login(*app, "alice", pw("wrong"), "", "").code(), Errc::bad_credentials);
  // Even the right password is refused while locked.
  auto locked = login(*app, "alice", pw("right"), "", "");
  ASSERT_FALSE(locked.ok());
  EXPECT_EQ(locked.code(), Errc::locked_out);
  EXPECT_NE(locked.error().message.find("60 seconds"), std::string::npos);
  EXPECT_EQ(audit_log()[0].event.outcome, "locked_out");
  // Bob is not affected.
  EXPECT_TRUE(login(*app, "bob", pw("bobs"), "", "").ok());
  clock.advance(seconds(60));
  ASSERT_TRUE(login(*app, "alice", pw("right"), "", "").ok());
  // The success reset the count: three more failures are needed for a new lock.
  EXPECT_EQ(login(*app, "alice", pw("wrong"), "", "").code(), Errc::bad_credentials);
  EXPECT_EQ(login(*app, "alice", pw("wrong"), "", "").code(), Errc::bad_credentials);
  EXPECT_TRUE(login(*app, "alice", pw("right"), "", "").ok());
}

TEST_F(LoginTest, UnknownLoginLocksOutLikeAKnownOne) {
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(login(*app, "zed", pw("wrong"), "", "").code(), Errc::bad_credentials);
  EXPECT_EQ(login(*app, "zed", pw("wrong"), "", "").code(), Errc::locked_out);
}

TEST_F(LoginTest, AddressIsLockedOutAcrossLogins) {
  // Password spraying from one address over several logins.
  app->config.max_failures_per_address = 3;
  EXPECT_EQ(login(*app, "alice", pw("guess"), "198.51.100.9", "").code(), Errc::bad_credentials);
  EXPECT_EQ(login(*app, "bob", pw("guess"), "198.51.100.9", "").code(), Errc::bad_credentials);
  EXPECT_EQ(login(*app, "carol", pw("guess"), "198.51.100.9", "").code(), Errc::bad_credentials);
  auto r = login(*app, "bob", pw("bobs"), "198.51.100.9", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::locked_out);
  EXPECT_NE(r.error().message.find("198.51.100.9"), std::string::npos);
  // The accounts themselves were tried once each: another address gets in.
  EXPECT_TRUE(login(*app, "bob", pw("bobs"), "192.0.2.1", "").ok());
}

// Issue 13: one guessing client must not lock everyone out. The address limit is its
// own (max_failures_per_address), so guesses at one account from one address lock
// that account, not the address for the others behind it.
TEST_F(LoginTest, AccountAndAddressAreCountedSeparately) {
  app->config.max_failures_per_address = 6;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(login(*app, "alice", pw("guess"), "198.51.100.9", "").code(), Errc::bad_credentials);
  EXPECT_EQ(login(*app, "alice", pw("right"), "192.0.2.1", "").code(), Errc::locked_out);
  EXPECT_TRUE(login(*app, "bob", pw("bobs"), "198.51.100.9", "").ok());
  Throttle t(app->db, clock, throttle_policy(app->config));
  EXPECT_EQ(t.failures(login_scope("alice")), 3u);
  EXPECT_EQ(t.failures(address_scope("198.51.100.9")), 0u);  // bob's success reset it
}

// Issue 12: of 8 simultaneous logins with the right password, 3 were told "too many
// failed attempts" because each attempt was counted as a failure before the check.
TEST_F(LoginTest, SimultaneousRightPasswordsAreNeverRefusedAsWrongOrLocked) {
  app->config.password_memory_kib = 8192;  // a real cost, so the attempts overlap
  ASSERT_TRUE(UserStore(app->db, clock).set_password("alice", pw("right"), params()).ok());
  constexpr int kClients = 8;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::latch start(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      auto own = app::open_with(app->config, clock);
      if (!own) {
        ++other;
        return;
      }
      start.arrive_and_wait();
      auto r = login(*own, "alice", pw("right"), "192.0.2.1", "");
      if (r.ok())
        ++ok;
      else if (r.code() == Errc::busy)
        ++busy;
      else
        ++other;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load() + busy.load(), kClients);
  EXPECT_GE(ok.load(), 1);
  EXPECT_EQ(failure_rows_like("%"), 0);
  for (const auto& e : audit_log())
    EXPECT_TRUE(e.event.outcome == "ok" || e.event.outcome == "busy") << e.event.outcome;
}

TEST_F(LoginTest, DisabledAccountIsRefusedOnlyWithTheRightPassword) {
  UserStore users(app->db, clock);
  ASSERT_TRUE(users.set_disabled("alice", AccountState::disabled).ok());
  EXPECT_EQ(login(*app, "alice", pw("wrong"), "", "").code(), Errc::bad_credentials);
  auto r = login(*app, "alice", pw("right"), "", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::disabled);
  EXPECT_EQ(audit_log()[0].event.outcome, "disabled");
  auto count = app->db.prepare("SELECT count(*) FROM sessions");
  count.step();
  EXPECT_EQ(count.column_int(0), 0);
}

TEST_F(LoginTest, DummyHashIsWellFormedAndMatchesNothing) {
  crypto::KdfParams p{64, 1, 1};
  const std::string dummy = dummy_password_hash(p);
  // Checked with libargon2 directly: a decode error would return early and fast.
  EXPECT_EQ(argon2id_verify(dummy.c_str(), "right", 5), ARGON2_VERIFY_MISMATCH);
  EXPECT_EQ(argon2id_verify(dummy.c_str(), "", 0), ARGON2_VERIFY_MISMATCH);
  EXPECT_NE(dummy.find("m=64,t=1,p=1"), std::string::npos);
}

TEST_F(LoginTest, UnknownLoginCostsAsMuchAsAKnownOne) {
  // A cost high enough to dominate the rest of the work.
  app->config.password_memory_kib = 32768;
  app->config.password_iterations = 2;
  app->config.max_failures = 1000;
  UserStore users(app->db, clock);
  ASSERT_TRUE(users.set_password("alice", pw("right"), params()).ok());
  // Thread CPU time, not wall time: other processes on a busy CI machine cannot
  // skew it, and Argon2id with p=1 runs in this thread.
  auto cpu_ms = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
  };
  auto time_of = [&](const char* name) {
    std::vector<double> ms;
    for (int i = 0; i < 5; ++i) {
      const double t0 = cpu_ms();
      EXPECT_EQ(login(*app, name, pw("wrong"), "", "").code(), Errc::bad_credentials);
      ms.push_back(cpu_ms() - t0);
    }
    std::sort(ms.begin(), ms.end());
    return ms[0];
  };
  const double known = time_of("alice");
  const double unknown = time_of("zed");
  EXPECT_GT(unknown, known * 0.3) << "known " << known << " ms, unknown " << unknown << " ms";
  EXPECT_LT(unknown, known * 3.0) << "known " << known << " ms, unknown " << unknown << " ms";
}

TEST_F(LoginTest, RehashesWhenTheConfiguredCostChanged) {
  app->config.password_memory_kib = 128;
  ASSERT_TRUE(login(*app, "alice", pw("right"), "", "").ok());
  UserStore users(app->db, clock);
  auto c = users.credential("alice");
  ASSERT_TRUE(c);
  EXPECT_NE(c->password_hash.find("m=128,t=1,p=1"), std::string::npos) << c->password_hash;
  EXPECT_TRUE(login(*app, "alice", pw("right"), "", "").ok());
}

}  // namespace wmk::auth

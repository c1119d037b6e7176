#include "core/auth/throttle.h"

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "tests/unit/db_fixture.h"

namespace wmk::auth {

namespace {

using std::chrono::seconds;

class ThrottleTest : public test::DbTest {
 protected:
  void SetUp() override {
    test::DbTest::SetUp();
    if (HasFatalFailure())
      return;
    ThrottlePolicy p;
    p.max_failures = 3;
    p.lockout = seconds(60);
    throttle.emplace(*db, clock, p);
  }
  void fail_times(const std::string& scope, int n) {
    for (int i = 0; i < n; ++i)
      throttle->record_failure(scope);
  }
  std::optional<Throttle> throttle;
};

}  // namespace

TEST(ThrottlePolicy, FromConfigIsCappedAtOneDay) {
  config::Config cfg;
  cfg.max_failures = 7;
  cfg.lockout = seconds(30);
  auto p = throttle_policy(cfg);
  EXPECT_EQ(p.max_failures, 7u);
  EXPECT_EQ(p.lockout, seconds(30));
  EXPECT_EQ(p.max_lockout, seconds(86400));
  cfg.lockout = seconds(200000);
  EXPECT_EQ(throttle_policy(cfg).lockout, seconds(86400));
}

TEST(ThrottleScopes, Names) {
  EXPECT_EQ(login_scope("alice"), "login:alice");
  EXPECT_EQ(address_scope("192.0.2.7"), "addr:192.0.2.7");
  EXPECT_EQ(key_scope("ABCD"), "key:ABCD");
}

TEST_F(ThrottleTest, LocksAfterMaxFailuresInARow) {
  const std::string s = "login:alice";
  EXPECT_TRUE(throttle->check(s).ok());
  fail_times(s, 2);
  EXPECT_TRUE(throttle->check(s).ok());
  EXPECT_EQ(throttle->failures(s), 2u);
  throttle->record_failure(s);
  auto st = throttle->check(s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Errc::locked_out);
  EXPECT_NE(st.error().message.find("login 'alice'"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("60 seconds"), std::string::npos) << st.error().message;
  EXPECT_EQ(throttle->seconds_locked(s), 60);
  // Other scopes are not affected.
  EXPECT_TRUE(throttle->check("login:bob").ok());
  EXPECT_TRUE(throttle->check("addr:192.0.2.7").ok());

  clock.advance(seconds(59));
  EXPECT_EQ(throttle->check(s).code(), Errc::locked_out);
  EXPECT_NE(throttle->check(s).error().message.find("1 second"), std::string::npos);
  clock.advance(seconds(1));
  EXPECT_TRUE(throttle->check(s).ok());
  EXPECT_EQ(throttle->seconds_locked(s), 0);
}

TEST_F(ThrottleTest, LockDoublesPerFurtherFailureUpToOneDay) {
  const std::string s = "addr:192.0.2.7";
  fail_times(s, 3);
  EXPECT_EQ(throttle->seconds_locked(s), 60);
  std::int64_t expected = 60;
  for (int i = 0; i < 15; ++i) {
    clock.advance(seconds(throttle->seconds_locked(s)));
    ASSERT_TRUE(throttle->check(s).ok());
    throttle->record_failure(s);
    expected = std::min<std::int64_t>(expected * 2, 86400);
    EXPECT_EQ(throttle->seconds_locked(s), expected) << "failure " << i + 4;
  }
  EXPECT_EQ(throttle->seconds_locked(s), 86400);
  // Far beyond: still one day, no overflow.
  fail_times(s, 100);
  EXPECT_EQ(throttle->seconds_locked(s), 86400);
}

TEST_F(ThrottleTest, SuccessResets) {
  const std::string s = "login:alice";
  fail_times(s, 2);
  throttle->record_success(s);
  EXPECT_EQ(throttle->failures(s), 0u);
  fail_times(s, 2);
  EXPECT_TRUE(throttle->check(s).ok());  // 2 in a row, not 4
  throttle->record_failure(s);
  EXPECT_EQ(throttle->check(s).code(), Errc::locked_out);
  throttle->record_success(s);
  EXPECT_TRUE(throttle->check(s).ok());
}

TEST_F(ThrottleTest, AcquireCountsBeforeVerificationAndRefusesWhenLocked) {
  const std::string s = "key:ABCD";
  // Three attempts "in flight" at once: each is counted as it starts.
  ASSERT_TRUE(throttle->acquire(s).ok());
  ASSERT_TRUE(throttle->acquire(s).ok());
  ASSERT_TRUE(throttle->acquire(s).ok());
  EXPECT_EQ(throttle->failures(s), 3u);
  auto fourth = throttle->acquire(s);
  ASSERT_FALSE(fourth.ok());
  EXPECT_EQ(fourth.code(), Errc::locked_out);
  EXPECT_NE(fourth.error().message.find("key ABCD"), std::string::npos);
  // A refused attempt does not lengthen the lock.
  EXPECT_EQ(throttle->failures(s), 3u);
  EXPECT_EQ(throttle->seconds_locked(s), 60);
}

TEST_F(ThrottleTest, OldFailuresAreForgottenAfterADayOfQuiet) {
  const std::string s = "login:alice";
  fail_times(s, 2);
  clock.advance(seconds(86400));
  throttle->record_failure(s);
  EXPECT_EQ(throttle->failures(s), 1u);
  EXPECT_TRUE(throttle->check(s).ok());
}

TEST_F(ThrottleTest, PurgeStaleKeepsRecentAndLockedRows) {
  fail_times("login:old", 1);
  fail_times("login:locked", 3);  // locked for 60 s
  clock.advance(seconds(86400 - 10));
  fail_times("login:recent", 1);
  clock.advance(seconds(10));
  // old: last failure a day ago, no lock -> stale. locked: lock ended 60 s less than a
  // day ago -> kept. recent: 10 s ago -> kept.
  EXPECT_EQ(throttle->purge_stale(store::PurgeMode::dry_run), 1);
  EXPECT_EQ(throttle->failures("login:old"), 1u);
  EXPECT_EQ(throttle->purge_stale(store::PurgeMode::remove), 1);
  EXPECT_EQ(throttle->failures("login:old"), 0u);
  EXPECT_EQ(throttle->failures("login:locked"), 3u);
  EXPECT_EQ(throttle->failures("login:recent"), 1u);
  EXPECT_EQ(throttle->purge_stale(store::PurgeMode::remove), 0);
  clock.advance(seconds(60));
  EXPECT_EQ(throttle->purge_stale(store::PurgeMode::remove), 1);
  EXPECT_EQ(throttle->failures("login:locked"), 0u);
}

TEST_F(ThrottleTest, PurgeKeepsALockInForce) {
  fail_times("login:locked", 3 + 20);  // one-day lock
  clock.advance(seconds(86400 - 1));
  EXPECT_EQ(throttle->purge_stale(store::PurgeMode::remove), 0);
  EXPECT_EQ(throttle->check("login:locked").code(), Errc::locked_out);
}

// Regression: a counter must not be forgotten merely because a one-day lock ran out;
// otherwise each day would grant max_failures fresh guesses at the shortest lock.
TEST_F(ThrottleTest, CounterSurvivesTheEndOfALongLock) {
  const std::string s = "login:alice";
  fail_times(s, 3 + 20);
  ASSERT_EQ(throttle->seconds_locked(s), 86400);
  clock.advance(seconds(86400));
  ASSERT_TRUE(throttle->check(s).ok());
  throttle->record_failure(s);
  EXPECT_EQ(throttle->seconds_locked(s), 86400);
}

}  // namespace wmk::auth

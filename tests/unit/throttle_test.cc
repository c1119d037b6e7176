#include "core/auth/throttle.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "core/config/config.h"
#include "tests/unit/db_fixture.h"

namespace wmk::auth {

namespace {

using std::chrono::seconds;

class ThrottleTest : public test::DbTest {
 protected:
  void SetUp() override {
    test::DbTest::SetUp();
    if (HasFatalFailure() || IsSkipped())
      return;
    throttle.emplace(*db, clock, policy());
  }
  static ThrottlePolicy policy() {
    ThrottlePolicy p;
    p.max_failures = 3;
    p.address_max_failures = 3;
    p.lockout = seconds(60);
    return p;
  }
  Throttle gated() { return Throttle(*db, clock, policy(), dir.path() + "/throttle"); }
  static audit::AuditEvent what() {
    return audit::AuditEvent{"alice", "login", "", "", "", "192.0.2.9", ""};
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

TEST_P(ThrottleTest, LocksAfterMaxFailuresInARow) {
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

TEST_P(ThrottleTest, LockDoublesPerFurtherFailureUpToOneDay) {
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

TEST_P(ThrottleTest, SuccessResets) {
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

TEST_P(ThrottleTest, EachGuessIsJudgedOnTheGuessesThatEndedBeforeIt) {
  Throttle t = gated();
  const std::string s = "key:ABCD";
  for (int i = 0; i < 3; ++i) {
    auto a = t.begin({{s, 1}}, what());
    ASSERT_TRUE(a.ok()) << a.error().message;
    EXPECT_EQ(t.failures(s), static_cast<std::uint32_t>(i));  // not counted before the verdict
    a->finish(Verdict::wrong);
  }
  auto fourth = t.begin({{s, 1}}, what());
  ASSERT_FALSE(fourth.ok());
  EXPECT_EQ(fourth.code(), Errc::locked_out);
  EXPECT_NE(fourth.error().message.find("key ABCD"), std::string::npos);
  // A refused attempt does not lengthen the lock.
  EXPECT_EQ(t.failures(s), 3u);
  EXPECT_EQ(t.seconds_locked(s), 60);
}

TEST_P(ThrottleTest, RightAndNotTriedVerdicts) {
  Throttle t = gated();
  const std::string s = "login:alice";
  fail_times(s, 2);
  auto a = t.begin({{s, 1}}, what());
  ASSERT_TRUE(a.ok());
  a->finish(Verdict::not_tried);
  EXPECT_EQ(t.failures(s), 2u);
  auto b = t.begin({{s, 1}}, what());
  ASSERT_TRUE(b.ok());
  b->finish(Verdict::right);
  EXPECT_EQ(t.failures(s), 0u);
}

TEST_P(ThrottleTest, OneGuessInFlightPerSlotOthersAreToldBusy) {
  Throttle t = gated();
  auto first = t.begin({{"key:ABCD", 1}}, what());
  ASSERT_TRUE(first.ok());
  auto second = t.begin({{"key:ABCD", 1}}, what(), std::chrono::milliseconds(60));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), Errc::busy);
  // Another key is not held up, and nothing was counted for the busy one.
  EXPECT_TRUE(t.begin({{"key:EEEE", 1}}, what(), std::chrono::milliseconds(60)).ok());
  EXPECT_EQ(t.failures("key:ABCD"), 0u);
  // An address has several slots.
  auto a1 = t.begin({{"addr:192.0.2.1", 2}}, what(), std::chrono::milliseconds(60));
  auto a2 = t.begin({{"addr:192.0.2.1", 2}}, what(), std::chrono::milliseconds(60));
  auto a3 = t.begin({{"addr:192.0.2.1", 2}}, what(), std::chrono::milliseconds(60));
  EXPECT_TRUE(a1.ok());
  EXPECT_TRUE(a2.ok());
  EXPECT_EQ(a3.code(), Errc::busy);
  first->finish(Verdict::wrong);
  auto third = t.begin({{"key:ABCD", 1}}, what(), std::chrono::milliseconds(60));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(t.failures("key:ABCD"), 1u);
}

TEST_P(ThrottleTest, AWaitingGuessGetsTheSlotWhenTheFirstEnds) {
  Throttle t = gated();
  auto first = t.begin({{"key:ABCD", 1}}, what());
  ASSERT_TRUE(first.ok());
  std::thread ender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    first->finish(Verdict::right);
  });
  // Its own connection: the ending thread writes through db.
  auto other = database.open();
  ASSERT_TRUE(other.ok());
  Throttle t2(*other, clock, policy(), dir.path() + "/throttle");
  auto second = t2.begin({{"key:ABCD", 1}}, what(), std::chrono::seconds(5));
  ender.join();
  ASSERT_TRUE(second.ok()) << second.error().message;
}

TEST_P(ThrottleTest, AnUnfinishedAttemptCountsAsInterruptedAndIsAudited) {
  Throttle t = gated();
  const std::string s = "login:alice";
  {
    auto a = t.begin({{"addr:192.0.2.9", 4}, {s, 1}}, what());
    ASSERT_TRUE(a.ok());
  }                              // dropped unfinished, as by an exception
  EXPECT_EQ(t.failures(s), 0u);  // found by the next attempt, not before
  auto b = t.begin({{s, 1}}, what());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(t.failures(s), 1u);
  EXPECT_EQ(t.interrupted(s), 1u);
  b->finish(Verdict::not_tried);
  auto rows = audit::AuditLog(*db, clock).query({});
  ASSERT_EQ(rows.size(), 1u);  // one row for the attempt, though it held two scopes
  EXPECT_EQ(rows[0].event.outcome, "interrupted");
  EXPECT_EQ(rows[0].event.event, "login");
  EXPECT_EQ(rows[0].event.login, "alice");
  EXPECT_EQ(rows[0].event.client_addr, "192.0.2.9");
  EXPECT_NE(rows[0].event.detail.find("counted as a failed attempt"), std::string::npos);
  // The address scope still holds its marker: the next attempt there counts it.
  auto c = t.begin({{"addr:192.0.2.9", 1}}, what());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(t.interrupted("addr:192.0.2.9"), 1u);
  c->finish(Verdict::not_tried);
  EXPECT_EQ(audit::AuditLog(*db, clock).query({}).size(), 1u);
  // Two more interrupted: locked, and the message says why.
  for (int i = 0; i < 2; ++i) {
    auto d = t.begin({{s, 1}}, what());
    ASSERT_TRUE(d.ok());
  }
  auto e = t.begin({{s, 1}}, what());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.code(), Errc::locked_out);
  EXPECT_NE(e.error().message.find("3 of them were requests interrupted"), std::string::npos)
      << e.error().message;
}

TEST_P(ThrottleTest, AGuessInAKilledProcessCountsAsInterrupted) {
  const std::string s = "key:ABCD";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child uses its own connection, never the parent's.
    auto own = database.open();
    if (!own)
      ::_exit(2);
    Throttle t(*own, clock, policy(), dir.path() + "/throttle");
    auto a = t.begin({{s, 1}}, what());
    if (!a)
      ::_exit(3);
    ::raise(SIGKILL);
    ::_exit(4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited " << WEXITSTATUS(status);
  Throttle t = gated();
  auto next = t.begin({{s, 1}}, what(), std::chrono::milliseconds(500));
  ASSERT_TRUE(next.ok()) << next.error().message;  // the dead process's lock is gone
  EXPECT_EQ(t.failures(s), 1u);
  EXPECT_EQ(t.interrupted(s), 1u);
}

TEST_P(ThrottleTest, AddressesHaveTheirOwnLimit) {
  ThrottlePolicy p = policy();
  p.address_max_failures = 5;
  Throttle t(*db, clock, p);
  for (int i = 0; i < 4; ++i)
    t.record_failure("addr:192.0.2.1");
  EXPECT_TRUE(t.check("addr:192.0.2.1").ok());
  t.record_failure("addr:192.0.2.1");
  EXPECT_EQ(t.check("addr:192.0.2.1").code(), Errc::locked_out);
  for (int i = 0; i < 3; ++i)
    t.record_failure("login:bob");
  EXPECT_EQ(t.check("login:bob").code(), Errc::locked_out);
}

TEST_P(ThrottleTest, PurgeRemovesOnlyIdleSlotFiles) {
  Throttle t = gated();
  auto a = t.begin({{"key:ABCD", 1}}, what());
  ASSERT_TRUE(a.ok());
  a->finish(Verdict::right);
  auto held = t.begin({{"key:EEEE", 1}}, what());
  ASSERT_TRUE(held.ok());
  auto files = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/throttle"))
      n += e.is_regular_file() ? 1 : 0;
    return n;
  };
  EXPECT_EQ(files(), 2);
  EXPECT_EQ(t.purge_stale(store::PurgeMode::remove), 0);  // used just now
  for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/throttle")) {
    std::filesystem::last_write_time(
        e.path(), std::filesystem::file_time_type::clock::now() - std::chrono::hours(48));
  }
  clock.set(static_cast<std::int64_t>(::time(nullptr)));
  EXPECT_EQ(t.purge_stale(store::PurgeMode::remove), 1);  // the held one stays
  EXPECT_EQ(files(), 1);
}

TEST_P(ThrottleTest, OldFailuresAreForgottenAfterADayOfQuiet) {
  const std::string s = "login:alice";
  fail_times(s, 2);
  clock.advance(seconds(86400));
  throttle->record_failure(s);
  EXPECT_EQ(throttle->failures(s), 1u);
  EXPECT_TRUE(throttle->check(s).ok());
}

TEST_P(ThrottleTest, PurgeStaleKeepsRecentAndLockedRows) {
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

TEST_P(ThrottleTest, PurgeKeepsALockInForce) {
  fail_times("login:locked", 3 + 20);  // one-day lock
  clock.advance(seconds(86400 - 1));
  EXPECT_EQ(throttle->purge_stale(store::PurgeMode::remove), 0);
  EXPECT_EQ(throttle->check("login:locked").code(), Errc::locked_out);
}

// Regression: a counter must not be forgotten merely because a one-day lock ran out;
// otherwise each day would grant max_failures fresh guesses at the shortest lock.
TEST_P(ThrottleTest, CounterSurvivesTheEndOfALongLock) {
  const std::string s = "login:alice";
  fail_times(s, 3 + 20);
  ASSERT_EQ(throttle->seconds_locked(s), 86400);
  clock.advance(seconds(86400));
  ASSERT_TRUE(throttle->check(s).ok());
  throttle->record_failure(s);
  EXPECT_EQ(throttle->seconds_locked(s), 86400);
}

WMK_INSTANTIATE_ON_BOTH_ENGINES(ThrottleTest);

}  // namespace wmk::auth

#include "core/grant/grant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <latch>
#include <set>
#include <thread>

#include "core/grant/cookie.h"
#include "core/session/session.h"
#include "core/store/schema.h"
#include "tests/unit/db_fixture.h"
#include "tests/unit/pg_server.h"
#include "tests/unit/test_util.h"

namespace wmk::grant {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSessionA1 =
    "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
constexpr const char* kSessionA2 =
    "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2";
constexpr const char* kSessionB1 =
    "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
constexpr std::int64_t kKey1 = 1;  // alice
constexpr std::int64_t kKey2 = 2;  // alice
constexpr std::int64_t kKey3 = 3;  // bob
constexpr const char* kFpr1 = "AAAA1111BBBB2222CCCC3333DDDD4444EEEE5555";
constexpr const char* kFpr2 = "AAAA1111FFFF6666777788889999000011112222";
constexpr const char* kFpr3 = "0123456789ABCDEF0123456789ABCDEF01234567";

std::string read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool contains(const std::string& haystack, std::span<const std::uint8_t> needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                     [](char h, std::uint8_t n) { return static_cast<std::uint8_t>(h) == n; }) !=
         haystack.end();
}

// Users, sessions and keys inserted with plain SQL, as their own modules would.
void seed(store::Db& db, std::int64_t now) {
  db.exec(R"sql(
    INSERT INTO users (id, login, password_hash, created) VALUES (1, 'alice', 'x', 0), (2, 'bob', 'x', 0);
  )sql");
  auto s = db.prepare(
      "INSERT INTO sessions (id, short_id, user_id, csrf_token, created, last_seen, client_addr,"
      " user_agent) VALUES (?, ?, ?, 'csrf', ?, ?, ?, ?)");
  s.bind_all(kSessionA1, "sa1", 1, now, now, "10.0.0.5", "Firefox").run();
  s.reset();
  s.bind_all(kSessionA2, "sa2", 1, now, now, "10.0.0.7", "Chromium").run();
  s.reset();
  s.bind_all(kSessionB1, "sb1", 2, now, now, "10.0.0.9", "curl").run();
  auto k = db.prepare(
      "INSERT INTO keys (id, fingerprint, user_id, type, algorithm, created, kdf, kdf_params,"
      " kdf_salt, wrapped_secret) VALUES (?, ?, ?, 'openpgp', 'ed25519', 0, 'argon2id', '',"
      " ?, ?)");
  const std::vector<std::uint8_t> zero{0};
  k.bind_all(kKey1, kFpr1, 1, zero, zero).run();
  k.reset();
  k.bind_all(kKey2, kFpr2, 1, zero, zero).run();
  k.reset();
  k.bind_all(kKey3, kFpr3, 2, zero, zero).run();
}

class GrantTest : public ::testing::TestWithParam<store::Engine> {
 protected:
  void SetUp() override {
    WMK_NEW_TEST_DATABASE(database_, GetParam(), path());
    auto opened = database_.open();
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    db_.emplace(std::move(opened).value());
    ASSERT_TRUE(store::migrate(*db_).ok());
    seed(*db_, clock_.now());
    store_.emplace(*db_, clock_, config_);
  }

  std::string path() const { return dir_.path() + "/grant.db"; }
  store::Db& db() { return *db_; }
  GrantStore& grants() { return *store_; }

  // A session request: the session code touches last_seen on each one.
  void touch_session(const std::string& id) {
    db().prepare("UPDATE sessions SET last_seen = ? WHERE id = ?").bind_all(clock_.now(), id).run();
  }
  std::optional<std::string> notice(const std::string& session_id) {
    auto st = db().prepare("SELECT notice FROM sessions WHERE id = ?");
    st.bind(1, session_id);
    EXPECT_TRUE(st.step());
    return st.column_optional_text(0);
  }
  std::int64_t count(const std::string& sql) {
    auto st = db().prepare(sql);
    EXPECT_TRUE(st.step());
    return st.column_int(0);
  }
  std::int64_t audit_count(const std::string& event, const std::string& outcome) {
    auto st = db().prepare("SELECT count(*) FROM audit WHERE event = ? AND outcome = ?");
    st.bind_all(event, outcome);
    EXPECT_TRUE(st.step());
    return st.column_int(0);
  }
  GrantInfo create_ok(const std::string& session, std::int64_t key,
                      const util::SecretBuffer& grant_secret) {
    auto g = grants().create(session, key, key_secret_, grant_secret, "10.0.0.5", "Firefox/128");
    EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error().message);
    return g.ok() ? *g : GrantInfo{};
  }

  // Deletes a session row without the foreign keys' cascade, as a broken database might.
  void delete_session_without_cascade(const std::string& id) {
    if (db().engine() == store::Engine::sqlite)
      db().exec("PRAGMA foreign_keys = OFF");
    else
      db().exec("SET session_replication_role = replica");  // the server's own: no triggers
    db().prepare("DELETE FROM sessions WHERE id = ?").bind(1, id).run();
    if (db().engine() == store::Engine::sqlite)
      db().exec("PRAGMA foreign_keys = ON");
    else
      db().exec("SET session_replication_role = DEFAULT");
  }

  test::TempDir dir_;
  test::TestDatabase database_;
  util::ManualClock clock_;
  config::Config config_;
  std::optional<store::Db> db_;
  std::optional<GrantStore> store_;
  util::SecretBuffer key_secret_ = util::SecretBuffer::random(32);
  util::SecretBuffer secret_a_ = new_grant_secret();
  util::SecretBuffer secret_b_ = new_grant_secret();
};

TEST_P(GrantTest, CreateThenUseReturnsTheExactKeySecret) {
  auto g = create_ok(kSessionA1, kKey1, secret_a_);
  EXPECT_EQ(g.id.size(), 10u);
  EXPECT_EQ(g.key_fingerprint, kFpr1);
  EXPECT_EQ(g.login, "alice");
  EXPECT_EQ(g.session_short_id, "sa1");
  EXPECT_EQ(g.created, clock_.now());
  EXPECT_EQ(g.expires, clock_.now() + 7200);
  EXPECT_EQ(g.idle_deadline, clock_.now() + 600);
  EXPECT_EQ(g.client_addr, "10.0.0.5");
  EXPECT_EQ(g.user_agent, "Firefox/128");

  clock_.advance(100s);
  auto secret = grants().use(kSessionA1, kKey1, secret_a_);
  ASSERT_TRUE(secret.ok()) << secret.error().message;
  ASSERT_EQ(secret->size(), key_secret_.size());
  EXPECT_TRUE(secret->equals(key_secret_));

  auto info = grants().for_session_and_key(kSessionA1, kKey1);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->last_used, clock_.now());
  EXPECT_EQ(info->seconds_left(clock_.now()), 600);
  EXPECT_EQ(audit_count("grant.create", "ok"), 1);
}

TEST_P(GrantTest, GrantIdsAreUniqueHex) {
  std::set<std::string> ids;
  for (std::int64_t key : {kKey1, kKey2})
    ids.insert(create_ok(kSessionA1, key, secret_a_).id);
  ids.insert(create_ok(kSessionB1, kKey3, secret_b_).id);
  EXPECT_EQ(ids.size(), 3u);
  for (const auto& id : ids)
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
}

TEST_P(GrantTest, WrongGrantSecretIsRefusedAndTheGrantDeleted) {
  create_ok(kSessionA1, kKey1, secret_a_);
  auto wrong = grants().use(kSessionA1, kKey1, secret_b_);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.code(), Errc::revoked);
  EXPECT_EQ(audit_count("grant.use", "fail"), 1);
  // The grant could never open again: it is gone, and the key is free.
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::not_found);
  EXPECT_FALSE(grants().live_for_key(kKey1));
}

TEST_P(GrantTest, MissingCookieIsRefused) {
  create_ok(kSessionA1, kKey1, secret_a_);
  EXPECT_EQ(grants().use(kSessionA1, kKey1, util::SecretBuffer()).code(), Errc::revoked);
}

TEST_P(GrantTest, AnotherSessionCannotUseTheGrant) {
  create_ok(kSessionA1, kKey1, secret_a_);
  // Even with the right cookie, a grant belongs to its session only.
  EXPECT_EQ(grants().use(kSessionA2, kKey1, secret_a_).code(), Errc::not_found);
  EXPECT_EQ(grants().use(kSessionA1, kKey2, secret_a_).code(), Errc::not_found);
  EXPECT_TRUE(grants().use(kSessionA1, kKey1, secret_a_).ok());
}

TEST_P(GrantTest, SealedBlobIsBoundToItsRowAndExpiry) {
  create_ok(kSessionA1, kKey1, secret_a_);
  create_ok(kSessionA1, kKey2, secret_a_);
  // Someone with write access to the database pushes the absolute expiry back:
  // the blob no longer opens.
  db().prepare("UPDATE grants SET expires = expires + 86400 WHERE key_id = ?").bind(1, kKey1).run();
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::revoked);
  // Key 2's blob copied onto a fresh key-1 grant does not open either.
  create_ok(kSessionA1, kKey1, secret_a_);
  db().exec(
      "UPDATE grants SET wrapped = (SELECT wrapped FROM grants WHERE key_id = 2) WHERE key_id = 1");
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::revoked);
  EXPECT_TRUE(grants().use(kSessionA1, kKey2, secret_a_).ok());
}

TEST_P(GrantTest, IdleTimeoutEndsTheGrant) {
  create_ok(kSessionA1, kKey1, secret_a_);
  clock_.advance(599s);
  ASSERT_TRUE(grants().use(kSessionA1, kKey1, secret_a_).ok());  // resets the idle clock
  clock_.advance(599s);
  touch_session(kSessionA1);
  ASSERT_TRUE(grants().use(kSessionA1, kKey1, secret_a_).ok());
  clock_.advance(600s);
  touch_session(kSessionA1);
  EXPECT_FALSE(grants().for_session_and_key(kSessionA1, kKey1));
  auto r = grants().use(kSessionA1, kKey1, secret_a_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::expired);
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 0);
  EXPECT_EQ(audit_count("grant.expire", "expired"), 1);
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::not_found);
  // Expiry is nobody's doing: no notice.
  EXPECT_FALSE(notice(kSessionA1));
}

TEST_P(GrantTest, AbsoluteTimeoutEndsAGrantInConstantUse) {
  create_ok(kSessionA1, kKey1, secret_a_);
  for (int t = 500; t < 7200; t += 500) {
    clock_.advance(500s);
    touch_session(kSessionA1);
    ASSERT_TRUE(grants().use(kSessionA1, kKey1, secret_a_).ok()) << "at +" << t << " s";
  }
  clock_.set(clock_.now() - 7000 + 7199);  // created + 7199
  touch_session(kSessionA1);
  ASSERT_TRUE(grants().use(kSessionA1, kKey1, secret_a_).ok());
  auto info = grants().for_session_and_key(kSessionA1, kKey1);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->seconds_left(clock_.now()), 1);
  clock_.advance(1s);
  touch_session(kSessionA1);
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::expired);
}

TEST_P(GrantTest, TimeoutsComeFromTheConfig) {
  config_.grant_idle_timeout = 30s;
  create_ok(kSessionA1, kKey1, secret_a_);
  clock_.advance(30s);
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::expired);
}

TEST_P(GrantTest, GrantNeverOutlivesItsSessionLimits) {
  // A session whose absolute limit is 100 s away (SessionStore counts the limit second
  // as live): the grant is capped at it.
  const std::int64_t start = clock_.now();
  db().prepare("UPDATE sessions SET created = ? WHERE id = ?")
      .bind_all(start + 100 - config_.session_absolute_timeout.count(), kSessionA1)
      .run();
  auto g = create_ok(kSessionA1, kKey1, secret_a_);
  EXPECT_EQ(g.expires, start + 101);
  clock_.advance(100s);
  touch_session(kSessionA1);
  ASSERT_TRUE(grants().use(kSessionA1, kKey1, secret_a_).ok());
  clock_.advance(1s);
  touch_session(kSessionA1);
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::expired);

  // A session idle past its own limit takes its grant with it, at the same second
  // SessionStore would end it.
  config_.session_idle_timeout = 300s;
  touch_session(kSessionA2);
  create_ok(kSessionA2, kKey1, secret_b_);
  clock_.advance(300s);
  EXPECT_TRUE(grants().for_session_and_key(kSessionA2, kKey1));
  clock_.advance(1s);
  EXPECT_FALSE(grants().for_session_and_key(kSessionA2, kKey1));
  EXPECT_EQ(grants().use(kSessionA2, kKey1, secret_b_).code(), Errc::expired);

  // An ended session cannot get a grant.
  EXPECT_EQ(grants().create(kSessionA2, kKey1, key_secret_, secret_b_, "", "").code(),
            Errc::expired);
}

TEST_P(GrantTest, CreateChecksSessionKeyAndArguments) {
  EXPECT_EQ(grants().create("nope", kKey1, key_secret_, secret_a_, "", "").code(), Errc::not_found);
  // Bob's key cannot be granted to Alice's session.
  EXPECT_EQ(grants().create(kSessionA1, kKey3, key_secret_, secret_a_, "", "").code(),
            Errc::not_found);
  EXPECT_EQ(grants().create(kSessionA1, 99, key_secret_, secret_a_, "", "").code(),
            Errc::not_found);
  auto short_secret = util::SecretBuffer::random(16);
  EXPECT_EQ(grants().create(kSessionA1, kKey1, key_secret_, short_secret, "", "").code(),
            Errc::invalid_argument);
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 0);
}

TEST_P(GrantTest, KeyInUseElsewhereIsRefusedWithWhoWhenWhere) {
  auto first = grants().create(kSessionA1, kKey1, key_secret_, secret_a_, "10.0.0.5", "Firefox");
  ASSERT_TRUE(first.ok());
  clock_.advance(60s);
  auto second = grants().create(kSessionA2, kKey1, key_secret_, secret_b_, "10.0.0.7", "Chromium");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), Errc::key_in_use);
  EXPECT_NE(second.error().message.find("10.0.0.5"), std::string::npos);
  auto other = grants().live_for_key(kKey1);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->id, first->id);
  EXPECT_EQ(other->session_id, kSessionA1);
  EXPECT_EQ(other->created, clock_.now() - 60);
  EXPECT_EQ(other->client_addr, "10.0.0.5");
  EXPECT_EQ(other->user_agent, "Firefox");
  EXPECT_EQ(audit_count("grant.create", "denied"), 1);
  // Nothing was shared or stolen: the first session still works, the second has nothing.
  EXPECT_TRUE(grants().use(kSessionA1, kKey1, secret_a_).ok());
  EXPECT_EQ(grants().use(kSessionA2, kKey1, secret_b_).code(), Errc::not_found);
  EXPECT_FALSE(notice(kSessionA1));
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 1);
}

TEST_P(GrantTest, SameSessionUnlockingAgainReplacesItsGrant) {
  auto first = create_ok(kSessionA1, kKey1, secret_a_);
  // Its cookie lost, the same session unlocks with a new grant secret.
  auto again = create_ok(kSessionA1, kKey1, secret_b_);
  EXPECT_NE(again.id, first.id);
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 1);
  EXPECT_TRUE(grants().use(kSessionA1, kKey1, secret_b_).ok());
  EXPECT_FALSE(notice(kSessionA1));
}

TEST_P(GrantTest, ExpiredGrantElsewhereDoesNotBlockTheKey) {
  create_ok(kSessionA1, kKey1, secret_a_);
  clock_.advance(600s);
  touch_session(kSessionA2);
  auto g = create_ok(kSessionA2, kKey1, secret_b_);
  EXPECT_EQ(g.session_id, kSessionA2);
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 1);
  EXPECT_EQ(audit_count("grant.expire", "expired"), 1);
}

TEST_P(GrantTest, TwoConnectionsRacingForOneKeyExactlyOneWins) {
  for (int round = 0; round < 20; ++round) {
    std::latch start(2);
    std::atomic<int> won{0}, in_use{0}, other{0};
    auto contender = [&](const char* session, const util::SecretBuffer& secret) {
      auto conn = database_.open();
      ASSERT_TRUE(conn.ok());
      GrantStore mine(*conn, clock_, config_);
      start.arrive_and_wait();
      auto r = mine.create(session, kKey1, key_secret_, secret, "", "");
      if (r.ok())
        ++won;
      else if (r.code() == Errc::key_in_use)
        ++in_use;
      else
        ++other;
    };
    std::thread t1(contender, kSessionA1, std::cref(secret_a_));
    std::thread t2(contender, kSessionA2, std::cref(secret_b_));
    t1.join();
    t2.join();
    ASSERT_EQ(won.load(), 1) << "round " << round;
    ASSERT_EQ(in_use.load(), 1) << "round " << round;
    ASSERT_EQ(other.load(), 0);
    ASSERT_EQ(count("SELECT count(*) FROM grants WHERE key_id = 1"), 1);
    ASSERT_TRUE(grants().revoke_all(Revoker::admin("test")).ok());
  }
}

TEST_P(GrantTest, RevokeOneByIdNotifiesTheVictim) {
  auto g = create_ok(kSessionA1, kKey1, secret_a_);
  auto n = grants().revoke(g.id, Revoker::admin("cli (uid 0)"));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  auto text = notice(kSessionA1);
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("AAAA1111BBBB2222"), std::string::npos) << *text;
  EXPECT_NE(text->find("by an administrator"), std::string::npos) << *text;
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::not_found);
  EXPECT_EQ(grants().revoke(g.id, Revoker::admin("cli")).code(), Errc::not_found);
  EXPECT_EQ(audit_count("grant.revoke", "ok"), 1);
}

TEST_P(GrantTest, OwnerLockLeavesNoNotice) {
  create_ok(kSessionA1, kKey1, secret_a_);
  create_ok(kSessionA1, kKey2, secret_a_);
  create_ok(kSessionB1, kKey3, secret_b_);
  auto n = grants().revoke_for_session(kSessionA1, Revoker::owner(kSessionA1, "10.0.0.5"));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  EXPECT_FALSE(notice(kSessionA1));
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 1);
  EXPECT_TRUE(grants().use(kSessionB1, kKey3, secret_b_).ok());
}

TEST_P(GrantTest, TakeOverByAnotherSessionTellsTheOldOne) {
  create_ok(kSessionA1, kKey1, secret_a_);
  auto other = grants().live_for_key(kKey1);
  ASSERT_TRUE(other);
  // The user confirmed "stop the key's use in the other session" in session A2.
  auto n = grants().revoke(other->id, Revoker::other_session(kSessionA2, "10.0.0.7"));
  ASSERT_TRUE(n.ok());
  auto text = notice(kSessionA1);
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("by a sign-in from 10.0.0.7"), std::string::npos) << *text;
  EXPECT_FALSE(notice(kSessionA2));
  EXPECT_TRUE(create_ok(kSessionA2, kKey1, secret_b_).id.size() == 10);
}

TEST_P(GrantTest, RevokeByKeyLoginAndAll) {
  create_ok(kSessionA1, kKey1, secret_a_);
  create_ok(kSessionA2, kKey2, secret_b_);
  create_ok(kSessionB1, kKey3, secret_b_);

  auto by_key = grants().revoke_for_key(kKey1, Revoker::other_session(kSessionA2, "10.0.0.7"));
  ASSERT_TRUE(by_key.ok());
  EXPECT_EQ(*by_key, 1);
  EXPECT_TRUE(notice(kSessionA1));
  EXPECT_EQ(*grants().revoke_for_key(kKey1, Revoker::admin("cli")), 0);

  EXPECT_EQ(grants().revoke_for_login("nobody", Revoker::admin("cli")).code(), Errc::not_found);
  auto by_login = grants().revoke_for_login("alice", Revoker::admin("cli"));
  ASSERT_TRUE(by_login.ok());
  EXPECT_EQ(*by_login, 1);  // key 2 in session A2
  auto a2 = notice(kSessionA2);
  ASSERT_TRUE(a2);
  EXPECT_NE(a2->find("administrator"), std::string::npos);
  EXPECT_FALSE(notice(kSessionB1));
  EXPECT_TRUE(grants().use(kSessionB1, kKey3, secret_b_).ok());

  create_ok(kSessionA1, kKey1, secret_a_);
  auto all = grants().revoke_all(Revoker::admin("cli"));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, 2);
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 0);
  // Two stops for session A1 are both kept, one per line.
  auto a1 = notice(kSessionA1);
  ASSERT_TRUE(a1);
  EXPECT_NE(a1->find('\n'), std::string::npos) << *a1;
  EXPECT_TRUE(notice(kSessionB1));
  EXPECT_EQ(audit_count("grant.revoke", "ok"), 4);
}

TEST_P(GrantTest, RevokingAnExpiredGrantIsAnExpiryNotAStop) {
  create_ok(kSessionA1, kKey1, secret_a_);
  clock_.advance(600s);
  touch_session(kSessionA1);
  auto n = grants().revoke_all(Revoker::admin("cli"));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_FALSE(notice(kSessionA1));
  EXPECT_EQ(audit_count("grant.expire", "expired"), 1);
  EXPECT_EQ(audit_count("grant.revoke", "ok"), 0);
}

TEST_P(GrantTest, SessionDeleteCascades) {
  create_ok(kSessionA1, kKey1, secret_a_);
  create_ok(kSessionA1, kKey2, secret_a_);
  db().prepare("DELETE FROM sessions WHERE id = ?").bind(1, kSessionA1).run();
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 0);
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::not_found);
  EXPECT_TRUE(grants().for_session(kSessionA1).empty());
}

TEST_P(GrantTest, WorksWithTheRealSessionStore) {
  session::SessionStore sessions(db(), clock_, config_);
  auto first = sessions.create(1, "10.0.0.5", "Firefox");
  auto second = sessions.create(1, "10.0.0.7", "Chromium");
  ASSERT_TRUE(first.ok() && second.ok());
  const std::string a = first->session.id, b = second->session.id;
  create_ok(a, kKey1, secret_a_);
  EXPECT_EQ(grants().create(b, kKey1, key_secret_, secret_b_, "10.0.0.7", "").code(),
            Errc::key_in_use);
  // Flow 6: session b confirms, the other grant is stopped, a is told at its next request.
  auto other = grants().live_for_key(kKey1);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->session_short_id, first->session.short_id);
  ASSERT_TRUE(grants().revoke(other->id, Revoker::other_session(b, "10.0.0.7")).ok());
  create_ok(b, kKey1, secret_b_);
  auto told = sessions.take_notice(a);
  ASSERT_TRUE(told);
  EXPECT_NE(told->find("by a sign-in from 10.0.0.7"), std::string::npos) << *told;
  EXPECT_FALSE(sessions.take_notice(b));

  // Logout ends the session's grants.
  ASSERT_TRUE(sessions.end(b).ok());
  EXPECT_FALSE(grants().live_for_key(kKey1));

  // A session that expires on resume takes its grants with it.
  create_ok(a, kKey2, secret_a_);
  clock_.advance(config_.session_idle_timeout + 1s);
  EXPECT_EQ(sessions.resume(first->token.view()).code(), Errc::expired);
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 0);
}

TEST_P(GrantTest, ListingsAndBanner) {
  create_ok(kSessionA1, kKey1, secret_a_);
  clock_.advance(10s);
  create_ok(kSessionA1, kKey2, secret_a_);
  create_ok(kSessionB1, kKey3, secret_b_);
  auto mine = grants().for_session(kSessionA1);
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0].key_id, kKey1);
  EXPECT_EQ(mine[1].key_id, kKey2);
  EXPECT_EQ(mine[0].seconds_left(clock_.now()), 590);
  auto all = grants().list(std::nullopt);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  auto alice = grants().list(std::string("alice"));
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->size(), 2u);
  EXPECT_EQ(grants().list(std::string("nobody")).code(), Errc::not_found);
  // Expired grants not yet purged: listed for admins (as expired), hidden from pages.
  clock_.advance(595s);
  touch_session(kSessionA1);
  EXPECT_EQ(grants().for_session(kSessionA1).size(), 1u);
  EXPECT_FALSE(grants().for_session_and_key(kSessionA1, kKey1));
  EXPECT_FALSE(grants().live_for_key(kKey1));
  auto listed = grants().list(std::string("alice"));
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_FALSE((*listed)[0].live(clock_.now()));
  EXPECT_EQ((*listed)[0].seconds_left(clock_.now()), 0);
}

TEST_P(GrantTest, PurgeRemovesOnlyDeadGrants) {
  create_ok(kSessionA1, kKey1, secret_a_);  // will go idle
  create_ok(kSessionB1, kKey3, secret_b_);  // will be orphaned
  clock_.advance(300s);
  touch_session(kSessionA2);
  create_ok(kSessionA2, kKey2, secret_b_);                       // stays live
  ASSERT_TRUE(grants().use(kSessionB1, kKey3, secret_b_).ok());  // not idle, but see below
  clock_.advance(300s);                                          // key 1's grant: idle for 600 s
  touch_session(kSessionA1);
  touch_session(kSessionA2);
  // A grant whose session row vanished without the cascade (foreign keys off).
  delete_session_without_cascade(kSessionB1);

  auto dry = grants().purge(store::PurgeMode::dry_run);
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(*dry, 2);
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 3);

  auto real = grants().purge(store::PurgeMode::remove);
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(*real, 2);
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 1);
  EXPECT_EQ(audit_count("grant.expire", "expired"), 2);
  EXPECT_TRUE(grants().use(kSessionA2, kKey2, secret_b_).ok());
  EXPECT_EQ(*grants().purge(store::PurgeMode::remove), 0);
  EXPECT_FALSE(notice(kSessionA1));
}

TEST_P(GrantTest, PurgeLeavesAGrantJustUsedAlone) {
  create_ok(kSessionA1, kKey1, secret_a_);
  clock_.advance(599s);
  ASSERT_TRUE(grants().use(kSessionA1, kKey1, secret_a_).ok());
  clock_.advance(1s);  // 600 s after creation, 1 s after use
  EXPECT_EQ(*grants().purge(store::PurgeMode::remove), 0);
  EXPECT_TRUE(grants().use(kSessionA1, kKey1, secret_a_).ok());
}

TEST_P(GrantTest, DatabaseFilesHoldNoSecretAndForgetRevokedBlobs) {
  if (GetParam() != store::Engine::sqlite)
    GTEST_SKIP() << "reads SQLite's database and WAL files";
  auto g = create_ok(kSessionA1, kKey1, secret_a_);
  auto cookie = encode_grant_cookie(secret_a_);
  const std::string db_path = path(), wal_path = path() + "-wal";
  std::string files = read_raw(db_path) + read_raw(wal_path);
  ASSERT_FALSE(files.empty());
  EXPECT_FALSE(contains(files, key_secret_.bytes()));
  EXPECT_FALSE(contains(files, secret_a_.bytes()));
  EXPECT_FALSE(contains(files, cookie.bytes()));

  std::vector<std::uint8_t> wrapped;
  {
    auto st = db().prepare("SELECT wrapped FROM grants WHERE id = ?");
    st.bind(1, g.id);
    ASSERT_TRUE(st.step());
    wrapped = st.column_blob(0);
  }
  ASSERT_GT(wrapped.size(), 32u);
  // The search works: the sealed blob is there, in the WAL and, after a checkpoint,
  // in the main file.
  EXPECT_TRUE(contains(files, wrapped));
  db().exec("PRAGMA wal_checkpoint(TRUNCATE)");
  EXPECT_TRUE(contains(read_raw(db_path), wrapped));

  ASSERT_TRUE(grants().use(kSessionA1, kKey1, secret_a_).ok());  // more page copies in the WAL
  ASSERT_TRUE(grants().revoke(g.id, Revoker::admin("test")).ok());
  files = read_raw(db_path) + read_raw(wal_path);
  EXPECT_FALSE(contains(files, wrapped));
  db().exec("PRAGMA wal_checkpoint(TRUNCATE)");
  EXPECT_FALSE(contains(read_raw(db_path), wrapped));
}

TEST_P(GrantTest, FindKeyByFingerprintOrPrefix) {
  EXPECT_EQ(*grants().find_key(kFpr1), kKey1);
  EXPECT_EQ(*grants().find_key("aaaa1111 bbbb2222"), kKey1);
  EXPECT_EQ(*grants().find_key("0x0123456789abcdef"), kKey3);
  EXPECT_EQ(grants().find_key("AAAA1111").code(), Errc::invalid_argument);  // two keys
  EXPECT_EQ(grants().find_key("FFFFFFFF").code(), Errc::not_found);
  EXPECT_EQ(grants().find_key("AAAA").code(), Errc::invalid_argument);  // too short
  EXPECT_EQ(grants().find_key("AAAA1111%").code(), Errc::invalid_argument);
}

TEST(GrantCookie, EncodesAsBase64UrlAndRoundTrips) {
  // Expected values from Python's base64.urlsafe_b64encode without padding.
  std::vector<std::uint8_t> bytes(32);
  for (int i = 0; i < 32; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  auto secret = util::SecretBuffer::copy_of(bytes);
  auto cookie = encode_grant_cookie(secret);
  EXPECT_EQ(cookie.view(), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
  for (int i = 0; i < 32; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(224 + i);
  auto high = util::SecretBuffer::copy_of(bytes);
  EXPECT_EQ(encode_grant_cookie(high).view(), "4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8");
  auto back = decode_grant_cookie("4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->equals(high));

  auto fresh = new_grant_secret();
  EXPECT_EQ(fresh.size(), 32u);
  EXPECT_FALSE(fresh.equals(new_grant_secret()));
  auto round = decode_grant_cookie(encode_grant_cookie(fresh).view());
  ASSERT_TRUE(round.ok());
  EXPECT_TRUE(round->equals(fresh));
}

TEST(GrantCookie, RefusesDamagedValues) {
  EXPECT_EQ(decode_grant_cookie("").code(), Errc::invalid_argument);
  EXPECT_EQ(decode_grant_cookie("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh").code(),
            Errc::invalid_argument);  // 42 characters
  EXPECT_EQ(decode_grant_cookie("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").code(),
            Errc::invalid_argument);  // padded
  EXPECT_EQ(decode_grant_cookie("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+").code(),
            Errc::invalid_argument);  // base64, not base64url
  EXPECT_EQ(decode_grant_cookie("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9").code(),
            Errc::invalid_argument);  // non-zero trailing bits
}

WMK_INSTANTIATE_ON_BOTH_ENGINES(GrantTest);

}  // namespace
}  // namespace wmk::grant

namespace wmk::grant {

// SessionStore::rotate moves a session's grants to its new id (after an unlock):
// sealed again under the new id, so they open there and nowhere else; a grant the
// given secret does not open is dropped.
TEST_P(GrantTest, RebindSessionResealsUnderTheNewIdOnly) {
  create_ok(kSessionA1, kKey1, secret_a_);
  const std::string new_id(64, 'e');
  store::Transaction tx(db());
  db().defer_foreign_keys();
  db().prepare("UPDATE sessions SET id = ? WHERE id = ?").bind_all(new_id, kSessionA1).run();
  auto moved = grants().rebind_session(kSessionA1, new_id, secret_a_);
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(*moved, 1);
  tx.commit();

  auto secret = grants().use(new_id, kKey1, secret_a_);
  ASSERT_TRUE(secret.ok()) << secret.error().message;
  EXPECT_TRUE(secret->equals(key_secret_));
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::not_found);

  // The blob is bound to the new id: put back under the old one, it no longer opens.
  store::Transaction tx2(db());
  db().defer_foreign_keys();
  db().prepare("UPDATE sessions SET id = ? WHERE id = ?").bind_all(kSessionA1, new_id).run();
  db().prepare("UPDATE grants SET session_id = ? WHERE session_id = ?")
      .bind_all(kSessionA1, new_id)
      .run();
  tx2.commit();
  EXPECT_EQ(grants().use(kSessionA1, kKey1, secret_a_).code(), Errc::revoked);
}

TEST_P(GrantTest, RebindSessionDropsGrantsTheSecretDoesNotOpen) {
  create_ok(kSessionA1, kKey1, secret_a_);
  const std::string new_id(64, 'f');
  store::Transaction tx(db());
  db().defer_foreign_keys();
  db().prepare("UPDATE sessions SET id = ? WHERE id = ?").bind_all(new_id, kSessionA1).run();
  auto moved = grants().rebind_session(kSessionA1, new_id, secret_b_);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, 0);
  tx.commit();
  EXPECT_EQ(count("SELECT count(*) FROM grants"), 0);
  EXPECT_EQ(audit_count("grant.use", "fail"), 1);
}

}  // namespace wmk::grant

#include "core/session/session.h"

#include <gtest/gtest.h>

#include <set>

#include "core/audit/audit.h"
#include "core/auth/users.h"
#include "core/util/encoding.h"
#include "tests/unit/db_fixture.h"

namespace wmk::session {

namespace {

using std::chrono::seconds;

class SessionTest : public test::DbTest {
 protected:
  void SetUp() override {
    test::DbTest::SetUp();
    if (HasFatalFailure() || IsSkipped())
      return;
    cfg.session_idle_timeout = seconds(1800);
    cfg.session_absolute_timeout = seconds(43200);
    sessions.emplace(*db, clock, cfg);
    auth::UserStore users(*db, clock);
    auto a = users.add("alice", "alice@example.org", "", util::SecretBuffer::copy_of("x"),
                       crypto::KdfParams{64, 1, 1});
    ASSERT_TRUE(a.ok());
    alice = a->id;
    auto b = users.add("bob", "bob@example.org", "", util::SecretBuffer::copy_of("x"),
                       crypto::KdfParams{64, 1, 1});
    ASSERT_TRUE(b.ok());
    bob = b->id;
  }
  std::string token_of(const NewSession& ns) { return std::string(ns.token.view()); }
  std::int64_t count(const std::string& table) {
    auto st = db->prepare("SELECT count(*) FROM " + table);
    st.step();
    return st.column_int(0);
  }
  void add_grant(const std::string& session_id) {
    db->prepare(
          "INSERT INTO keys (fingerprint, user_id, type, algorithm, created, kdf, kdf_params, "
          "kdf_salt, wrapped_secret) VALUES (?, ?, 'openpgp', 'ed25519', 1, 'argon2id', "
          "'m=64,t=1,p=1', x'00', x'00')")
        .bind_all("FPR-" + session_id, alice)
        .run();
    db->prepare(
          "INSERT INTO grants (id, key_id, session_id, wrapped, created, last_used, expires) "
          "VALUES (?, (SELECT id FROM keys WHERE fingerprint = ?), ?, x'00', 1, 1, 2)")
        .bind_all("g-" + session_id, "FPR-" + session_id, session_id)
        .run();
  }
  config::Config cfg;
  std::optional<SessionStore> sessions;
  std::int64_t alice = 0, bob = 0;
};

}  // namespace

TEST_P(SessionTest, CreateStoresOnlyTheTokensHash) {
  auto ns = sessions->create(alice, "192.0.2.1", "Firefox");
  ASSERT_TRUE(ns.ok()) << ns.error().message;
  const std::string token = token_of(*ns);
  EXPECT_EQ(token.size(), 43u);
  auto raw = util::base64url_decode(token);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_EQ(util::base64url_encode(*raw), token);  // the canonical encoding
  // The id is SHA-256 of the token, computed here independently.
  EXPECT_EQ(ns->session.id, util::sha256_hex(token));
  EXPECT_EQ(ns->session.short_id.size(), 8u);
  EXPECT_TRUE(util::hex_decode(ns->session.short_id));
  EXPECT_EQ(ns->session.login, "alice");
  EXPECT_EQ(ns->session.expires, clock.now() + 1800);
  EXPECT_GE(ns->session.csrf_token.size(), 32u);

  // Nothing in the sessions table equals the token.
  auto st = db->prepare(
      "SELECT count(*) FROM sessions WHERE id = ?1 OR short_id = ?1 OR csrf_token = ?1 OR "
      "replace(id || short_id || csrf_token || client_addr || user_agent, ?1, '') <> "
      "id || short_id || csrf_token || client_addr || user_agent");
  st.bind(1, token);
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.column_int(0), 0);

  EXPECT_EQ(sessions->create(9999, "", "").code(), Errc::not_found);
}

TEST_P(SessionTest, TokensAndShortIdsAreDistinct) {
  std::set<std::string> tokens, ids;
  for (int i = 0; i < 20; ++i) {
    auto ns = sessions->create(alice, "", "");
    ASSERT_TRUE(ns.ok());
    tokens.insert(token_of(*ns));
    ids.insert(ns->session.short_id);
  }
  EXPECT_EQ(tokens.size(), 20u);
  EXPECT_EQ(ids.size(), 20u);
}

TEST_P(SessionTest, ResumeMovesLastSeen) {
  auto ns = sessions->create(alice, "192.0.2.1", "UA");
  ASSERT_TRUE(ns.ok());
  clock.advance(seconds(100));
  auto s = sessions->resume(token_of(*ns));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->id, ns->session.id);
  EXPECT_EQ(s->login, "alice");
  EXPECT_EQ(s->client_addr, "192.0.2.1");
  EXPECT_EQ(s->user_agent, "UA");
  EXPECT_EQ(s->last_seen, clock.now());
  EXPECT_EQ(s->created, clock.now() - 100);
  EXPECT_EQ(s->expires, clock.now() + 1800);
  EXPECT_EQ(sessions->list()[0].last_seen, clock.now());
}

TEST_P(SessionTest, UnknownAndMalformedTokens) {
  auto ns = sessions->create(alice, "", "");
  ASSERT_TRUE(ns.ok());
  std::string t = token_of(*ns);
  t[0] = t[0] == 'A' ? 'B' : 'A';
  EXPECT_EQ(sessions->resume(t).code(), Errc::not_found);
  EXPECT_EQ(sessions->resume("").code(), Errc::not_found);
  EXPECT_EQ(sessions->resume("short").code(), Errc::not_found);
  EXPECT_EQ(sessions->resume(ns->session.id).code(), Errc::not_found);  // the hash is no token
  EXPECT_EQ(sessions->resume(std::string(43, '!')).code(), Errc::not_found);
}

TEST_P(SessionTest, IdleTimeoutExpiresAndDeletes) {
  auto ns = sessions->create(alice, "", "");
  ASSERT_TRUE(ns.ok());
  add_grant(ns->session.id);
  clock.advance(seconds(1800));  // exactly at the limit: still alive
  ASSERT_TRUE(sessions->resume(token_of(*ns)).ok());
  clock.advance(seconds(1801));
  auto r = sessions->resume(token_of(*ns));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::expired);
  EXPECT_EQ(count("sessions"), 0);
  EXPECT_EQ(count("grants"), 0);  // the grant went with its session
  EXPECT_EQ(sessions->resume(token_of(*ns)).code(), Errc::not_found);
  auto log = audit::AuditLog(*db, clock).query({});
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log[0].event.event, audit::event::kSessionExpire);
  EXPECT_EQ(log[0].event.session, ns->session.short_id);
  EXPECT_EQ(log[0].event.login, "alice");
}

TEST_P(SessionTest, AbsoluteTimeoutExpiresEvenWhenActive) {
  auto ns = sessions->create(alice, "", "");
  ASSERT_TRUE(ns.ok());
  for (int i = 0; i < 43200 / 1000; ++i) {
    clock.advance(seconds(1000));
    ASSERT_TRUE(sessions->resume(token_of(*ns)).ok()) << i;
  }
  clock.advance(seconds(43200 - (43200 / 1000) * 1000));  // exactly 12 h
  auto at_limit = sessions->resume(token_of(*ns));
  ASSERT_TRUE(at_limit.ok());
  EXPECT_EQ(at_limit->expires, at_limit->created + 43200);
  clock.advance(seconds(1));
  EXPECT_EQ(sessions->resume(token_of(*ns)).code(), Errc::expired);
  EXPECT_EQ(count("sessions"), 0);
}

TEST_P(SessionTest, DisabledUserIsRefusedAndSessionEnded) {
  auto ns = sessions->create(alice, "", "");
  ASSERT_TRUE(ns.ok());
  add_grant(ns->session.id);
  auth::UserStore users(*db, clock);
  ASSERT_TRUE(users.set_disabled("alice", auth::AccountState::disabled).ok());
  EXPECT_EQ(sessions->resume(token_of(*ns)).code(), Errc::disabled);
  EXPECT_EQ(count("sessions"), 0);
  EXPECT_EQ(count("grants"), 0);
}

TEST_P(SessionTest, EndKillAndKillForLogin) {
  auto a1 = sessions->create(alice, "", "");
  auto a2 = sessions->create(alice, "", "");
  auto b1 = sessions->create(bob, "", "");
  ASSERT_TRUE(a1.ok() && a2.ok() && b1.ok());
  add_grant(a1->session.id);

  ASSERT_TRUE(sessions->end(a1->session.id).ok());
  EXPECT_EQ(sessions->resume(token_of(*a1)).code(), Errc::not_found);
  EXPECT_EQ(count("grants"), 0);
  EXPECT_EQ(sessions->end(a1->session.id).code(), Errc::not_found);
  EXPECT_EQ(audit::AuditLog(*db, clock).query({})[0].event.event, audit::event::kLogout);

  auto k = sessions->kill(b1->session.short_id);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(*k, 1);
  EXPECT_EQ(sessions->resume(token_of(*b1)).code(), Errc::not_found);
  EXPECT_EQ(sessions->kill(b1->session.short_id).code(), Errc::not_found);

  auto b2 = sessions->create(bob, "", "");
  auto a3 = sessions->create(alice, "", "");
  ASSERT_TRUE(b2.ok() && a3.ok());
  auto n = sessions->kill_for_login("alice");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  EXPECT_TRUE(sessions->resume(token_of(*b2)).ok());
  EXPECT_EQ(sessions->resume(token_of(*a2)).code(), Errc::not_found);
  EXPECT_EQ(*sessions->kill_for_login("alice"), 0);
  EXPECT_EQ(sessions->kill_for_login("nobody").code(), Errc::not_found);
}

TEST_P(SessionTest, ListNewestFirstWithLogin) {
  auto a = sessions->create(alice, "192.0.2.1", "A");
  clock.advance(seconds(5));
  auto b = sessions->create(bob, "192.0.2.2", "B");
  ASSERT_TRUE(a.ok() && b.ok());
  auto all = sessions->list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].login, "bob");
  EXPECT_EQ(all[0].short_id, b->session.short_id);
  EXPECT_EQ(all[1].login, "alice");
  EXPECT_EQ(all[1].expires, all[1].created + 1800);
}

TEST_P(SessionTest, PurgeDeletesOnlyExpired) {
  auto old_idle = sessions->create(alice, "", "");
  ASSERT_TRUE(old_idle.ok());
  add_grant(old_idle->session.id);
  clock.advance(seconds(1000));
  auto live = sessions->create(bob, "", "");
  ASSERT_TRUE(live.ok());
  add_grant(live->session.id);
  clock.advance(seconds(1000));  // old_idle: 2000 s idle; live: 1000 s
  EXPECT_EQ(sessions->purge(store::PurgeMode::dry_run), 1);
  EXPECT_EQ(count("sessions"), 2);
  EXPECT_EQ(sessions->purge(store::PurgeMode::remove), 1);
  EXPECT_EQ(count("sessions"), 1);
  EXPECT_EQ(count("grants"), 1);
  EXPECT_TRUE(sessions->resume(token_of(*live)).ok());
  EXPECT_EQ(sessions->purge(store::PurgeMode::remove), 0);
  auto log = audit::AuditLog(*db, clock).query({});
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log[0].event.event, audit::event::kSessionExpire);
  EXPECT_EQ(log[0].event.session, old_idle->session.short_id);
}

TEST_P(SessionTest, NoticeIsDeliveredOnce) {
  auto ns = sessions->create(alice, "", "");
  ASSERT_TRUE(ns.ok());
  EXPECT_FALSE(sessions->take_notice(ns->session.id));
  ASSERT_TRUE(sessions->set_notice(ns->session.id, "first").ok());
  ASSERT_TRUE(
      sessions->set_notice(ns->session.id, "your key's grant was stopped from another session")
          .ok());
  auto n = sessions->take_notice(ns->session.id);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, "your key's grant was stopped from another session");
  EXPECT_FALSE(sessions->take_notice(ns->session.id));
  EXPECT_EQ(sessions->set_notice("nope", "x").code(), Errc::not_found);
  EXPECT_FALSE(sessions->take_notice("nope"));
}

// What another module has to tell a session (core/grant, when it stops the session's
// unlock) goes through SessionStore, the owner of the sessions table.
TEST_P(SessionTest, AppendedNoticesAddLinesAndAFullOneIsReplaced) {
  auto ns = sessions->create(alice, "", "");
  ASSERT_TRUE(ns.ok());
  SessionStore::append_notice(*db, ns->session.id, "first\x01line");
  SessionStore::append_notice(*db, ns->session.id, "second line");
  auto n = sessions->take_notice(ns->session.id);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, "first?line\nsecond line");  // control bytes cleaned, as set_notice does
  ASSERT_TRUE(sessions->set_notice(ns->session.id, std::string(801, 'x')).ok());
  SessionStore::append_notice(*db, ns->session.id, "newest");
  EXPECT_EQ(sessions->take_notice(ns->session.id), std::optional<std::string>("newest"));
  SessionStore::append_notice(*db, "gone", "nobody to tell");  // no error
  EXPECT_FALSE(sessions->take_notice("gone"));
}

TEST_P(SessionTest, CsrfMatches) {
  auto ns = sessions->create(alice, "", "");
  ASSERT_TRUE(ns.ok());
  const Session& s = ns->session;
  EXPECT_TRUE(SessionStore::csrf_matches(s, s.csrf_token));
  std::string wrong = s.csrf_token;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  EXPECT_FALSE(SessionStore::csrf_matches(s, wrong));
  EXPECT_FALSE(SessionStore::csrf_matches(s, ""));
  EXPECT_FALSE(SessionStore::csrf_matches(s, s.csrf_token + "x"));
  Session empty;
  EXPECT_FALSE(SessionStore::csrf_matches(empty, ""));
  // Another session's token does not match.
  auto other = sessions->create(alice, "", "");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(SessionStore::csrf_matches(s, other->session.csrf_token));
}

TEST_P(SessionTest, RotateGivesANewTokenAndTheOldOneStopsWorking) {
  auto ns = sessions->create(alice, "192.0.2.1", "Firefox");
  ASSERT_TRUE(ns.ok());
  const Session before = ns->session;
  ASSERT_TRUE(sessions->set_notice(before.id, "hello").ok());
  std::string seen_old, seen_new;
  auto r = sessions->rotate(before, [&](const std::string& o, const std::string& n) {
    seen_old = o;
    seen_new = n;
    return Status{};
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->session.id, before.id);
  EXPECT_EQ(r->session.id, util::sha256_hex(r->token.view()));
  EXPECT_EQ(seen_old, before.id);
  EXPECT_EQ(seen_new, r->session.id);
  EXPECT_EQ(r->session.short_id, before.short_id);
  EXPECT_EQ(r->session.csrf_token, before.csrf_token);
  EXPECT_EQ(r->session.created, before.created);

  EXPECT_EQ(sessions->resume(token_of(*ns)).code(), Errc::not_found);
  auto again = sessions->resume(std::string(r->token.view()));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->id, r->session.id);
  EXPECT_EQ(sessions->take_notice(r->session.id).value_or(""), "hello");
  EXPECT_EQ(count("sessions"), 1);
  EXPECT_EQ(sessions->rotate(before, {}).code(), Errc::not_found);
}

TEST_P(SessionTest, RotateIsUndoneWhenRebindFails) {
  auto ns = sessions->create(alice, "192.0.2.1", "Firefox");
  ASSERT_TRUE(ns.ok());
  add_grant(ns->session.id);
  auto r = sessions->rotate(ns->session, [](const std::string&, const std::string&) {
    return Status{make_error(Errc::conflict, "no")};
  });
  EXPECT_EQ(r.code(), Errc::conflict);
  EXPECT_TRUE(sessions->resume(token_of(*ns)).ok());
  EXPECT_EQ(count("grants"), 1);
}

TEST_P(SessionTest, RotateWithGrantsLeftBehindIsRefusedByTheForeignKey) {
  auto ns = sessions->create(alice, "192.0.2.1", "Firefox");
  ASSERT_TRUE(ns.ok());
  add_grant(ns->session.id);
  // A rebind that forgets the grants: the commit fails and nothing changes.
  EXPECT_THROW((void)sessions->rotate(ns->session, {}), store::StoreError);
  EXPECT_TRUE(sessions->resume(token_of(*ns)).ok());
  EXPECT_EQ(count("grants"), 1);
}

// imap_login = user: the password is kept like a grant, sealed under a secret that only
// the browser's cookie holds. The row has neither the password nor the secret.
TEST_P(SessionTest, AKeptMailPasswordOpensOnlyWithItsCookieAndItsSession) {
  auto a = sessions->create(alice, "", "");
  auto b = sessions->create(bob, "", "");
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string password = "imap password 7f3a";
  auto secret = sessions->keep_mail_password(a->session, util::SecretBuffer::copy_of(password));
  ASSERT_TRUE(secret.ok()) << secret.error().message;
  EXPECT_EQ(secret->size(), kMailSecretSize);

  auto opened = sessions->mail_password(a->session, *secret);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(opened->view(), password);

  // Neither the password nor the secret is in the database.
  auto row = db->prepare("SELECT mail_password FROM sessions WHERE id = ?");
  row.bind(1, a->session.id);
  ASSERT_TRUE(row.step());
  auto sealed = row.column_blob(0);
  row.reset();
  std::string bytes(sealed.begin(), sealed.end());
  EXPECT_EQ(bytes.find(password), std::string::npos);
  EXPECT_EQ(bytes.find(std::string(secret->view())), std::string::npos);

  // Another secret does not open it; bob's session keeps nothing; the blob copied to
  // bob's row does not open there.
  EXPECT_EQ(sessions->mail_password(a->session, util::SecretBuffer::random(kMailSecretSize)).code(),
            Errc::bad_credentials);
  EXPECT_EQ(sessions->mail_password(b->session, *secret).code(), Errc::not_found);
  db->prepare("UPDATE sessions SET mail_password = ? WHERE id = ?")
      .bind_all(sealed, b->session.id)
      .run();
  EXPECT_EQ(sessions->mail_password(b->session, *secret).code(), Errc::bad_credentials);

  // A rotated session keeps it; logout ends it.
  auto rotated =
      sessions->rotate(a->session, [](const std::string&, const std::string&) { return Status{}; });
  ASSERT_TRUE(rotated.ok());
  auto again = sessions->mail_password(rotated->session, *secret);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->view(), password);
  ASSERT_TRUE(sessions->end(rotated->session.id).ok());
  EXPECT_EQ(sessions->mail_password(rotated->session, *secret).code(), Errc::not_found);
  EXPECT_EQ(sessions->keep_mail_password(rotated->session, util::SecretBuffer::copy_of("x")).code(),
            Errc::not_found);
}

WMK_INSTANTIATE_ON_BOTH_ENGINES(SessionTest);

}  // namespace wmk::session

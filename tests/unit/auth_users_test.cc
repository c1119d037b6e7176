#include "core/auth/users.h"

#include <gtest/gtest.h>

#include "core/config/config.h"

#include "tests/unit/db_fixture.h"

namespace wmk::auth {

namespace {

const crypto::KdfParams kFast{64, 1, 1};

util::SecretBuffer pw(std::string_view s) {
  return util::SecretBuffer::copy_of(s);
}

class UsersTest : public test::DbTest {
 protected:
  void SetUp() override {
    test::DbTest::SetUp();
    if (HasFatalFailure() || IsSkipped())
      return;
    users.emplace(*db, clock);
  }
  std::optional<UserStore> users;
};

}  // namespace

TEST(ValidateLogin, AcceptsAndRefuses) {
  EXPECT_TRUE(validate_login("alice").ok());
  EXPECT_TRUE(validate_login("a.b_c-9").ok());
  EXPECT_TRUE(validate_login("0day").ok());
  EXPECT_TRUE(validate_login(std::string(64, 'a')).ok());
  EXPECT_EQ(validate_login(std::string(65, 'a')).code(), Errc::invalid_argument);
  EXPECT_EQ(validate_login("").code(), Errc::invalid_argument);
  EXPECT_EQ(validate_login("Alice").code(), Errc::invalid_argument);
  EXPECT_EQ(validate_login("al ice").code(), Errc::invalid_argument);
  EXPECT_EQ(validate_login("a/b").code(), Errc::invalid_argument);
  EXPECT_EQ(validate_login("..").code(), Errc::invalid_argument);
  EXPECT_EQ(validate_login(".hidden").code(), Errc::invalid_argument);
  EXPECT_EQ(validate_login("-rf").code(), Errc::invalid_argument);
}

TEST(ValidateEmail, AcceptsAndRefuses) {
  EXPECT_TRUE(validate_email("alice@example.org").ok());
  EXPECT_TRUE(validate_email("a.b+tag@mail.example.co.uk").ok());
  EXPECT_TRUE(validate_email("root@localhost").ok());
  for (const char* bad :
       {"", "alice", "@example.org", "alice@", "a@b@c", "a..b@example.org", ".a@example.org",
        "a.@example.org", "-f@example.org", "a/b@example.org", "a b@example.org", "a@-x.org",
        "a@x-.org", "a@x..org", "a@x.org.", "a@exa_mple.org", "\"a\"@example.org"}) {
    EXPECT_EQ(validate_email(bad).code(), Errc::invalid_argument) << bad;
  }
  EXPECT_EQ(validate_email(std::string(65, 'a') + "@example.org").code(), Errc::invalid_argument);
}

TEST_P(UsersTest, AddFindAndList) {
  auto u = users->add("alice", "Alice@Example.ORG", "Alice A", pw("secret one"), kFast);
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_GT(u->id, 0);
  EXPECT_EQ(u->login, "alice");
  EXPECT_EQ(u->name, "Alice A");
  EXPECT_EQ(u->email, "Alice@example.org");  // domain lowercased, local part kept
  EXPECT_EQ(u->emails, std::vector<std::string>{"Alice@example.org"});
  EXPECT_FALSE(u->disabled);
  EXPECT_EQ(u->created, clock.now());

  ASSERT_TRUE(users->add("bob", "bob@example.org", "", pw("pw"), kFast).ok());
  auto by_login = users->find("alice");
  ASSERT_TRUE(by_login);
  EXPECT_EQ(by_login->id, u->id);
  auto by_id = users->find_by_id(u->id);
  ASSERT_TRUE(by_id);
  EXPECT_EQ(by_id->login, "alice");
  auto by_mail = users->find_by_email("alice@EXAMPLE.org");
  ASSERT_TRUE(by_mail);
  EXPECT_EQ(by_mail->login, "alice");
  EXPECT_FALSE(users->find("carol"));
  EXPECT_FALSE(users->find_by_id(9999));
  EXPECT_FALSE(users->find_by_email("carol@example.org"));

  auto all = users->list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].login, "alice");
  EXPECT_EQ(all[1].login, "bob");
  EXPECT_EQ(all[1].email, "bob@example.org");
}

TEST_P(UsersTest, RefusesDuplicatesAndBadInput) {
  ASSERT_TRUE(users->add("alice", "alice@example.org", "", pw("x"), kFast).ok());
  auto dup = users->add("alice", "other@example.org", "", pw("x"), kFast);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.code(), Errc::already_exists);
  EXPECT_NE(dup.error().message.find("alice"), std::string::npos);
  // The same address (in another case) for another user; nothing half-written.
  auto dup_mail = users->add("bob", "ALICE@example.org", "", pw("x"), kFast);
  ASSERT_FALSE(dup_mail.ok());
  EXPECT_EQ(dup_mail.code(), Errc::already_exists);
  EXPECT_FALSE(users->find("bob"));

  EXPECT_EQ(users->add("Bad", "b@example.org", "", pw("x"), kFast).code(), Errc::invalid_argument);
  EXPECT_EQ(users->add("bob", "nope", "", pw("x"), kFast).code(), Errc::invalid_argument);
  EXPECT_EQ(users->add("bob", "b@example.org", "", pw(""), kFast).code(), Errc::invalid_argument);
  EXPECT_EQ(users->add("bob", "b@example.org", "a\nb", pw("x"), kFast).code(),
            Errc::invalid_argument);
  EXPECT_EQ(users->list().size(), 1u);
}

TEST_P(UsersTest, PasswordIsStoredOnlyAsArgon2idHash) {
  ASSERT_TRUE(users->add("alice", "alice@example.org", "", pw("hunter2-marker"), kFast).ok());
  auto c = users->credential("alice");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->password_hash.rfind("$argon2id$", 0), 0u);
  EXPECT_EQ(c->password_hash.find("hunter2-marker"), std::string::npos);
  EXPECT_TRUE(crypto::verify_password(pw("hunter2-marker"), c->password_hash));
  EXPECT_FALSE(crypto::verify_password(pw("hunter3-marker"), c->password_hash));

  ASSERT_TRUE(users->set_password("alice", pw("new one"), kFast).ok());
  auto c2 = users->credential("alice");
  ASSERT_TRUE(c2);
  EXPECT_TRUE(crypto::verify_password(pw("new one"), c2->password_hash));
  EXPECT_FALSE(crypto::verify_password(pw("hunter2-marker"), c2->password_hash));
  EXPECT_EQ(users->set_password("nobody", pw("x"), kFast).code(), Errc::not_found);
  EXPECT_EQ(users->set_password("alice", pw(""), kFast).code(), Errc::invalid_argument);
  EXPECT_FALSE(users->credential("nobody"));
}

TEST_P(UsersTest, DisableEnable) {
  ASSERT_TRUE(users->add("alice", "alice@example.org", "", pw("x"), kFast).ok());
  ASSERT_TRUE(users->set_disabled("alice", AccountState::disabled).ok());
  EXPECT_TRUE(users->find("alice")->disabled);
  ASSERT_TRUE(users->set_disabled("alice", AccountState::enabled).ok());
  EXPECT_FALSE(users->find("alice")->disabled);
  EXPECT_EQ(users->set_disabled("nobody", AccountState::disabled).code(), Errc::not_found);
}

TEST_P(UsersTest, AddEmail) {
  ASSERT_TRUE(users->add("alice", "alice@example.org", "", pw("x"), kFast).ok());
  ASSERT_TRUE(users->add("bob", "bob@example.org", "", pw("x"), kFast).ok());
  ASSERT_TRUE(users->add_email("alice", "a.alias@example.net").ok());
  auto u = users->find("alice");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->email, "alice@example.org");
  EXPECT_EQ(u->emails, (std::vector<std::string>{"alice@example.org", "a.alias@example.net"}));
  EXPECT_EQ(users->find_by_email("a.alias@example.net")->login, "alice");
  EXPECT_EQ(users->add_email("bob", "A.Alias@example.net").code(), Errc::already_exists);
  EXPECT_EQ(users->add_email("nobody", "n@example.org").code(), Errc::not_found);
  EXPECT_EQ(users->add_email("bob", "bad").code(), Errc::invalid_argument);
}

TEST_P(UsersTest, RemoveCascadesToEverythingOfTheUser) {
  auto a = users->add("alice", "alice@example.org", "", pw("x"), kFast);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(users->add("bob", "bob@example.org", "", pw("x"), kFast).ok());
  ASSERT_TRUE(users->add_email("alice", "alias@example.org").ok());
  db->prepare(
        "INSERT INTO sessions (id, short_id, user_id, csrf_token, created, last_seen) "
        "VALUES ('s1', 'abcd0123', ?, 'c', 1, 1)")
      .bind(1, a->id)
      .run();
  db->prepare(
        "INSERT INTO keys (fingerprint, user_id, type, algorithm, created, kdf, kdf_params, "
        "kdf_salt, wrapped_secret) VALUES ('F1', ?, 'openpgp', 'ed25519', 1, 'argon2id', "
        "'m=64,t=1,p=1', x'00', x'00')")
      .bind(1, a->id)
      .run();
  db->prepare(
        "INSERT INTO grants (id, key_id, session_id, wrapped, created, last_used, expires) "
        "VALUES ('g1', (SELECT id FROM keys WHERE fingerprint = 'F1'), 's1', x'00', 1, 1, 2)")
      .run();

  ASSERT_TRUE(users->remove("alice").ok());
  EXPECT_FALSE(users->find("alice"));
  EXPECT_FALSE(users->find_by_email("alias@example.org"));
  for (const char* table : {"sessions", "keys", "grants"}) {
    auto st = db->prepare(std::string("SELECT count(*) FROM ") + table);
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.column_int(0), 0) << table;
  }
  {
    auto st = db->prepare("SELECT count(*) FROM user_emails");
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.column_int(0), 1);  // bob's
  }
  EXPECT_EQ(users->remove("alice").code(), Errc::not_found);
  // The address is free again.
  EXPECT_TRUE(users->add("alice2", "alice@example.org", "", pw("x"), kFast).ok());
}

}  // namespace wmk::auth

namespace wmk::auth {

TEST(PasswordPolicy, CountsCharactersNotBytesAndNamesTheKey) {
  config::Config cfg;
  cfg.password_min_length = 10;
  auto short_pw = util::SecretBuffer::copy_of("x");
  auto st = check_password_policy(cfg, short_pw);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Errc::invalid_argument);
  EXPECT_NE(st.error().message.find("password_min_length"), std::string::npos);
  EXPECT_NE(st.error().message.find("minimum is 10"), std::string::npos);
  // Nine umlauts are 18 bytes but nine characters: too short.
  EXPECT_FALSE(check_password_policy(cfg, util::SecretBuffer::copy_of(
                                              "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"
                                              "\xc3\xa4\xc3\xa4\xc3\xa4"))
                   .ok());
  EXPECT_TRUE(check_password_policy(cfg, util::SecretBuffer::copy_of("0123456789")).ok());
  cfg.password_min_length = 1;
  EXPECT_TRUE(check_password_policy(cfg, short_pw).ok());
}

WMK_INSTANTIATE_ON_BOTH_ENGINES(UsersTest);

}  // namespace wmk::auth

// mail::MailboxKeeper against a real Dovecot (tests/unit/dovecot_server.h): one request
// logs in to IMAP once, whatever reads the mailbox (the page and KeySession); a warm
// FastCGI worker's next request for the same user logs in no more, another user's logs
// in anew; a connection the server closed is replaced. The logins are counted in
// Dovecot's own log as well as by the keeper. Skipped, saying why, as imap_test.cc.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/config/config.h"
#include "core/mail/imap.h"
#include "core/mail/open_mailbox.h"
#include "core/session/session.h"
#include "core/webflow/key_session.h"
#include "tests/unit/dovecot_server.h"
#include "tests/unit/keys_test_util.h"

namespace wmk::mail {

namespace {

using test::Dovecot;

constexpr const char* kPlain =
    "From: Erin <erin@example.net>\nTo: user12@example.org\nSubject: Plain\n"
    "Message-ID: <kept-1@example.net>\n\nnothing secret here\n";

class KeptMailboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dovecot_ = test::start_dovecot(&why_); }
  static void TearDownTestSuite() { dovecot_.reset(); }

  void SetUp() override {
    WMK_REQUIRE_DOVECOT(dovecot_, why_);
    config::Config& c = env.app().config;
    c.mailbox = config::MailboxBackend::imap;
    c.imap_host = "localhost";
    c.imap_port = dovecot_->imaps_port();
    c.imap_tls = config::ImapTlsMode::imaps;
    c.imap_ca_file = dovecot_->ca_file();
    c.imap_user = "%u";
    c.imap_login = config::ImapLogin::master;
    c.imap_master_user = "master";
    c.imap_master_password_file = env.root() + "/master-password";
    test::spit(c.imap_master_password_file, std::string(test::kMasterPassword) + "\n");
    ASSERT_EQ(chmod(c.imap_master_password_file.c_str(), 0600), 0);
    auth::UserStore users(env.app().db, env.clock());
    const crypto::KdfParams cheap{64, 1, 1};
    auto pw = util::SecretBuffer::copy_of(std::string_view("login password"));
    for (const char* login : {"user12", "user13"}) {
      if (!users.find(login)) {
        ASSERT_TRUE(users.add(login, std::string(login) + "@example.org", login, pw, cheap).ok());
      }
    }
  }

  // Appends kPlain to user12's INBOX (logged in as user12 itself) and returns its id.
  std::string put_plain_message() {
    MailboxKeeper own;
    auto box = own.open(env.app().config, "user12", "user12@example.org", env.clock());
    EXPECT_TRUE(box.ok()) << box.error().message << "\n" << dovecot_->log();
    if (!box)
      return "";
    auto id = (*box)->store(Folder::inbox, kPlain, Flags{});
    EXPECT_TRUE(id.ok()) << id.error().message;
    return id.ok() ? *id : "";
  }

  // How many logins of login (through the master user) Dovecot has logged. Dovecot's
  // log process writes a moment after the login: waits up to 2 s for at least
  // `at_least`, then counts.
  static int dovecot_logins(const std::string& login, int at_least = 0) {
    const std::string needle = "Login: user=<" + login + ">";
    int n = 0;
    for (int i = 0; i < 40; ++i) {
      std::string log = dovecot_->log();
      n = 0;
      for (auto p = log.find(needle); p != std::string::npos; p = log.find(needle, p + 1))
        ++n;
      if (n >= at_least)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return n;
  }

  session::Session new_session(const std::string& login) {
    auth::UserStore users(env.app().db, env.clock());
    auto user = users.find(login);
    EXPECT_TRUE(user.has_value());
    session::SessionStore sessions(env.app().db, env.clock(), env.app().config);
    auto s = sessions.create(user->id, "192.0.2.1", "Browser");
    EXPECT_TRUE(s.ok());
    return s->session;
  }

  // One request as /decrypt makes it: the page opens the mailbox and reads the
  // message's entry; KeySession reads the message through the same keeper.
  void decrypt_like_request(MailboxKeeper& keeper, const std::string& id) {
    auto box = keeper.open(env.app().config, "user12", "user12@example.org", env.clock());
    ASSERT_TRUE(box.ok()) << box.error().message;
    ASSERT_TRUE((*box)->find(Folder::inbox, id).ok());
    webflow::KeySession ks(env.app(), new_session("user12"), std::nullopt, webflow::Client{},
                           &keeper);
    auto reading = ks.read(webflow::MessageRef{Folder::inbox, id});
    ASSERT_TRUE(reading.ok()) << reading.error().message;
    EXPECT_FALSE(reading->encrypted);
    EXPECT_EQ(reading->envelope.subject, "Plain");
    keeper.end_request(true, env.clock());
  }

  test::KeysEnv env;
  static inline std::unique_ptr<Dovecot> dovecot_;
  static inline std::string why_;
};

TEST_F(KeptMailboxTest, OneRequestLogsInOnceForThePageAndKeySession) {
  std::string id = put_plain_message();
  ASSERT_FALSE(id.empty());
  int before = dovecot_logins("user12");
  MailboxKeeper keeper;
  decrypt_like_request(keeper, id);
  EXPECT_EQ(keeper.opened(), 1u);
  EXPECT_EQ(dovecot_logins("user12", before + 1), before + 1) << dovecot_->log();

  // Without the request's keeper KeySession opens its own: the count above is real.
  webflow::KeySession alone(env.app(), new_session("user12"), std::nullopt, webflow::Client{});
  ASSERT_TRUE(alone.read(webflow::MessageRef{Folder::inbox, id}).ok());
  EXPECT_EQ(dovecot_logins("user12", before + 2), before + 2);
}

TEST_F(KeptMailboxTest, WarmWorkerReusesTheSameUsersConnectionAndLogsInAnotherAnew) {
  std::string id = put_plain_message();
  ASSERT_FALSE(id.empty());
  int before12 = dovecot_logins("user12");
  int before13 = dovecot_logins("user13");
  MailboxKeeper worker;
  decrypt_like_request(worker, id);
  env.clock().advance(std::chrono::seconds(5));
  decrypt_like_request(worker, id);  // warm: no login
  EXPECT_EQ(worker.opened(), 1u);
  EXPECT_EQ(dovecot_logins("user12", before12 + 2), before12 + 1) << dovecot_->log();

  // Another user: the kept connection is logged out, a new one logged in.
  auto other = worker.open(env.app().config, "user13", "user13@example.org", env.clock());
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_TRUE((*other)->list(Folder::inbox).ok());
  worker.end_request(true, env.clock());
  EXPECT_EQ(worker.opened(), 2u);
  EXPECT_EQ(dovecot_logins("user13", before13 + 1), before13 + 1);

  // Back to user12: logs in anew (at most one kept connection).
  decrypt_like_request(worker, id);
  EXPECT_EQ(worker.opened(), 3u);
  EXPECT_EQ(dovecot_logins("user12", before12 + 2), before12 + 2);
}

TEST_F(KeptMailboxTest, IdleTimeErrorsAndUserLoginDropTheConnection) {
  std::string id = put_plain_message();
  ASSERT_FALSE(id.empty());
  config::Config& c = env.app().config;
  c.imap_keep_seconds = std::chrono::seconds(60);
  MailboxKeeper worker;
  decrypt_like_request(worker, id);
  env.clock().advance(std::chrono::seconds(61));  // idle past imap_keep_seconds
  decrypt_like_request(worker, id);
  EXPECT_EQ(worker.opened(), 2u);

  // A request that ended in an error does not leave its connection for the next.
  ASSERT_TRUE(worker.open(c, "user12", "user12@example.org", env.clock()).ok());
  worker.end_request(false, env.clock());
  decrypt_like_request(worker, id);
  EXPECT_EQ(worker.opened(), 3u);

  // imap_keep_seconds = 0: nothing kept.
  c.imap_keep_seconds = std::chrono::seconds(0);
  decrypt_like_request(worker, id);
  decrypt_like_request(worker, id);
  EXPECT_EQ(worker.opened(), 5u);

  // imap_login = user: one login per request (the page and KeySession share it), but
  // none kept: the next request must bring the password its own mail cookie opens.
  c.imap_keep_seconds = std::chrono::seconds(60);
  c.imap_login = config::ImapLogin::user;
  auto password = util::SecretBuffer::copy_of(test::user_password(12));
  for (int request = 0; request < 2; ++request) {
    auto a = worker.open(c, "user12", "user12@example.org", env.clock(), &password);
    ASSERT_TRUE(a.ok()) << a.error().message;
    auto b = worker.open(c, "user12", "user12@example.org", env.clock(), &password);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(a->get(), b->get());
    worker.end_request(true, env.clock());
  }
  EXPECT_EQ(worker.opened(), 7u);
  // Without the password a request gets no mailbox, kept or not.
  EXPECT_EQ(worker.open(c, "user12", "user12@example.org", env.clock()).code(),
            Errc::bad_credentials);
}

TEST_F(KeptMailboxTest, ConnectionTheServerClosedIsReplacedWithoutAnError) {
  std::string id = put_plain_message();
  ASSERT_FALSE(id.empty());
  MailboxKeeper worker;
  decrypt_like_request(worker, id);
  dovecot_->stop();  // ends the imap processes too: the server closes the connection
  dovecot_->start();
  decrypt_like_request(worker, id);  // NOOP fails; a fresh login reads the message
  EXPECT_EQ(worker.opened(), 2u);
}

}  // namespace

}  // namespace wmk::mail

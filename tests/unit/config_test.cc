#include "core/config/config.h"

#include <gtest/gtest.h>

namespace wmk::config {

TEST(Config, DefaultsWhenEmpty) {
  auto c = parse("", "test.conf");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->grant_idle_timeout.count(), 600);
  EXPECT_EQ(c->grant_absolute_timeout.count(), 7200);
  EXPECT_FALSE(c->allow_insecure_http);
}

TEST(Config, ParsesValuesAndComments) {
  auto c = parse(
      "# comment\n[web]\ndata_dir = /srv/wmk\nallow_insecure_http = yes\n"
      "grant_idle_timeout = 30 \n; other\n",
      "t.conf");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->data_dir, "/srv/wmk");
  EXPECT_TRUE(c->allow_insecure_http);
  EXPECT_EQ(c->grant_idle_timeout.count(), 30);
  EXPECT_EQ(c->database_path(), "/srv/wmk/webmailkey.db");
}

TEST(Config, RefusesBadValuesWithLineAndReason) {
  auto c = parse("data_dir = relative\nfrobnicate = 1\ngrant_idle_timeout = -3\nno equals\n",
                 "bad.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.code(), Errc::config);
  const auto& m = c.error().message;
  EXPECT_NE(m.find("bad.conf:1: data_dir: expected an absolute path"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.conf:2: unknown key `frobnicate`"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.conf:3: grant_idle_timeout"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.conf:4: expected `key = value`"), std::string::npos) << m;
}

// The login hash never defaults below OWASP's Argon2id minimum (19 MiB, t=2).
TEST(Config, PasswordHashDefaultsToOwaspMinimumOrAbove) {
  auto c = parse("", "test.conf");
  ASSERT_TRUE(c.ok());
  EXPECT_GE(c->password_memory_kib, 19u * 1024);
  EXPECT_GE(c->password_iterations, 2u);
}

TEST(Config, WorkerMaxRequestsIsAPositiveCount) {
  auto c = parse("worker_max_requests = 7\n", "w.conf");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->worker_max_requests, 7u);
  EXPECT_EQ(parse("", "w.conf")->worker_max_requests, 500u);
  auto bad = parse("worker_max_requests = 0\n", "w.conf");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("w.conf:1: worker_max_requests"), std::string::npos)
      << bad.error().message;
}

TEST(Config, RefusesDuplicateKeysAndInconsistentTimeouts) {
  auto c = parse("page_size = 10\npage_size = 20\n", "d.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("already set on line 1"), std::string::npos);
  auto t = parse("grant_idle_timeout = 900\ngrant_absolute_timeout = 100\n", "t.conf");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("longer than grant_absolute_timeout"), std::string::npos);
}

TEST(Config, RenderedDefaultsParseBackIdentically) {
  Config c;
  c.data_dir = "/x/y";
  auto back = parse(render(c), "r.conf");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(render(*back), render(c));
}

TEST(Config, ExpandsMaildirPattern) {
  Config c;
  c.data_dir = "/d";
  c.maildir = "/var/vmail/%d/%n/Maildir";
  EXPECT_EQ(maildir_for(c, "alice", "alice.x@example.org"),
            "/var/vmail/example.org/alice.x/Maildir");
  c.maildir = "%h/mail/%u/Maildir";
  EXPECT_EQ(maildir_for(c, "alice", "a@b"), "/d/mail/alice/Maildir");
}

}  // namespace wmk::config

#include "core/config/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>

#include "core/util/fs.h"
#include "core/util/utf8.h"
#include "tests/unit/mail_test_tools.h"
#include "tests/unit/test_util.h"

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

namespace wmk::config {

// Every key of the table is in the rendered file, the reference and describe(), and a
// file setting every key to its rendered value parses: one table feeds all three.
TEST(ConfigReference, EveryKeyRendersDocumentsAndParses) {
  Config c;
  c.data_dir = "/srv/w";
  c.password_min_length = 12;
  const auto keys = describe(c);
  ASSERT_GE(keys.size(), 19u);
  const std::string rendered = render(c);
  const std::string reference = reference_markdown();
  for (const KeyInfo& k : keys) {
    EXPECT_NE(rendered.find("\n" + k.name + " = " + k.value + "\n"), std::string::npos) << k.name;
    EXPECT_NE(reference.find("| `" + k.name + "` |"), std::string::npos) << k.name;
    EXPECT_FALSE(k.help.empty()) << k.name;
  }
  auto back = parse(rendered, "r.conf");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->password_min_length, 12u);
  EXPECT_EQ(back->data_dir, "/srv/w");
  EXPECT_NE(reference.find("| `sendmail` | `/usr/sbin/sendmail` |"), std::string::npos);
}

// docs/admin-guide.md's configuration reference is the generated table, byte for
// byte: run scripts/gen-docs after changing a key.
TEST(ConfigReference, AdminGuideIsCurrent) {
  auto guide = util::read_file(std::string(WEBMAILKEY_SOURCE_DIR) + "/docs/admin-guide.md");
  ASSERT_TRUE(guide.ok());
  const std::string begin_marker = "<!-- config-reference:begin";
  auto b = guide->find(begin_marker);
  ASSERT_NE(b, std::string::npos) << "markers missing in docs/admin-guide.md";
  b = guide->find("-->\n", b);
  ASSERT_NE(b, std::string::npos);
  b += 4;
  auto e = guide->find("<!-- config-reference:end -->", b);
  ASSERT_NE(e, std::string::npos);
  EXPECT_EQ(guide->substr(b, e - b), reference_markdown())
      << "docs/admin-guide.md is stale: run scripts/gen-docs";
}

TEST(ConfigCheck, SendmailMissingOrNotExecutableIsAProblem) {
  Config c;
  c.data_dir = "/";
  c.sendmail = "/bin/sh";
  EXPECT_TRUE(check_environment(c).empty());
  c.sendmail = "/nonexistent/sendmail";
  auto p = check_environment(c);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("sendmail: /nonexistent/sendmail does not exist"), std::string::npos) << p[0];
  c.sendmail = "/etc/passwd";  // a file, not executable
  p = check_environment(c);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("not an executable"), std::string::npos) << p[0];
  c.sendmail = "/bin/sh";
  c.data_dir = "/nonexistent/data";
  p = check_environment(c);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("data_dir"), std::string::npos);
}

TEST(Config, ImapMailboxNeedsHostAndMasterLogin) {
  auto c = parse("mailbox = imap\n", "m.conf");
  ASSERT_FALSE(c.ok());
  const auto& m = c.error().message;
  EXPECT_NE(m.find("m.conf:1: mailbox = imap needs imap_host"), std::string::npos) << m;
  EXPECT_NE(m.find("needs imap_master_user"), std::string::npos) << m;
  EXPECT_NE(m.find("needs imap_master_password_file"), std::string::npos) << m;

  // The user's own password needs no master user.
  auto user = parse("mailbox = imap\nimap_host = imap.example.org\nimap_login = user\n", "u.conf");
  ASSERT_TRUE(user.ok()) << user.error().message;
  EXPECT_EQ(user->imap_login, config::ImapLogin::user);

  auto good = parse(
      "mailbox = imap\nimap_host = imap.example.org\nimap_tls = starttls\n"
      "imap_master_user = webmail\nimap_master_password_file = /etc/webmailkey/imap-master\n"
      "imap_user = %n@%d\n",
      "g.conf");
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->mailbox, MailboxBackend::imap);
  EXPECT_EQ(good->imap_port_or_default(), 143);
  EXPECT_EQ(imap_user_for(*good, "alice", "alice@example.org"), "alice@example.org");
  EXPECT_FALSE(parse("mailbox = pop3\n", "p.conf").ok());
  EXPECT_FALSE(parse("imap_tls = none\n", "t.conf").ok());
  EXPECT_FALSE(parse("imap_master_user = a*b\n", "s.conf").ok());
  // Maildir (the default) needs none of the IMAP keys.
  EXPECT_EQ(parse("", "d.conf")->mailbox, MailboxBackend::maildir);
}

TEST(ConfigCheck, ImapMasterPasswordFileReadableByEveryoneIsRefused) {
  test::TempDir dir;
  Config c;
  c.data_dir = "/";
  c.sendmail = "/bin/sh";
  c.mailbox = MailboxBackend::imap;
  c.imap_host = "localhost";
  c.imap_master_user = "master";
  c.imap_master_password_file = dir.path() + "/pw";
  auto p = check_environment(c);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("cannot be read"), std::string::npos) << p[0];

  test::write_test_file(c.imap_master_password_file, "s3cret\n");
  ::chmod(c.imap_master_password_file.c_str(), 0644);
  p = check_environment(c);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("readable by every user"), std::string::npos) << p[0];
  EXPECT_EQ(p[0].find("s3cret"), std::string::npos);
  EXPECT_EQ(imap_master_password(c).code(), Errc::config);

  ::chmod(c.imap_master_password_file.c_str(), 0640);
  EXPECT_TRUE(check_environment(c).empty());
  auto pw = imap_master_password(c);
  ASSERT_TRUE(pw.ok()) << pw.error().message;
  EXPECT_EQ(pw->view(), "s3cret");  // the first line, without its newline
}

TEST(Config, PasswordMinLengthIsAKeyWithBounds) {
  auto c = parse("password_min_length = 4\n", "p.conf");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->password_min_length, 4u);
  EXPECT_EQ(Config{}.password_min_length, 10u);
  EXPECT_FALSE(parse("password_min_length = 0\n", "p.conf").ok());
}

TEST(Config, KeyPassphraseMinLengthCanRaiseButNotLowerTheFloor) {
  auto c = parse("key_passphrase_min_length = 16\n", "p.conf");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->key_passphrase_min_length, 16u);
  EXPECT_EQ(Config{}.key_passphrase_min_length, 8u);
  auto low = parse("key_passphrase_min_length = 7\n", "p.conf");
  ASSERT_FALSE(low.ok());
  EXPECT_NE(low.error().message.find("key_passphrase_min_length"), std::string::npos)
      << low.error().message;
}

}  // namespace wmk::config

// Issue 12: a garbage config (random bytes, NUL, invalid UTF-8, terminal controls) is
// refused with messages that are valid UTF-8, free of control characters, and bounded.
TEST(Config, GarbageIsRefusedWithSafeBoundedMessages) {
  std::string garbage;
  std::uint32_t x = 1212;
  for (int i = 0; i < 64 * 1024; ++i) {
    x = x * 1103515245u + 12345u;
    garbage += static_cast<char>((x >> 16) & 0xff);
  }
  garbage += "\nkey\x1b[2J = \xc3\x28\0\n";
  auto c = wmk::config::parse(garbage, "garbage.conf");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.error().message;
  EXPECT_TRUE(wmk::util::valid_utf8(m)) << m;
  for (char ch : m)
    EXPECT_TRUE(ch == '\n' || static_cast<unsigned char>(ch) >= 0x20) << int(ch);
  EXPECT_EQ(m.find('\x7f'), std::string::npos);
  EXPECT_LE(std::count(m.begin(), m.end(), '\n'), 20);
  EXPECT_NE(m.find("garbage.conf:1:"), std::string::npos);
  EXPECT_NE(m.find("more problems"), std::string::npos);
}

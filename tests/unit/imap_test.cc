// ImapClient against a real Dovecot that the suite starts on loopback with its own
// config, a test CA and a server certificate made by openssl, and stops at the end.
// Skipped, saying why, where Dovecot is not installed (scripts/setup installs it) or
// the tests do not run as root (Dovecot's mail processes run as the dovecot user).

#include "core/mail/imap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "tests/unit/dovecot_server.h"
#include "tests/unit/mail_test_tools.h"
#include "tests/unit/test_util.h"

namespace wmk::mail {
namespace {

using test::Dovecot;
using test::free_port;
using test::kMasterPassword;
using test::port_open;
using test::user_name;
using test::user_password;

// Three messages as a mail client writes them (RFC 5322, CRLF line ends), fixed
// bytes from outside the code under test.
const std::string kMessages[] = {
    "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: first\r\n"
    "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n"
    "Hello Bob.\r\n",
    "From: Carol <carol@example.org>\r\nTo: bob@example.org\r\nSubject: second\r\n"
    "Date: Tue, 03 Mar 2026 11:00:00 +0100\r\nMessage-ID: <2@example.org>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9f"
    "e aus K\xc3\xb6ln.\r\n\r\n-- \r\nCarol\r\n",
    "From: Dave <dave@example.org>\r\nTo: bob@example.org\r\nSubject: third\r\n"
    "Date: Wed, 04 Mar 2026 12:00:00 -0500\r\nMessage-ID: <3@example.org>\r\n\r\n"
    "Line one\r\nLine two\r\n",
};

std::string header_block(const std::string& message) {
  return message.substr(0, message.find("\r\n\r\n") + 4);
}

class ImapTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dovecot_ = test::start_dovecot(&why_); }
  static void TearDownTestSuite() { dovecot_.reset(); }
  void SetUp() override { WMK_REQUIRE_DOVECOT(dovecot_, why_); }

  static ImapServer server(ImapTls tls = ImapTls::implicit, std::string host = "localhost") {
    ImapServer s;
    s.host = std::move(host);
    s.tls = tls;
    s.port = tls == ImapTls::implicit ? dovecot_->imaps_port() : dovecot_->imap_port();
    s.extra_ca_file = dovecot_->ca_file();
    return s;
  }

  // A logged-in client for user i (each test uses its own users: no shared state).
  static ImapClient logged_in(int i) {
    auto c = ImapClient::connect(server());
    if (!c)
      throw std::runtime_error("connect: " + c.error().message + "\n" + dovecot_->log());
    auto st = c->login(user_name(i), util::SecretBuffer::copy_of(user_password(i)));
    if (!st)
      throw std::runtime_error("login: " + st.error().message + "\n" + dovecot_->log());
    return std::move(c).value();
  }

  static std::vector<std::uint32_t> append_all(ImapClient& c, Folder folder) {
    std::vector<std::uint32_t> uids;
    for (const std::string& m : kMessages) {
      auto uid = c.append(folder, m, Flags{});
      if (!uid || !uid->has_value())
        throw std::runtime_error("append failed");
      uids.push_back(**uid);
    }
    return uids;
  }

  static inline std::unique_ptr<Dovecot> dovecot_;
  static inline std::string why_;
};

TEST_F(ImapTest, RefusesCertificateFromUntrustedCa) {
  ImapServer s = server();
  s.extra_ca_file.clear();  // the system store does not hold the test CA
  auto c = ImapClient::connect(s);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.code(), Errc::crypto);
  EXPECT_NE(c.error().message.find("does not verify"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("issuer"), std::string::npos) << c.error().message;
}

TEST_F(ImapTest, RefusesCertificateForAnotherHostName) {
  // The certificate names "localhost" only; the same server reached as 127.0.0.1.
  auto c = ImapClient::connect(server(ImapTls::implicit, "127.0.0.1"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.code(), Errc::crypto);
  EXPECT_NE(c.error().message.find("mismatch"), std::string::npos) << c.error().message;
}

TEST_F(ImapTest, StartTlsVerifiesTheCertificateToo) {
  ImapServer s = server(ImapTls::starttls);
  s.extra_ca_file.clear();
  auto bad = ImapClient::connect(s);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.code(), Errc::crypto) << bad.error().message;

  auto good = ImapClient::connect(server(ImapTls::starttls));
  ASSERT_TRUE(good) << good.error().message;
  auto st = good->login(user_name(0), util::SecretBuffer::copy_of(user_password(0)));
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_TRUE(good->select(Folder::inbox));
}

TEST_F(ImapTest, MissingCaFileIsAConfigError) {
  ImapServer s = server();
  s.extra_ca_file = "/nonexistent/ca.pem";
  auto c = ImapClient::connect(s);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.code(), Errc::config);
}

TEST_F(ImapTest, LoginWithWrongPasswordIsBadCredentials) {
  auto c = ImapClient::connect(server());
  ASSERT_TRUE(c) << c.error().message;
  auto st = c->login(user_name(1), util::SecretBuffer::copy_of("not-the-password"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.code(), Errc::bad_credentials);
  EXPECT_EQ(st.error().message.find("not-the-password"), std::string::npos);
}

TEST_F(ImapTest, MasterUserLogsInAsTheUser) {
  ImapClient own = logged_in(2);
  ASSERT_TRUE(own.append(Folder::inbox, kMessages[0], Flags{}));

  auto c = ImapClient::connect(server());
  ASSERT_TRUE(c) << c.error().message;
  auto st = c->login(user_name(2) + "*master", util::SecretBuffer::copy_of(kMasterPassword));
  ASSERT_TRUE(st) << st.error().message;
  auto list = c->list(Folder::inbox);
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->size(), 1u);  // user2's mailbox, not the master's
  auto bytes = c->read(Folder::inbox, list->front().uid);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, kMessages[0]);

  auto wrong = ImapClient::connect(server());
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->login(user_name(2) + "*master", util::SecretBuffer::copy_of("nope")).code(),
            Errc::bad_credentials);
}

TEST_F(ImapTest, AppendListAndReadBackByteExact) {
  ImapClient c = logged_in(3);
  EXPECT_TRUE(c.has_uidplus());
  auto before = c.select(Folder::inbox);
  ASSERT_TRUE(before) << before.error().message;
  EXPECT_EQ(before->exists, 0u);
  EXPECT_NE(before->uidvalidity, 0u);

  std::vector<std::uint32_t> uids = append_all(c, Folder::inbox);
  ASSERT_EQ(uids.size(), 3u);
  EXPECT_LT(uids[0], uids[1]);
  EXPECT_LT(uids[1], uids[2]);

  auto list = c.list(Folder::inbox);
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->size(), 3u);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  for (std::size_t i = 0; i < 3; ++i) {
    const ImapMessage& m = (*list)[i];
    EXPECT_EQ(m.uid, uids[i]);
    EXPECT_EQ(m.size, kMessages[i].size());
    EXPECT_EQ(m.flags.letters(), "");
    EXPECT_NEAR(static_cast<double>(m.internal_date), static_cast<double>(now), 120.0);
    EXPECT_GT(m.modseq, 0u);  // CONDSTORE

    auto bytes = c.read(Folder::inbox, uids[i]);
    ASSERT_TRUE(bytes) << bytes.error().message;
    EXPECT_EQ(*bytes, kMessages[i]);
  }

  auto heads = c.headers(Folder::inbox, {uids[2], uids[0], 999999});
  ASSERT_TRUE(heads) << heads.error().message;
  ASSERT_EQ(heads->size(), 2u);
  EXPECT_EQ((*heads)[0].uid, uids[0]);
  EXPECT_EQ((*heads)[0].bytes, header_block(kMessages[0]));
  EXPECT_EQ((*heads)[1].bytes, header_block(kMessages[2]));

  auto prefixes = c.read_prefixes(Folder::inbox, uids, 40);
  ASSERT_TRUE(prefixes);
  ASSERT_EQ(prefixes->size(), 3u);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_EQ((*prefixes)[i].bytes, kMessages[i].substr(0, 40));

  // Reading does not mark anything seen (BODY.PEEK).
  auto after = c.list(Folder::inbox);
  ASSERT_TRUE(after);
  for (const ImapMessage& m : *after)
    EXPECT_FALSE(m.flags.has(Flag::seen));
}

TEST_F(ImapTest, ReadOfMissingUidIsNotFound) {
  ImapClient c = logged_in(4);
  auto r = c.read(Folder::inbox, 42);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::not_found);
  EXPECT_EQ(c.set_flag(Folder::inbox, 42, Flag::seen, true).code(), Errc::not_found);
  EXPECT_EQ(c.remove(Folder::inbox, 42).code(), Errc::not_found);
}

TEST_F(ImapTest, FlagsSetAndClearedShowInTheList) {
  ImapClient c = logged_in(5);
  std::vector<std::uint32_t> uids = append_all(c, Folder::inbox);
  for (Flag f : {Flag::seen, Flag::flagged, Flag::replied, Flag::draft, Flag::passed})
    ASSERT_TRUE(c.set_flag(Folder::inbox, uids[1], f, true));
  auto list = c.list(Folder::inbox);
  ASSERT_TRUE(list);
  EXPECT_EQ((*list)[0].flags.letters(), "");
  EXPECT_EQ((*list)[1].flags.letters(), "DFPRS");
  EXPECT_EQ((*list)[2].flags.letters(), "");

  ASSERT_TRUE(c.set_flag(Folder::inbox, uids[1], Flag::flagged, false));
  ASSERT_TRUE(c.set_flag(Folder::inbox, uids[1], Flag::passed, false));
  ASSERT_TRUE(c.set_flag(Folder::inbox, uids[1], Flag::seen, true));  // idempotent
  // A second connection sees what the server stored.
  ImapClient other = logged_in(5);
  auto again = other.list(Folder::inbox);
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)[1].flags.letters(), "DRS");
}

TEST_F(ImapTest, RemoveExpungesOnlyThatMessage) {
  ImapClient c = logged_in(6);
  std::vector<std::uint32_t> uids = append_all(c, Folder::inbox);
  ASSERT_TRUE(c.set_flag(Folder::inbox, uids[2], Flag::trashed, true));  // not expunged by remove
  auto st = c.remove(Folder::inbox, uids[0]);
  ASSERT_TRUE(st) << st.error().message;
  auto list = c.list(Folder::inbox);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].uid, uids[1]);
  EXPECT_EQ((*list)[1].uid, uids[2]);
  EXPECT_EQ(c.read(Folder::inbox, uids[0]).code(), Errc::not_found);
}

TEST_F(ImapTest, EnsureCreatesSentAndDraftsForAppend) {
  ImapClient c = logged_in(7);
  auto missing = c.select(Folder::drafts);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.code(), Errc::not_found);
  EXPECT_EQ(c.append(Folder::sent, kMessages[0], Flags{Flag::seen}).code(), Errc::not_found);

  ASSERT_TRUE(c.ensure());
  ASSERT_TRUE(c.ensure());  // idempotent
  auto sent = c.append(Folder::sent, kMessages[0], Flags{Flag::seen});
  ASSERT_TRUE(sent) << sent.error().message;
  auto draft = c.append(Folder::drafts, kMessages[1], Flags{Flag::draft, Flag::seen});
  ASSERT_TRUE(draft) << draft.error().message;

  auto drafts = c.list(Folder::drafts);
  ASSERT_TRUE(drafts);
  ASSERT_EQ(drafts->size(), 1u);
  EXPECT_EQ(drafts->front().uid, **draft);
  EXPECT_EQ(drafts->front().flags.letters(), "DS");
  auto bytes = c.read(Folder::drafts, **draft);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, kMessages[1]);
  auto sent_list = c.list(Folder::sent);
  ASSERT_TRUE(sent_list);
  ASSERT_EQ(sent_list->size(), 1u);
  EXPECT_EQ(sent_list->front().flags.letters(), "S");
  auto inbox = c.list(Folder::inbox);
  ASSERT_TRUE(inbox);
  EXPECT_TRUE(inbox->empty());
}

TEST_F(ImapTest, ChangesSinceReportsOnlyTheChangedMessage) {
  ImapClient c = logged_in(8);
  ASSERT_TRUE(c.has_condstore());
  std::vector<std::uint32_t> uids = append_all(c, Folder::inbox);
  auto state = c.select(Folder::inbox);
  ASSERT_TRUE(state);
  ASSERT_TRUE(state->highest_modseq.has_value());
  std::uint64_t known = *state->highest_modseq;

  auto none = c.changes_since(Folder::inbox, known);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none->changed.empty());
  EXPECT_TRUE(none->vanished.empty());
  EXPECT_EQ(none->uidvalidity, state->uidvalidity);

  // Changed by another connection, as a second browser or a phone would.
  ImapClient other = logged_in(8);
  ASSERT_TRUE(other.set_flag(Folder::inbox, uids[1], Flag::seen, true));

  auto changes = c.changes_since(Folder::inbox, known);
  ASSERT_TRUE(changes) << changes.error().message;
  ASSERT_EQ(changes->changed.size(), 1u);
  EXPECT_EQ(changes->changed[0].uid, uids[1]);
  EXPECT_EQ(changes->changed[0].flags.letters(), "S");
  EXPECT_GT(changes->changed[0].modseq, known);
  EXPECT_GT(changes->highest_modseq, known);
  EXPECT_TRUE(changes->vanished.empty());

  // From the new high-water mark: nothing, until the next change.
  auto quiet = c.changes_since(Folder::inbox, changes->highest_modseq);
  ASSERT_TRUE(quiet);
  EXPECT_TRUE(quiet->changed.empty());

  if (c.has_qresync()) {
    ASSERT_TRUE(other.remove(Folder::inbox, uids[2]));
    auto gone = c.changes_since(Folder::inbox, changes->highest_modseq);
    ASSERT_TRUE(gone) << gone.error().message;
    EXPECT_TRUE(gone->vanished_known);
    EXPECT_TRUE(gone->changed.empty());
    EXPECT_EQ(gone->vanished, std::vector<std::uint32_t>{uids[2]});
  }
}

TEST_F(ImapTest, AppendRefusesMessageOverTheSizeCap) {
  ImapClient c = logged_in(9);
  std::string big(kMaxMessageBytes + 1, 'x');
  auto r = c.append(Folder::inbox, big, Flags{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::unsupported);
  auto list = c.list(Folder::inbox);
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
}

// A server that accepts the connection and never says a word.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(fd_, 8) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("cannot listen");
    port_ = ntohs(a.sin_port);
  }
  ~SilentServer() { close(fd_); }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// openssl s_server with the test server certificate: completes the TLS handshake and
// then never sends the IMAP greeting (its stdin, which it would send, stays open and
// empty).
class SilentTlsServer {
 public:
  explicit SilentTlsServer(const std::string& dir) : port_(free_port()) {
    int fds[2];
    if (pipe(fds) != 0)
      throw std::runtime_error("pipe failed");
    std::string accept = "127.0.0.1:" + std::to_string(port_);
    std::string cert = dir + "/server.pem";
    std::string key = dir + "/server.key";
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      dup2(fds[0], 0);
      close(fds[0]);
      close(fds[1]);
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept.c_str(), "-cert",
             cert.c_str(), "-key", key.c_str(), nullptr);
      _exit(127);
    }
    close(fds[0]);
    stdin_ = fds[1];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!port_open(port_)) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("openssl s_server did not listen");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~SilentTlsServer() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    close(stdin_);
  }
  SilentTlsServer(const SilentTlsServer&) = delete;
  SilentTlsServer& operator=(const SilentTlsServer&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_;
  pid_t pid_ = -1;
  int stdin_ = -1;
};

// Regression: the greeting's read timed out, then closing the TLS session waited a
// second timeout for the server's close_notify, and once the socket was shut down to
// avoid that, libetpan's write of the TLS close raised SIGPIPE and killed the process.
TEST_F(ImapTest, SilentServerAfterTlsGivesATimeoutErrorInOneWait) {
  SilentTlsServer silent(dovecot_->dir());
  ImapServer s = server();
  s.port = silent.port();
  s.timeout = std::chrono::seconds(2);
  auto start = std::chrono::steady_clock::now();
  {
    auto c = ImapClient::connect(s);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.code(), Errc::io) << c.error().message;
    EXPECT_NE(c.error().message.find("did not answer within 2 s while waiting for its greeting"),
              std::string::npos)
        << c.error().message;
  }  // the session is closed here
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(3500));
}

// Not an ImapTest: needs no Dovecot.
TEST(ImapTimeoutTest, SilentServerGivesATimeoutErrorInBoundedTime) {
  SilentServer silent;
  for (ImapTls tls : {ImapTls::implicit, ImapTls::starttls}) {
    ImapServer s;
    s.host = "127.0.0.1";
    s.port = silent.port();
    s.tls = tls;
    s.timeout = std::chrono::seconds(2);
    auto start = std::chrono::steady_clock::now();
    auto c = ImapClient::connect(s);
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(c);
    EXPECT_EQ(c.code(), Errc::io) << c.error().message;
    EXPECT_NE(c.error().message.find("did not answer within 2 s"), std::string::npos)
        << c.error().message;
    EXPECT_LT(took, std::chrono::milliseconds(3500));  // one timeout, not two
  }
}

TEST(ImapTimeoutTest, ClosedPortIsAnIoError) {
  std::uint16_t port = free_port();
  ImapServer s;
  s.host = "127.0.0.1";
  s.port = port;
  auto c = ImapClient::connect(s);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.code(), Errc::io);
  EXPECT_NE(c.error().message.find("cannot connect"), std::string::npos) << c.error().message;
}

}  // namespace
}  // namespace wmk::mail

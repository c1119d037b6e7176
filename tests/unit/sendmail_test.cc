// The sendmail transport against a real program: tests/fixtures/sendmail-capture.sh
// records the argv and stdin it was given.

#include "core/mail/sendmail.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/util/fs.h"
#include "tests/unit/mail_test_tools.h"

namespace wmk::mail {
namespace {

using test::fixture_path;
using test::read_test_file;
using test::write_test_file;

class SendmailTest : public ::testing::Test {
 protected:
  // A wrapper that runs the capture script with settings baked in (the transport
  // gives the program a clean environment) after recording that environment.
  std::string stand_in(const std::string& settings = "") {
    std::string path = dir_.path() + "/sendmail";
    write_test_file(path, "#!/bin/sh\nenv > " + dir_.path() + "/env\n" +
                              "SENDMAIL_CAPTURE_DIR=" + dir_.path() + " " + settings + " exec " +
                              fixture_path("sendmail-capture.sh") + " \"$@\"\n");
    chmod(path.c_str(), 0700);
    return path;
  }
  std::string script(const std::string& body) {
    std::string path = dir_.path() + "/script";
    write_test_file(path, "#!/bin/sh\n" + body + "\n");
    chmod(path.c_str(), 0700);
    return path;
  }
  std::vector<std::string> captured_args(int n = 1) {
    std::string raw = read_test_file(dir_.path() + "/" + std::to_string(n) + ".args");
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\0') {
        out.push_back(raw.substr(start, i - start));
        start = i + 1;
      }
    }
    return out;
  }
  bool captured(int n = 1) {
    return util::path_exists(dir_.path() + "/" + std::to_string(n) + ".args");
  }
  test::TempDir dir_;
};

TEST_F(SendmailTest, RunsProgramWithExactArgvAndMessageOnStdin) {
  SendmailTransport t(stand_in());
  std::string message = "From: a@example.org\nTo: b@example.net\n\nline\n.\nFrom x\n";
  auto st = t.send("alice@example.org", {"bob@example.net", "o'hara+x@example.ie"}, message);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(captured_args(), (std::vector<std::string>{"-i", "-f", "alice@example.org", "--",
                                                       "bob@example.net", "o'hara+x@example.ie"}));
  EXPECT_EQ(read_test_file(dir_.path() + "/1.message"), message);
}

TEST_F(SendmailTest, ArgvPutsEveryRecipientAfterDoubleDash) {
  auto argv = sendmail_argv("/usr/sbin/sendmail", "a@example.org", {"b@example.org"});
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ(*argv, (std::vector<std::string>{"/usr/sbin/sendmail", "-i", "-f", "a@example.org",
                                             "--", "b@example.org"}));
  EXPECT_EQ(sendmail_argv("sendmail", "a@example.org", {"b@example.org"}).code(), Errc::config);
  EXPECT_EQ(sendmail_argv("/usr/sbin/sendmail", "a@example.org", {}).code(),
            Errc::invalid_argument);
}

TEST_F(SendmailTest, InvalidAddressesNeverReachTheProgram) {
  SendmailTransport t(stand_in());
  for (auto [sender, rcpt] : std::vector<std::pair<std::string, std::string>>{
           {"alice@example.org", "-oQ/tmp/x@example.org"},
           {"-bs@example.org", "bob@example.net"},
           {"alice@example.org", "bob@example.net\nBcc: eve@evil.example"},
           {"alice@example.org", "bob@example.net -X/tmp/log"},
           {"alice@example.org", ""}}) {
    auto st = t.send(sender, {"ok@example.net", rcpt}, "Subject: x\n\nx\n");
    ASSERT_FALSE(st.ok()) << sender << " " << rcpt;
    EXPECT_EQ(st.code(), Errc::invalid_argument);
  }
  EXPECT_FALSE(captured());
  EXPECT_FALSE(util::path_exists(dir_.path() + "/env"));
}

TEST_F(SendmailTest, FailingProgramIsAnErrorSayingWhy) {
  SendmailTransport t(stand_in(
      "SENDMAIL_CAPTURE_EXIT=67 SENDMAIL_CAPTURE_STDERR='bob@example.net... User unknown'"));
  auto st = t.send("alice@example.org", {"bob@example.net"}, "Subject: x\n\nx\n");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Errc::io);
  EXPECT_NE(st.error().message.find("exit 67"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("addressee unknown"), std::string::npos);
  EXPECT_NE(st.error().message.find("User unknown"), std::string::npos);
  EXPECT_EQ(st.error().message.find('\n'), std::string::npos);
}

TEST_F(SendmailTest, MissingProgramIsAnError) {
  SendmailTransport t(dir_.path() + "/no-such-sendmail");
  auto st = t.send("alice@example.org", {"bob@example.net"}, "x\n");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Errc::io);
  EXPECT_NE(st.error().message.find("cannot start"), std::string::npos) << st.error().message;
}

TEST_F(SendmailTest, HungProgramIsStoppedAfterTheTimeout) {
  SendmailTransport t(script("exec sleep 30"), std::chrono::milliseconds(300));
  auto start = std::chrono::steady_clock::now();
  auto st = t.send("alice@example.org", {"bob@example.net"}, "x\n");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Errc::io);
  EXPECT_NE(st.error().message.find("did not finish"), std::string::npos) << st.error().message;
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST_F(SendmailTest, ProgramThatStopsReadingFailsWithoutKillingUs) {
  // Exits 0 at once without reading a large message: the write hits EPIPE.
  SendmailTransport t(script("exit 0"));
  std::string big(8 << 20, 'x');
  auto st = t.send("alice@example.org", {"bob@example.net"}, big);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Errc::io);
  EXPECT_NE(st.error().message.find("stopped reading"), std::string::npos) << st.error().message;
}

// Issue 12: killed while handing a message over, the sender must never leave the mail
// program a truncated message (with a pipe, its death is an early end of file and
// sendmail sends what it got). The stand-in waits until the sender is dead, then reads.
TEST_F(SendmailTest, AKilledSenderNeverHandsOverATruncatedMessage) {
  const std::string got = dir_.path() + "/got";
  SendmailTransport t(script("while kill -0 $PPID 2>/dev/null; do sleep 0.05; done\ncat > " + got +
                             ".part && mv " + got + ".part " + got));
  std::string big;
  for (int i = 0; big.size() < (4u << 20); ++i)
    big += "line " + std::to_string(i) + " of a large message\n";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    (void)t.send("alice@example.org", {"bob@example.net"}, big);
    ::_exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGKILL);
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  for (int i = 0; i < 200 && !util::path_exists(got); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(util::path_exists(got)) << "the mail program never finished reading";
  EXPECT_EQ(read_test_file(got).size(), big.size());
  EXPECT_TRUE(read_test_file(got) == big);
}

TEST_F(SendmailTest, LargeMessagePassesByteForByte) {
  SendmailTransport t(stand_in());
  std::string big;
  for (int i = 0; i < (3 << 20); ++i)
    big += static_cast<char>('a' + i % 26);
  ASSERT_TRUE(t.send("alice@example.org", {"bob@example.net"}, big).ok());
  EXPECT_EQ(read_test_file(dir_.path() + "/1.message"), big);
}

TEST_F(SendmailTest, ProgramGetsACleanEnvironment) {
  setenv("HTTP_X_EVIL", "() { :; }; echo pwned", 1);
  setenv("QUERY_STRING", "to=eve", 1);
  SendmailTransport t(stand_in());
  ASSERT_TRUE(t.send("alice@example.org", {"bob@example.net"}, "x\n").ok());
  unsetenv("HTTP_X_EVIL");
  unsetenv("QUERY_STRING");
  std::string env = read_test_file(dir_.path() + "/env");
  EXPECT_EQ(env.find("HTTP_X_EVIL"), std::string::npos) << env;
  EXPECT_EQ(env.find("QUERY_STRING"), std::string::npos) << env;
  EXPECT_NE(env.find("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), std::string::npos) << env;
}

}  // namespace
}  // namespace wmk::mail

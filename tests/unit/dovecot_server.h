#pragma once
// A real Dovecot IMAP server for the mail tests (tests/unit/imap_test.cc,
// tests/unit/mailbox_test.cc): its own dovecot.conf in a temporary directory, IMAPS and
// IMAP with STARTTLS (ssl = required) on free loopback ports, a CA and a server
// certificate for "localhost" made by openssl, users user0..user63 and a master user
// "master" in passwd-files, Maildirs in the temporary directory. Dovecot's mail
// processes run as the dovecot user, so the tests that use it need root.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tests/unit/test_util.h"

namespace wmk::test {

inline constexpr const char* kDovecot = "/usr/sbin/dovecot";
inline constexpr int kUsers = 64;
inline constexpr const char* kMasterPassword = "master-secret";

inline std::string user_name(int i) {
  return "user" + std::to_string(i);
}
inline std::string user_password(int i) {
  return "pw-" + std::to_string(i) + "-secret";
}

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();
// Whether something listens on 127.0.0.1:port.
bool port_open(std::uint16_t port);

struct DovecotOptions {
  // false: the server advertises neither CONDSTORE nor QRESYNC after login (its
  // imap_capability lists the rest), as an older or plainer IMAP server would, so a
  // client must fall back to comparing UID and flag lists.
  bool condstore = true;
};

// The capabilities the server advertises after login without CONDSTORE and QRESYNC.
inline constexpr const char* kPlainCapabilities =
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE UIDPLUS CHILDREN "
    "UNSELECT MOVE";

// Starts in the constructor (throws std::runtime_error saying why it could not) and
// stops in the destructor; a crashed test program leaves none behind.
class Dovecot {
 public:
  explicit Dovecot(DovecotOptions options = {});
  ~Dovecot();
  Dovecot(const Dovecot&) = delete;
  Dovecot& operator=(const Dovecot&) = delete;

  std::string ca_file() const { return dir_.path() + "/ca.pem"; }
  const std::string& dir() const { return dir_.path(); }
  std::uint16_t imaps_port() const { return imaps_port_; }
  std::uint16_t imap_port() const { return imap_port_; }
  // Stops the server (its mail stays), ending its imap processes too, so that open
  // connections are closed by the server as in a real restart; start() brings it back
  // on the same ports with the same users and mail. Both wait until the ports are
  // closed or open.
  void stop();
  void start();
  // What Dovecot wrote to its log and its standard output.
  std::string log() const;

 private:
  static void write(const std::string& path, std::string_view data);

  TempDir dir_;
  pid_t pid_ = -1;
  std::uint16_t imap_port_ = 0;
  std::uint16_t imaps_port_ = 0;
};

// Why the Dovecot tests cannot run here (not installed, not root), or nullopt.
std::optional<std::string> dovecot_unavailable();

// A Dovecot started for a test, or nullptr with the reason in *why: it cannot run here
// (dovecot_unavailable(): the test skips) or it did not start (the test fails). See
// WMK_REQUIRE_DOVECOT.
std::unique_ptr<Dovecot> start_dovecot(std::string* why, DovecotOptions options = {});

// In a test (or its SetUp): skips where Dovecot cannot run, and fails when dovecot (a
// start_dovecot() result) is null for another reason, given in why.
#define WMK_REQUIRE_DOVECOT(dovecot, why)                          \
  do {                                                             \
    if (auto wmk_no_dovecot_ = ::wmk::test::dovecot_unavailable()) \
      GTEST_SKIP() << *wmk_no_dovecot_;                            \
    ASSERT_TRUE((dovecot) != nullptr) << (why);                    \
  } while (0)

}  // namespace wmk::test

// Starts the test Dovecot of the unit tests (tests/unit/dovecot_server.h, the one
// fixture) for the end-to-end suites: prints one JSON line with its ports, CA file and
// directory, then runs until stdin closes (the suite's end) and stops it. Test-only.

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>

#include "tests/unit/dovecot_server.h"

int main() {
  if (auto why = wmk::test::dovecot_unavailable()) {
    std::printf("{\"unavailable\": \"%s\"}\n", why->c_str());
    return 0;
  }
  try {
    wmk::test::Dovecot dovecot;
    std::printf(
        "{\"imaps_port\": %u, \"imap_port\": %u, \"ca_file\": \"%s\", \"dir\": \"%s\", "
        "\"master\": \"master\", \"master_password\": \"%s\"}\n",
        dovecot.imaps_port(), dovecot.imap_port(), dovecot.ca_file().c_str(), dovecot.dir().c_str(),
        wmk::test::kMasterPassword);
    std::fflush(stdout);
    char buf[256];
    while (::read(STDIN_FILENO, buf, sizeof buf) > 0) {
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_dovecot: %s\n", e.what());
    return 1;
  }
  return 0;
}

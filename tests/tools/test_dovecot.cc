// Starts the test Dovecot of the unit tests (tests/unit/dovecot_server.h, the one
// fixture) for the end-to-end suites: prints one JSON line with its ports, CA file and
// directory, then runs until stdin closes (the suite's end) and stops it. A line "stop"
// or "start" on stdin stops the server or brings it back (same ports, same mail), and
// is answered with a line "stopped" or "started" once that is done. With
// --no-condstore the server advertises neither CONDSTORE nor QRESYNC. Test-only.

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "tests/unit/dovecot_server.h"

int main(int argc, char** argv) {
  wmk::test::DovecotOptions options;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-condstore") == 0) {
      options.condstore = false;
    } else {
      std::fprintf(stderr, "test_dovecot: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (auto why = wmk::test::dovecot_unavailable()) {
    std::printf("{\"unavailable\": \"%s\"}\n", why->c_str());
    return 0;
  }
  try {
    wmk::test::Dovecot dovecot(options);
    std::printf(
        "{\"imaps_port\": %u, \"imap_port\": %u, \"ca_file\": \"%s\", \"dir\": \"%s\", "
        "\"master\": \"master\", \"master_password\": \"%s\"}\n",
        dovecot.imaps_port(), dovecot.imap_port(), dovecot.ca_file().c_str(), dovecot.dir().c_str(),
        wmk::test::kMasterPassword);
    std::fflush(stdout);
    char line[64];
    while (std::fgets(line, sizeof line, stdin) != nullptr) {
      std::string command(line);
      if (command == "stop\n") {
        dovecot.stop();
        std::printf("stopped\n");
      } else if (command == "start\n") {
        dovecot.start();
        std::printf("started\n");
      } else {
        std::printf("unknown command\n");
      }
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_dovecot: %s\n", e.what());
    return 1;
  }
  return 0;
}

#pragma once
// Runs GnuPG's helper programs (gpgconf, gpg-agent --dump-options) without a shell.
// Internal to core/keys: nothing secret is ever passed this way.

#include <string>
#include <vector>

#include "core/util/result.h"

namespace wmk::keys::detail {

struct ProcessOutput {
  int exit_status = -1;  // the exit code, or -1 if killed by a signal
  std::string out;       // stdout, up to 1 MiB
};

// Runs argv[0] (looked up in PATH) with argv, stdin from /dev/null, stderr discarded,
// and waits. Errc::io if it cannot be started.
Result<ProcessOutput> run_process(const std::vector<std::string>& argv);

}  // namespace wmk::keys::detail

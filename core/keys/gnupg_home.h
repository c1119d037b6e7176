#pragma once
// The GnuPG home that holds the OpenPGP keys (config.gnupg_home()), and the
// gpg-agent that serves it. Its configuration is part of the security model
// (docs/security.md, "Key custody"): the agent never caches a passphrase, accepts
// passphrases only through loopback (GPGME's passphrase callback), and protects keys
// with a cheap S2K because their passphrase is a random 256-bit key secret.

#include <string>

#include "core/util/result.h"

namespace wmk::keys {

// How gpg-agent stretches passphrases when it protects a key in this home.
enum class S2kCost {
  cheap,       // s2k-count 65536: the passphrase is a 256-bit random key secret
  calibrated,  // gpg-agent's default (~100 ms): for a home protected by a human passphrase
};

// Creates dir (mode 0700) with gpg.conf and gpg-agent.conf enforcing the settings
// above, rewriting either file if it differs; if gpg-agent.conf changed, stops a
// running agent so the next use starts one with the new settings. Idempotent.
// Errc::io if the directory or files cannot be written.
Status ensure_gnupg_home(const std::string& dir, S2kCost cost = S2kCost::cheap);

// Ok if dir's gpg-agent.conf forbids caching and allows loopback; Errc::config
// (saying to run `webmailkey init`) otherwise, Errc::not_found if dir is missing.
Status check_gnupg_home(const std::string& dir);

// The gpg-agent.conf text that ensure_gnupg_home writes.
std::string agent_conf_text(S2kCost cost);

// The path of the agent socket for dir (from gpgconf). Errc::io if gpgconf fails.
Result<std::string> agent_socket_path(const std::string& dir);

// Starts dir's gpg-agent if it is not running. Errc::io if it cannot be started.
Status launch_agent(const std::string& dir);

// Stops dir's gpg-agent if it is running (gpgconf --kill). Errc::io if gpgconf fails.
Status stop_agent(const std::string& dir);

}  // namespace wmk::keys

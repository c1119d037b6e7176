#pragma once
// Reading a password or passphrase for a CLI command: only ever from standard input.
// From a pipe, the first line is the secret; on a terminal, it is asked for with the
// echo off (twice when a new secret is being set).

#include <string>

#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::cli {

enum class SecretUse { existing, new_secret };

// The secret from stdin. what names it in prompts and errors ("password",
// "passphrase"). Errc::invalid_argument when stdin gives an empty secret, the two
// entries on a terminal differ, or the line is too long.
Result<util::SecretBuffer> read_stdin_secret(const std::string& what, SecretUse use);

// One line from fd that may be empty (a key file without a passphrase); on a terminal
// it is asked for with prompt, the echo off. Errc::invalid_argument when the line
// cannot be read or is too long; what names the secret in that error.
Result<util::SecretBuffer> read_optional_secret(int fd, const std::string& what,
                                                const std::string& prompt);

}  // namespace wmk::cli

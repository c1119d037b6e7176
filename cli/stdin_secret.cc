#include "cli/stdin_secret.h"

#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <iostream>
#include <optional>
#include <stdexcept>

namespace wmk::cli {

namespace {

constexpr std::size_t kMaxSecret = 4096;

// Turns terminal echo off for its lifetime.
class NoEcho {
 public:
  explicit NoEcho(int fd) : fd_(fd) {
    if (tcgetattr(fd_, &saved_) == 0) {
      termios t = saved_;
      t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      active_ = tcsetattr(fd_, TCSAFLUSH, &t) == 0;
    }
  }
  ~NoEcho() {
    if (active_)
      tcsetattr(fd_, TCSAFLUSH, &saved_);
  }
  NoEcho(const NoEcho&) = delete;
  NoEcho& operator=(const NoEcho&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

Result<util::SecretBuffer> read_line(const std::string& what) {
  try {
    return util::read_secret_line(STDIN_FILENO, kMaxSecret);
  } catch (const std::runtime_error&) {
    return make_error(Errc::invalid_argument, "could not read the " + what +
                                                  " from standard input (longer than " +
                                                  std::to_string(kMaxSecret) + " bytes?)");
  }
}

Result<util::SecretBuffer> prompt(const std::string& text, const std::string& what) {
  std::cerr << text << std::flush;
  NoEcho no_echo(STDIN_FILENO);
  auto r = read_line(what);
  std::cerr << "\n";
  return r;
}

}  // namespace

Result<util::SecretBuffer> read_stdin_secret(const std::string& what, SecretUse use) {
  if (isatty(STDIN_FILENO) == 0) {
    auto s = read_line(what);
    if (!s)
      return s.error();
    if (s->empty()) {
      return make_error(Errc::invalid_argument,
                        "no " + what +
                            " on standard input: the first line of stdin must hold it, "
                            "e.g. printf '%s\\n' \"$SECRET\" | webmailkey ...; empty " +
                            what + "s are refused");
    }
    return s;
  }
  std::string label = what;
  if (!label.empty())
    label[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(label[0])));
  auto first = prompt(use == SecretUse::new_secret ? "New " + what + ": " : label + ": ", what);
  if (!first)
    return first.error();
  if (first->empty())
    return make_error(Errc::invalid_argument, "an empty " + what + " is not allowed");
  if (use == SecretUse::new_secret) {
    auto again = prompt("Repeat the " + what + ": ", what);
    if (!again)
      return again.error();
    if (!first->equals(*again))
      return make_error(Errc::invalid_argument, "the two " + what + "s differ");
  }
  return first;
}

Result<util::SecretBuffer> read_optional_secret(int fd, const std::string& what,
                                                const std::string& prompt) {
  std::optional<NoEcho> no_echo;
  if (isatty(fd) != 0) {
    std::cerr << prompt << std::flush;
    no_echo.emplace(fd);
  }
  try {
    auto s = util::read_secret_line(fd, kMaxSecret);
    if (no_echo)
      std::cerr << "\n";
    return s;
  } catch (const std::runtime_error&) {
    return make_error(Errc::invalid_argument,
                      "could not read the " + what + " from file descriptor " + std::to_string(fd));
  }
}

}  // namespace wmk::cli

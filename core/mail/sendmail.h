#pragma once
// Handing a finished message to the mail system: the sendmail-compatible program named
// in the config (Postfix's, Exim's, msmtp...), started without a shell as
//   PROGRAM -i -f SENDER -- RECIPIENT...
// after every address passed validate_address(), with the message on stdin. The
// Transport interface lets tests and other code put a fake in its place.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/result.h"

namespace wmk::mail {

// How long the program may take before it is killed and the send counts as failed.
inline constexpr std::chrono::seconds kSendmailTimeout{60};
// How much of the program's output (stdout and stderr) is kept for the error message.
inline constexpr std::size_t kMaxSendmailOutput = 4096;

// Something that delivers a message to its recipients.
class Transport {
 public:
  virtual ~Transport() = default;
  // Sends message (LF line ends) from the envelope sender to the recipients. Ok once the
  // mail system has accepted it. Errc::invalid_argument for an invalid address (nothing
  // is sent), Errc::io when the mail system refuses or fails, saying why.
  virtual Status send(const std::string& sender, const std::vector<std::string>& recipients,
                      std::string_view message) = 0;
};

// The argv for one submission: {program, "-i", "-f", sender, "--", recipients...}.
// Errc::invalid_argument if an address is invalid or there is no recipient;
// Errc::config if program is not an absolute path.
Result<std::vector<std::string>> sendmail_argv(const std::string& program,
                                               const std::string& sender,
                                               const std::vector<std::string>& recipients);

// Runs a sendmail-compatible program (posix_spawn, no shell, a minimal environment,
// no inherited descriptors but its stdin and output). Its stdin is an anonymous
// memory file holding the whole message, so a kill of this process never hands it a
// truncated one.
class SendmailTransport : public Transport {
 public:
  explicit SendmailTransport(std::string program,
                             std::chrono::milliseconds timeout = kSendmailTimeout);

  // Errc::io if the program cannot be started, exits non-zero or is killed (the message
  // names the exit status and quotes the start of what it printed), or times out.
  Status send(const std::string& sender, const std::vector<std::string>& recipients,
              std::string_view message) override;

 private:
  std::string program_;
  std::chrono::milliseconds timeout_;
};

}  // namespace wmk::mail

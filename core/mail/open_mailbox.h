#pragma once
// The one place that opens a user's mailbox from the config: the backend the config
// names (`mailbox = maildir|imap`), for the user with this login and primary address.

#include <cstdint>
#include <memory>
#include <string>

#include "core/config/config.h"
#include "core/mail/mailbox.h"
#include "core/util/clock.h"
#include "core/util/result.h"

namespace wmk::mail {

// The user's mailbox. Maildir: the `maildir` pattern's directory (nothing is touched
// yet). IMAP: a verified TLS connection to imap_host, logged in as the user through the
// master user (the password read from imap_master_password_file, kept no longer than
// the login), or with imap_login = user as the user with own_password (the session's
// kept mail password; Errc::bad_credentials when there is none). Errc::config for a
// config that cannot log in (the password file missing or readable by every user); Errc::io /
// Errc::crypto / Errc::bad_credentials as ImapClient::connect() and login().
Result<std::unique_ptr<Mailbox>> open_mailbox(const config::Config& config,
                                              const std::string& login, const std::string& email,
                                              const util::Clock& clock,
                                              const util::SecretBuffer* own_password = nullptr);

// The one owner of "the user's mailbox" for a request, and of the IMAP connection a
// FastCGI worker keeps between requests. Everything a request does with the mailbox
// (the page's listing and index, KeySession's reading) takes it from here, so a
// request opens it (TCP, TLS, LOGIN) at most once.
//
// Between requests (end_request) the connection is kept only when all hold: the
// request ended without an error, the config says mailbox = imap with
// imap_login = master, and imap_keep_seconds > 0. With imap_login = user nothing is
// kept: a kept connection would let a later request read the mail without the mail
// cookie that opens the user's sealed password. A kept connection is reused only by a
// request for the same IMAP user on the same server with the same login mode and
// master user, within imap_keep_seconds of the last use, and after a NOOP shows it
// still works; otherwise it is logged out (or abandoned) and a fresh one opened. At
// most one connection is kept. The request has already proved its session (the guard
// resumed it from the session cookie) before it asks for the mailbox.
class MailboxKeeper {
 public:
  MailboxKeeper() = default;
  MailboxKeeper(const MailboxKeeper&) = delete;
  MailboxKeeper& operator=(const MailboxKeeper&) = delete;
  ~MailboxKeeper() { drop(); }

  // The user's mailbox (as open_mailbox()): the one already open for this request or
  // kept from an earlier one as above, else opened now. The caller may hold it past a
  // later open() for another user; the keeper then holds only the newer one.
  Result<std::shared_ptr<Mailbox>> open(const config::Config& config, const std::string& login,
                                        const std::string& email, const util::Clock& clock,
                                        const util::SecretBuffer* own_password = nullptr);

  // The request is over. clean: it ended without an error (an error drops the
  // connection). Keeps the mailbox for the next request when the rules above allow,
  // else drops it.
  void end_request(bool clean, const util::Clock& clock);

  // Logs out and forgets the mailbox (a worker that recycles, a config reloaded).
  void drop();

  // How many times open() opened a mailbox (for IMAP: connected and logged in), since
  // the keeper was made: for tests and benchmarks.
  std::uint64_t opened() const { return opened_; }

 private:
  std::shared_ptr<Mailbox> box_;
  std::string key_;             // who the mailbox is for, and how it was opened
  bool keepable_ = false;       // the config allowed keeping it when it was opened
  bool in_request_ = false;     // open() ran in the request now in hand
  std::int64_t last_used_ = 0;  // clock seconds when the last request using it ended
  std::uint64_t opened_ = 0;
};

// The IMAP server the config names.
ImapServer imap_server(const config::Config& config);

}  // namespace wmk::mail

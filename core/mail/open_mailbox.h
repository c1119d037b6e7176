#pragma once
// The one place that opens a user's mailbox from the config: the backend the config
// names (`mailbox = maildir|imap`), for the user with this login and primary address.

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

// The IMAP server the config names.
ImapServer imap_server(const config::Config& config);

}  // namespace wmk::mail

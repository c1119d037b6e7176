#include "core/mail/open_mailbox.h"

namespace wmk::mail {

ImapServer imap_server(const config::Config& config) {
  ImapServer s;
  s.host = config.imap_host;
  s.port = config.imap_port_or_default();
  s.tls = config.imap_tls == config::ImapTlsMode::imaps ? ImapTls::implicit : ImapTls::starttls;
  s.extra_ca_file = config.imap_ca_file;
  return s;
}

Result<std::unique_ptr<Mailbox>> open_mailbox(const config::Config& config,
                                              const std::string& login, const std::string& email,
                                              const util::Clock& clock) {
  if (config.mailbox == config::MailboxBackend::maildir)
    return maildir_mailbox(Maildir(config::maildir_for(config, login, email), clock));
  if (config.imap_login != config::ImapLogin::master)
    return make_error(Errc::config, "imap_login = user is not yet supported");
  auto password = config::imap_master_password(config);
  if (!password)
    return password.error();
  // Dovecot's master user login: the user, the separator, the master.
  std::string as = config::imap_user_for(config, login, email) + "*" + config.imap_master_user;
  return imap_mailbox(imap_server(config), as, *password);
}

}  // namespace wmk::mail

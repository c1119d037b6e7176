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
                                              const util::Clock& clock,
                                              const util::SecretBuffer* own_password) {
  if (config.mailbox == config::MailboxBackend::maildir)
    return maildir_mailbox(Maildir(config::maildir_for(config, login, email), clock));
  if (config.imap_login == config::ImapLogin::user) {
    if (own_password == nullptr || own_password->empty())
      return make_error(Errc::bad_credentials,
                        "this session holds no mail password (the mail cookie is missing or "
                        "stale): log out and log in again");
    return imap_mailbox(imap_server(config), config::imap_user_for(config, login, email),
                        *own_password);
  }
  auto password = config::imap_master_password(config);
  if (!password)
    return password.error();
  // Dovecot's master user login: the user, the separator, the master.
  std::string as = config::imap_user_for(config, login, email) + "*" + config.imap_master_user;
  return imap_mailbox(imap_server(config), as, *password);
}

}  // namespace wmk::mail

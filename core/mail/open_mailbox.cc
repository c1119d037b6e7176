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

namespace {

// Who a mailbox is for and how it was opened: a kept connection is reused only for the
// same key.
std::string mailbox_key(const config::Config& config, const std::string& login,
                        const std::string& email) {
  std::string key = config.mailbox == config::MailboxBackend::maildir ? "maildir" : "imap";
  key += '\n' + login + '\n' + config::maildir_for(config, login, email);
  if (config.mailbox == config::MailboxBackend::imap) {
    key += '\n' + config.imap_host + ':' + std::to_string(config.imap_port_or_default());
    key += config.imap_login == config::ImapLogin::master ? "\nmaster\n" : "\nuser\n";
    key += config.imap_master_user + '\n' + config::imap_user_for(config, login, email);
  }
  return key;
}

}  // namespace

Result<std::shared_ptr<Mailbox>> MailboxKeeper::open(const config::Config& config,
                                                     const std::string& login,
                                                     const std::string& email,
                                                     const util::Clock& clock,
                                                     const util::SecretBuffer* own_password) {
  std::string key = mailbox_key(config, login, email);
  if (box_ && key_ == key) {
    if (in_request_)
      return box_;
    // Kept from an earlier request: still within its time, and still working.
    bool fresh = keepable_ && config.imap_login == config::ImapLogin::master &&
                 config.imap_keep_seconds.count() > 0 &&
                 clock.now() - last_used_ <= config.imap_keep_seconds.count() &&
                 clock.now() >= last_used_;
    if (fresh && box_->alive()) {
      in_request_ = true;
      return box_;
    }
  }
  drop();
  auto opened = open_mailbox(config, login, email, clock, own_password);
  if (!opened)
    return opened.error();
  ++opened_;
  box_ = std::shared_ptr<Mailbox>(std::move(opened).value());
  key_ = std::move(key);
  keepable_ = config.mailbox == config::MailboxBackend::imap &&
              config.imap_login == config::ImapLogin::master &&
              config.imap_keep_seconds.count() > 0;
  in_request_ = true;
  return box_;
}

void MailboxKeeper::end_request(bool clean, const util::Clock& clock) {
  if (!box_)
    return;
  if (!clean || !keepable_) {
    drop();
    return;
  }
  in_request_ = false;
  last_used_ = clock.now();
}

void MailboxKeeper::drop() {
  // The last holder's release logs out (ImapMailbox's destructor).
  box_.reset();
  key_.clear();
  keepable_ = false;
  in_request_ = false;
}

}  // namespace wmk::mail

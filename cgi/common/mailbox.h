#pragma once
// The logged-in user's mailbox for the mail pages: the user record, their mailbox
// (Maildir or IMAP, as the config says: core/mail/open_mailbox.h) and its header index,
// plus the request parameters that name a folder, a page or a message.

#include <memory>
#include <optional>
#include <string>

#include "cgi/common/layout.h"
#include "cgi/common/request.h"
#include "core/app/app.h"
#include "core/auth/users.h"
#include "core/mail/index.h"
#include "core/mail/mailbox.h"
#include "core/mail/maildir.h"
#include "core/mail/open_mailbox.h"
#include "core/session/session.h"
#include "core/util/result.h"

namespace wmk::cgi {

class UserMailbox {
 public:
  // The mailbox of the session's user, from the request's mailbox owner (opened there
  // at most once per request; see mail::MailboxKeeper). Errc::not_found if the user is
  // gone; the errors of mail::open_mailbox() if the mailbox cannot be opened (an IMAP
  // server down).
  static Result<std::unique_ptr<UserMailbox>> open(app::App& app, mail::MailboxKeeper& mailboxes,
                                                   const session::Session& s);

  const auth::User& user() const { return user_; }
  mail::Mailbox& mailbox() { return *mailbox_; }
  mail::MailIndex& index() { return index_; }

  UserMailbox(app::App& app, auth::User user, std::shared_ptr<mail::Mailbox> mailbox);
  // The index refers to the mailbox: neither copied nor moved.
  UserMailbox(const UserMailbox&) = delete;
  UserMailbox& operator=(const UserMailbox&) = delete;

 private:
  auth::User user_;
  std::shared_ptr<mail::Mailbox> mailbox_;
  mail::MailIndex index_;
};

// The page for a mailbox that could not be opened or read: 404 if the account is gone,
// else 503 (the IMAP server down or refusing): nothing was changed, try again later.
Response mailbox_error(const Error& error, const std::optional<Viewer>& viewer);

// The `folder` parameter: INBOX when absent; nullopt for a name that is not a folder.
std::optional<mail::Folder> folder_param(const Request& request);

// The `page` parameter: 1 when absent; nullopt unless a whole number from 1 to 1000000.
std::optional<int> page_param(const Request& request);

// "Inbox", "Sent" or "Drafts": the folder's name for people.
std::string folder_title(mail::Folder folder);

// The navigation entry of a folder.
Nav folder_nav(mail::Folder folder);

// "2024-05-01 12:00 UTC" for Unix seconds.
std::string format_date(std::int64_t t);

// "532 bytes", "12 KB", "3.4 MB".
std::string format_size(std::uint64_t bytes);

}  // namespace wmk::cgi

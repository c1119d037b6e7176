#include "cgi/common/mailbox.h"

#include <charconv>
#include <cstdio>

#include "core/config/config.h"
#include "core/mail/open_mailbox.h"
#include "core/util/timefmt.h"

namespace wmk::cgi {

UserMailbox::UserMailbox(app::App& app, auth::User user, std::shared_ptr<mail::Mailbox> mailbox)
    : user_(std::move(user)), mailbox_(std::move(mailbox)), index_(app.db, user_.id, *mailbox_) {}

Result<std::unique_ptr<UserMailbox>> UserMailbox::open(app::App& app,
                                                       mail::MailboxKeeper& mailboxes,
                                                       const session::Session& s) {
  auth::UserStore users(app.db, *app.clock);
  auto user = users.find_by_id(s.user_id);
  if (!user)
    return make_error(Errc::not_found, "the account no longer exists");
  auto mailbox =
      mailboxes.open(app.config, user->login, user->email, *app.clock, s.mail_password.get());
  if (!mailbox)
    return mailbox.error();
  return std::make_unique<UserMailbox>(app, std::move(*user), std::move(mailbox).value());
}

Response mailbox_error(const Error& error, const std::optional<Viewer>& viewer) {
  if (error.code == Errc::not_found)
    return error_response(404, error.message, viewer);
  if (error.code == Errc::bad_credentials)
    return error_response(401,
                          "The mail server did not accept your password for this session. "
                          "Log out and log in again with your mail password. Nothing was "
                          "changed.",
                          viewer);
  return error_response(503,
                        "Your mailbox cannot be reached just now (the mail server is down or "
                        "refused the connection). Nothing was changed; please try again in a "
                        "moment.",
                        viewer);
}

std::optional<mail::Folder> folder_param(const Request& request) {
  auto name = request.field("folder");
  if (!name || name->empty())
    return mail::Folder::inbox;
  return mail::folder_from_name(*name);
}

std::optional<int> page_param(const Request& request) {
  auto text = request.field("page");
  if (!text || text->empty())
    return 1;
  int n = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (ec != std::errc() || p != text->data() + text->size() || n < 1 || n > 1'000'000)
    return std::nullopt;
  return n;
}

std::string folder_title(mail::Folder folder) {
  return folder == mail::Folder::inbox ? "Inbox" : mail::folder_name(folder);
}

Nav folder_nav(mail::Folder folder) {
  switch (folder) {
    case mail::Folder::sent:
      return Nav::sent;
    case mail::Folder::drafts:
      return Nav::drafts;
    case mail::Folder::inbox:
      break;
  }
  return Nav::inbox;
}

std::string format_date(std::int64_t t) {
  std::string iso = util::format_utc(t);  // 2024-05-01T12:00:00Z
  if (iso.size() < 16)
    return iso;
  return iso.substr(0, 10) + " " + iso.substr(11, 5) + " UTC";
}

std::string format_size(std::uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%llu KB", static_cast<unsigned long long>(bytes / 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  }
  return buf;
}

}  // namespace wmk::cgi

// webmailkey deliver LOGIN [--folder F]: a local delivery agent. Reads one message
// on stdin and delivers it into the user's Maildir (tmp -> new, atomically), then
// indexes it. Meant for Postfix (mailbox_command, or a pipe(8) transport).
//
// Exit status, as an MTA reads it (sysexits.h):
//   0   delivered
//   1   refused for good: unknown login, not a message, too large (Postfix bounces)
//   2   usage error, such as an unknown --folder (Postfix bounces)
//   65  EX_DATAERR: the header is larger than max_header_bytes (Postfix bounces with
//       the reason printed on stderr)
//   75  EX_TEMPFAIL: transient trouble (disk, database busy, configuration unreadable);
//       the MTA keeps the message and tries again later
#include <unistd.h>

#include <exception>
#include <iostream>

#include "cli/cli.h"
#include "core/auth/users.h"
#include "core/config/config.h"
#include "core/contacts/contacts.h"
#include "core/mail/deliver.h"
#include "core/mail/maildir.h"
#include "core/util/fs.h"
#include "core/util/json.h"

namespace wmk::cli {

namespace {

constexpr int kExitTempFail = 75;  // EX_TEMPFAIL
constexpr int kExitDataErr = 65;   // EX_DATAERR
// Room for the envelope line an MTA may prepend on top of the message size limit.
constexpr std::size_t kEnvelopeSlack = 4096;

// Reports error and sets the exit status an MTA understands: only a refused message
// or an unknown recipient is permanent, everything else is worth a retry.
void fail(Context& ctx, const Error& error, bool permanent) {
  report(ctx, error);
  ctx.exit_code = permanent ? kExitFailure : kExitTempFail;
}

void run_deliver(Context& ctx, const std::string& login, const std::string& folder_arg) {
  auto folder = mail::folder_from_name(folder_arg);
  if (!folder) {
    report(ctx, make_error(Errc::invalid_argument,
                           "unknown folder \"" + folder_arg + "\": use INBOX, Sent or Drafts"));
    return;  // exit 2
  }
  auto raw = util::read_all(STDIN_FILENO, mail::kMaxMessageBytes + kEnvelopeSlack);
  if (!raw) {
    bool too_large = raw.code() == Errc::invalid_argument;
    return fail(ctx,
                too_large ? make_error(Errc::invalid_argument,
                                       "the message is larger than the limit of " +
                                           std::to_string(mail::kMaxMessageBytes >> 20) + " MiB")
                          : raw.error(),
                too_large);
  }
  auto app = app::open(ctx.config_path);
  if (!app)
    return fail(ctx, app.error(), false);
  if (app->config.mailbox != config::MailboxBackend::maildir) {
    // The IMAP server's own delivery (Dovecot's LDA or LMTP) puts mail there; a Maildir
    // written here would never be read.
    return fail(ctx,
                make_error(Errc::config,
                           "mailbox = imap: deliver mail with the IMAP server's own delivery "
                           "agent (Dovecot's LDA or LMTP), not webmailkey deliver"),
                false);
  }
  auth::UserStore users(app->db, *app->clock);
  auto user = users.find(login);
  if (!user)
    return fail(ctx, make_error(Errc::not_found, "no such user: " + login), true);
  // A disabled account still receives mail: disabling stops logins, not the mailbox.
  mail::Maildir maildir(config::maildir_for(app->config, user->login, user->email), *app->clock);
  mail::DeliverLimits limits;
  limits.max_header_bytes = app->config.max_header_bytes;
  auto delivered =
      mail::deliver_message(app->db, user->id, maildir, *folder, *raw, *app->clock, limits);
  if (!delivered && delivered.code() == Errc::unsupported) {
    report(ctx, delivered.error());
    ctx.exit_code = kExitDataErr;
    return;
  }
  if (!delivered)
    return fail(ctx, delivered.error(), delivered.code() == Errc::invalid_argument);
  // Autocrypt Level 1: the sender's key from the header, bound to the From address as
  // `autocrypt`. Never a reason to refuse or retry the delivery (nor is the S/MIME
  // certificate collection below).
  if (*folder == mail::Folder::inbox) {
    keys::KeyStore keys(app->db, app->config, *app->clock);
    contacts::ContactStore contacts(*app, keys);
    if (auto seen = contacts.autocrypt_from_message(user->id, *raw); !seen) {
      std::cerr << "webmailkey: delivered; its Autocrypt header was not taken: "
                << seen.error().message << "\n";
    }
    // S/MIME: the certificate of a validly signed message whose CA names the sender,
    // bound to the From address as `ca`.
    if (auto seen = contacts.smime_signer_from_message(user->id, *raw); !seen) {
      std::cerr << "webmailkey: delivered; its signer's certificate was not collected: "
                << seen.error().message << "\n";
    }
  }
  if (delivered->index_error) {
    std::cerr << "webmailkey: delivered, but not indexed yet (the next listing will): "
              << delivered->index_error->message << "\n";
  }
  if (ctx.json) {
    util::JsonWriter w;
    w.begin_object()
        .field("login", user->login)
        .field("folder", mail::folder_name(*folder))
        .field("uid", delivered->uid)
        .field("duplicate", delivered->duplicate)
        .field("indexed", !delivered->index_error.has_value())
        .end_object();
    std::cout << w.str() << "\n";
  } else {
    std::cout << (delivered->duplicate ? "already delivered " : "delivered ") << delivered->uid
              << " to " << user->login << " " << mail::folder_name(*folder) << "\n";
  }
}

}  // namespace

void register_deliver(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "deliver",
      "deliver one message from stdin into LOGIN's Maildir (exit 0 ok, 1 refused, 75 retry later)");
  auto login = std::make_shared<std::string>();
  auto folder = std::make_shared<std::string>("INBOX");
  cmd->add_option("LOGIN", *login, "the recipient's login")->required();
  cmd->add_option("--folder", *folder, "INBOX (default), Sent or Drafts");
  cmd->callback([&ctx, login, folder] {
    try {
      run_deliver(ctx, *login, *folder);
    } catch (const std::exception& e) {
      // A database error here (locked, disk full) must not bounce the message.
      fail(ctx, make_error(Errc::internal, std::string("unexpected error: ") + e.what()), false);
    }
  });
}

}  // namespace wmk::cli

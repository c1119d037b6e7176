// webmailkey user add LOGIN --email ADDR [--name N] --password-stdin
// webmailkey user list | show LOGIN | passwd LOGIN | disable LOGIN | enable LOGIN | delete LOGIN
#include <iomanip>
#include <iostream>

#include "cli/cli.h"
#include "cli/confirm.h"
#include "cli/stdin_secret.h"
#include "core/audit/audit.h"
#include "core/auth/throttle.h"
#include "core/auth/users.h"
#include "core/session/session.h"
#include "core/util/json.h"
#include "core/util/timefmt.h"

namespace wmk::cli {

namespace {

void write_user(util::JsonWriter& w, const auth::User& u) {
  w.begin_object()
      .field("login", u.login)
      .field("name", u.name)
      .field("email", u.email)
      .key("emails")
      .begin_array();
  for (const auto& e : u.emails)
    w.value(e);
  w.end_array()
      .field("disabled", u.disabled)
      .field("created", u.created)
      .field("created_utc", util::format_utc(u.created))
      .end_object();
}

// Records an admin action on login, naming who ran the command.
void audit_admin(app::App& a, const std::string& login, const char* event,
                 const std::string& detail = "") {
  std::string text = "by " + audit::admin_actor();
  if (!detail.empty())
    text += "; " + detail;
  audit::AuditLog(a.db, *a.clock)
      .record(audit::AuditEvent{login, event, audit::outcome::kOk, "", "", "", text});
}

// Prints {"login":..., "action":..., extra...} with --json, else message.
void done(Context& ctx, const std::string& login, const std::string& action,
          const std::string& message, std::optional<int> sessions_ended = std::nullopt) {
  if (ctx.json) {
    util::JsonWriter w;
    w.begin_object().field("login", login).field("action", action).field("ok", true);
    if (sessions_ended)
      w.field("sessions_ended", *sessions_ended);
    std::cout << w.end_object().str() << "\n";
  } else {
    std::cout << message << "\n";
  }
}

std::string sessions_text(int n) {
  return std::to_string(n) + (n == 1 ? " session" : " sessions") + " ended";
}

void register_add(CLI::App& cmd, Context& ctx) {
  struct Args {
    std::string login, email, name;
    bool password_stdin = false;
  };
  auto args = std::make_shared<Args>();
  auto* add = cmd.add_subcommand("add", "create a user; the password is read from stdin");
  add->add_option("LOGIN", args->login, "login name: [a-z0-9][a-z0-9._-]{0,63}")->required();
  add->add_option("--email", args->email, "primary e-mail address")->required();
  add->add_option("--name", args->name, "display name");
  add->add_flag("--password-stdin", args->password_stdin,
                "read the password from the first line of stdin (required)")
      ->required();
  add->callback([&ctx, args] {
    // Check the cheap things before reading a password for nothing.
    if (auto st = auth::validate_login(args->login); !st)
      return report(ctx, st.error());
    if (auto st = auth::validate_email(args->email); !st)
      return report(ctx, st.error());
    auto a = open_app(ctx);
    if (!a)
      return;
    auto password = read_stdin_secret("password", SecretUse::new_secret);
    if (!password)
      return report(ctx, password.error());
    if (auto st = auth::check_password_policy(a->config, *password); !st)
      return report(ctx, st.error());
    auth::UserStore users(a->db, *a->clock);
    auto u = users.add(args->login, args->email, args->name, *password,
                       auth::password_params(a->config));
    if (!u)
      return report(ctx, u.error());
    audit_admin(*a, u->login, audit::event::kUserAdd, "email " + u->email);
    if (ctx.json) {
      util::JsonWriter w;
      write_user(w, *u);
      std::cout << w.str() << "\n";
    } else {
      std::cout << "added user " << u->login << " <" << u->email << ">\n";
    }
  });
}

void register_list(CLI::App& cmd, Context& ctx) {
  auto* list = cmd.add_subcommand("list", "list every user");
  list->callback([&ctx] {
    auto a = open_app(ctx);
    if (!a)
      return;
    auto users = auth::UserStore(a->db, *a->clock).list();
    if (ctx.json) {
      util::JsonWriter w;
      w.begin_array();
      for (const auto& u : users)
        write_user(w, u);
      std::cout << w.end_array().str() << "\n";
      return;
    }
    if (users.empty()) {
      std::cout << "no users\n";
      return;
    }
    std::cout << std::left << std::setw(20) << "LOGIN" << std::setw(10) << "STATE" << std::setw(32)
              << "EMAIL"
              << "NAME\n";
    for (const auto& u : users) {
      std::cout << std::setw(20) << u.login << std::setw(10)
                << (u.disabled ? "disabled" : "enabled") << std::setw(32) << u.email << u.name
                << "\n";
    }
  });
}

void register_show(CLI::App& cmd, Context& ctx) {
  auto login = std::make_shared<std::string>();
  auto* show = cmd.add_subcommand("show", "show one user");
  show->add_option("LOGIN", *login, "login name")->required();
  show->callback([&ctx, login] {
    auto a = open_app(ctx);
    if (!a)
      return;
    auto u = auth::UserStore(a->db, *a->clock).find(*login);
    if (!u)
      return report(ctx, make_error(Errc::not_found, "no user with login '" + *login + "'"));
    if (ctx.json) {
      util::JsonWriter w;
      write_user(w, *u);
      std::cout << w.str() << "\n";
      return;
    }
    std::cout << "login:    " << u->login << "\n"
              << "name:     " << u->name << "\n"
              << "email:    " << u->email << "\n";
    for (std::size_t i = 1; i < u->emails.size(); ++i)
      std::cout << "also:     " << u->emails[i] << "\n";
    std::cout << "state:    " << (u->disabled ? "disabled" : "enabled") << "\n"
              << "created:  " << util::format_utc(u->created) << "\n";
  });
}

void register_passwd(CLI::App& cmd, Context& ctx) {
  struct Args {
    std::string login;
    bool password_stdin = false;
  };
  auto args = std::make_shared<Args>();
  auto* passwd = cmd.add_subcommand(
      "passwd", "set a new password (read from stdin); ends the user's sessions");
  passwd->add_option("LOGIN", args->login, "login name")->required();
  passwd->add_flag("--password-stdin", args->password_stdin,
                   "read the password from the first line of stdin (the default)");
  passwd->callback([&ctx, args] {
    auto a = open_app(ctx);
    if (!a)
      return;
    auth::UserStore users(a->db, *a->clock);
    if (!users.find(args->login))
      return report(ctx, make_error(Errc::not_found, "no user with login '" + args->login + "'"));
    auto password = read_stdin_secret("password", SecretUse::new_secret);
    if (!password)
      return report(ctx, password.error());
    if (auto st = auth::check_password_policy(a->config, *password); !st)
      return report(ctx, st.error());
    if (auto st = users.set_password(args->login, *password, auth::password_params(a->config)); !st)
      return report(ctx, st.error());
    // A new password is often the answer to a lockout or a suspected compromise:
    // clear the login's lockout and end its sessions (and with them its grants).
    auth::Throttle(a->db, *a->clock, auth::throttle_policy(a->config))
        .record_success(auth::login_scope(args->login));
    auto ended = session::SessionStore(a->db, *a->clock, a->config).kill_for_login(args->login);
    if (!ended)
      return report(ctx, ended.error());
    audit_admin(*a, args->login, audit::event::kUserPasswd, sessions_text(*ended));
    done(ctx, args->login, "passwd",
         "password of " + args->login + " changed; " + sessions_text(*ended), *ended);
  });
}

void register_disable(CLI::App& cmd, Context& ctx) {
  auto login = std::make_shared<std::string>();
  auto* disable =
      cmd.add_subcommand("disable", "switch an account off and end its sessions and grants");
  disable->add_option("LOGIN", *login, "login name")->required();
  disable->callback([&ctx, login] {
    auto a = open_app(ctx);
    if (!a)
      return;
    if (auto st =
            auth::UserStore(a->db, *a->clock).set_disabled(*login, auth::AccountState::disabled);
        !st)
      return report(ctx, st.error());
    auto ended = session::SessionStore(a->db, *a->clock, a->config).kill_for_login(*login);
    if (!ended)
      return report(ctx, ended.error());
    audit_admin(*a, *login, audit::event::kUserDisable, sessions_text(*ended));
    done(ctx, *login, "disable", "disabled " + *login + "; " + sessions_text(*ended), *ended);
  });
}

void register_enable(CLI::App& cmd, Context& ctx) {
  auto login = std::make_shared<std::string>();
  auto* enable =
      cmd.add_subcommand("enable", "switch an account back on and clear its login lockout");
  enable->add_option("LOGIN", *login, "login name")->required();
  enable->callback([&ctx, login] {
    auto a = open_app(ctx);
    if (!a)
      return;
    if (auto st =
            auth::UserStore(a->db, *a->clock).set_disabled(*login, auth::AccountState::enabled);
        !st)
      return report(ctx, st.error());
    auth::Throttle(a->db, *a->clock, auth::throttle_policy(a->config))
        .record_success(auth::login_scope(*login));
    audit_admin(*a, *login, audit::event::kUserEnable);
    done(ctx, *login, "enable", "enabled " + *login);
  });
}

void register_delete(CLI::App& cmd, Context& ctx) {
  auto login = std::make_shared<std::string>();
  auto yes = std::make_shared<bool>(false);
  auto* del =
      cmd.add_subcommand("delete", "delete a user with its addresses, sessions, keys and grants");
  del->add_option("LOGIN", *login, "login name")->required();
  del->add_flag("--yes", *yes, "delete without asking (required when stdin is not a terminal)");
  del->callback([&ctx, login, yes] {
    auto a = open_app(ctx);
    if (!a)
      return;
    if (!auth::UserStore(a->db, *a->clock).find(*login))
      return report(ctx, make_error(Errc::not_found, "no user with login '" + *login + "'"));
    if (auto st = confirm_destructive(
            *yes ? Confirmed::yes_flag : Confirmed::ask,
            "Delete user " + *login + " with their keys, sessions and grants for good?");
        !st)
      return report(ctx, st.error());
    if (auto st = auth::UserStore(a->db, *a->clock).remove(*login); !st)
      return report(ctx, st.error());
    audit_admin(*a, *login, audit::event::kUserDelete);
    done(ctx, *login, "delete", "deleted user " + *login);
  });
}

}  // namespace

void register_user(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("user", "manage users");
  cmd->require_subcommand(1);
  register_add(*cmd, ctx);
  register_list(*cmd, ctx);
  register_show(*cmd, ctx);
  register_passwd(*cmd, ctx);
  register_disable(*cmd, ctx);
  register_enable(*cmd, ctx);
  register_delete(*cmd, ctx);
}

}  // namespace wmk::cli

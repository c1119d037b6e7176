// webmailkey session list | kill SESSION | kill --login L
#include <iomanip>
#include <iostream>

#include "cli/cli.h"
#include "core/audit/audit.h"
#include "core/auth/users.h"
#include "core/session/session.h"
#include "core/util/json.h"
#include "core/util/timefmt.h"

namespace wmk::cli {

namespace {

void register_list(CLI::App& cmd, Context& ctx) {
  auto login = std::make_shared<std::string>();
  auto* list = cmd.add_subcommand("list", "list sessions, newest first");
  list->add_option("--login", *login, "only this user's sessions");
  list->callback([&ctx, login] {
    auto a = open_app(ctx);
    if (!a)
      return;
    if (!login->empty() && !auth::UserStore(a->db, *a->clock).find(*login))
      return report(ctx, make_error(Errc::not_found, "no user with login '" + *login + "'"));
    auto sessions = session::SessionStore(a->db, *a->clock, a->config).list();
    if (!login->empty())
      std::erase_if(sessions, [&](const session::Session& s) { return s.login != *login; });
    const std::int64_t now = a->clock->now();
    if (ctx.json) {
      util::JsonWriter w;
      w.begin_array();
      for (const auto& s : sessions) {
        w.begin_object()
            .field("session", s.short_id)
            .field("login", s.login)
            .field("created", s.created)
            .field("last_seen", s.last_seen)
            .field("expires", s.expires)
            .field("expired", s.expires < now)
            .field("client_addr", s.client_addr)
            .field("user_agent", s.user_agent)
            .end_object();
      }
      std::cout << w.end_array().str() << "\n";
      return;
    }
    if (sessions.empty()) {
      std::cout << "no sessions\n";
      return;
    }
    std::cout << std::left << std::setw(10) << "SESSION" << std::setw(20) << "LOGIN"
              << std::setw(22) << "CREATED" << std::setw(22) << "LAST SEEN" << std::setw(22)
              << "EXPIRES" << std::setw(18) << "ADDRESS"
              << "USER AGENT\n";
    for (const auto& s : sessions) {
      std::cout << std::setw(10) << s.short_id << std::setw(20) << s.login << std::setw(22)
                << util::format_utc(s.created) << std::setw(22) << util::format_utc(s.last_seen)
                << std::setw(22)
                << (s.expires < now ? std::string("expired") : util::format_utc(s.expires))
                << std::setw(18) << s.client_addr << s.user_agent << "\n";
    }
  });
}

void register_kill(CLI::App& cmd, Context& ctx) {
  struct Args {
    std::string session;
    std::string login;
  };
  auto args = std::make_shared<Args>();
  auto* kill = cmd.add_subcommand("kill", "end a session (and its grants), or all of one login");
  auto* by_id = kill->add_option("SESSION", args->session, "session id as `session list` shows");
  auto* by_login = kill->add_option("--login", args->login, "end every session of this login");
  by_id->excludes(by_login);
  kill->callback([&ctx, args] {
    if (args->session.empty() == args->login.empty()) {
      return report(ctx, make_error(Errc::invalid_argument,
                                    "session kill needs a SESSION id or --login LOGIN"));
    }
    auto a = open_app(ctx);
    if (!a)
      return;
    session::SessionStore sessions(a->db, *a->clock, a->config);
    std::string login;
    std::string short_id = args->session;
    Result<int> n = 0;
    if (!args->session.empty()) {
      // Name the owner in the audit record.
      for (const auto& s : sessions.list()) {
        if (s.short_id == args->session)
          login = s.login;
      }
      n = sessions.kill(args->session);
    } else {
      login = args->login;
      n = sessions.kill_for_login(args->login);
    }
    if (!n)
      return report(ctx, n.error());
    audit::AuditLog(a->db, *a->clock)
        .record(audit::AuditEvent{
            login, audit::event::kSessionKill, audit::outcome::kOk, "", short_id, "",
            "by " + audit::admin_actor() + "; " + std::to_string(*n) + " ended"});
    if (ctx.json) {
      std::cout << util::JsonWriter().begin_object().field("ended", *n).end_object().str() << "\n";
    } else {
      std::cout << "ended " << *n << (*n == 1 ? " session" : " sessions") << "\n";
    }
  });
}

}  // namespace

void register_session(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("session", "list and end login sessions");
  cmd->require_subcommand(1);
  register_list(*cmd, ctx);
  register_kill(*cmd, ctx);
}

}  // namespace wmk::cli

// webmailkey grant list [--login L]
// webmailkey grant revoke GRANT | --login L | --key KEY | --all
#include <algorithm>
#include <ctime>
#include <iostream>
#include <memory>
#include <vector>

#include "cli/cli.h"
#include "cli/table.h"
#include "core/audit/audit.h"
#include "core/grant/grant.h"
#include "core/util/json.h"
#include "core/util/timefmt.h"

namespace wmk::cli {

namespace {

std::string duration(std::int64_t seconds) {
  if (seconds <= 0)
    return "expired";
  std::string out;
  if (seconds >= 3600)
    out += std::to_string(seconds / 3600) + "h";
  if (seconds >= 60)
    out += std::to_string(seconds / 60 % 60) + "m";
  out += std::to_string(seconds % 60) + "s";
  return out;
}

void list(Context& ctx, const std::optional<std::string>& login) {
  auto a = open_app(ctx);
  if (!a)
    return;
  grant::GrantStore grants(a->db, *a->clock, a->config);
  auto rows = grants.list(login);
  if (!rows)
    return report(ctx, rows.error());
  const std::int64_t now = a->clock->now();
  if (ctx.json) {
    util::JsonWriter w;
    w.begin_array();
    for (const auto& g : *rows) {
      w.begin_object()
          .field("id", g.id)
          .field("login", g.login)
          .field("key", g.key_fingerprint)
          .field("session", g.session_short_id)
          .field("created", g.created)
          .field("last_used", g.last_used)
          .field("expires", g.expires)
          .field("idle_deadline", g.idle_deadline)
          .field("time_left", g.seconds_left(now))
          .field("live", g.live(now))
          .field("client_addr", g.client_addr)
          .field("user_agent", g.user_agent)
          .end_object();
    }
    w.end_array();
    std::cout << w.str() << "\n";
    return;
  }
  if (rows->empty()) {
    std::cout << "no grants\n";
    return;
  }
  std::vector<std::vector<std::string>> table = {
      {"ID", "LOGIN", "KEY", "SESSION", "CREATED", "LAST USED", "EXPIRES", "LEFT", "CLIENT"}};
  for (const auto& g : *rows) {
    table.push_back({g.id, g.login, g.key_fingerprint, g.session_short_id,
                     util::format_utc(g.created), util::format_utc(g.last_used),
                     util::format_utc(g.expires), duration(g.seconds_left(now)), g.client_addr});
  }
  print_table(table);
}

struct RevokeArgs {
  std::optional<std::string> grant_id;
  std::optional<std::string> login;
  std::optional<std::string> key;
  bool all = false;
};

void revoke(Context& ctx, const RevokeArgs& args) {
  const int selectors =
      (args.grant_id ? 1 : 0) + (args.login ? 1 : 0) + (args.key ? 1 : 0) + (args.all ? 1 : 0);
  if (selectors != 1) {
    return report(ctx,
                  make_error(Errc::invalid_argument,
                             "grant revoke needs exactly one of GRANT, --login, --key, --all"));
  }
  auto a = open_app(ctx);
  if (!a)
    return;
  grant::GrantStore grants(a->db, *a->clock, a->config);
  const auto by = grant::Revoker::admin(audit::admin_actor());
  Result<int> n = 0;
  if (args.grant_id) {
    n = grants.revoke(*args.grant_id, by);
  } else if (args.login) {
    n = grants.revoke_for_login(*args.login, by);
  } else if (args.key) {
    auto key_id = grants.find_key(*args.key);
    if (!key_id)
      return report(ctx, key_id.error());
    n = grants.revoke_for_key(*key_id, by);
  } else {
    n = grants.revoke_all(by);
  }
  if (!n)
    return report(ctx, n.error());
  if (ctx.json) {
    std::cout << util::JsonWriter().begin_object().field("revoked", *n).end_object().str() << "\n";
  } else {
    std::cout << "revoked " << *n << (*n == 1 ? " grant" : " grants") << "\n";
  }
}

}  // namespace

void register_grant(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("grant", "list and revoke grants (unlocked keys in sessions)");
  cmd->require_subcommand(1);

  auto login = std::make_shared<std::optional<std::string>>();
  auto* ls = cmd->add_subcommand("list", "list grants: who has which key unlocked, until when");
  ls->add_option("--login", *login, "only this user's grants");
  ls->callback([&ctx, login] { list(ctx, *login); });

  auto args = std::make_shared<RevokeArgs>();
  auto* rv = cmd->add_subcommand(
      "revoke", "end grants now: one GRANT, or every grant of --login, of --key, or --all");
  rv->add_option("GRANT", args->grant_id, "grant id as `grant list` shows it");
  rv->add_option("--login", args->login, "every grant of this user");
  rv->add_option("--key", args->key, "the grant on this key (fingerprint or unique prefix)");
  rv->add_flag("--all", args->all, "every grant");
  rv->callback([&ctx, args] { revoke(ctx, *args); });
}

}  // namespace wmk::cli

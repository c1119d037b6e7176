// webmailkey audit [--login L] [--since TIME] [--key FPR] [--limit N]
#include <iostream>

#include "cli/cli.h"
#include "core/audit/audit.h"
#include "core/keys/keystore.h"
#include "core/util/json.h"
#include "core/util/timefmt.h"

namespace wmk::cli {

void register_audit(CLI::App& app, Context& ctx) {
  struct Args {
    std::optional<std::string> login, since, key;
    int limit = 100;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("audit", "show the audit log, newest first");
  cmd->add_option("--login", args->login, "only events of this login");
  cmd->add_option("--since", args->since,
                  "only events at or after TIME: Unix seconds, a UTC date "
                  "YYYY-MM-DD[THH:MM:SS], or a time ago such as 2h, 3d");
  cmd->add_option(
      "--key", args->key,
      "only events of this key: its fingerprint or a unique prefix (8+ hex digits, any case)");
  cmd->add_option("--limit", args->limit, "at most N events (0: all; default 100)")
      ->check(CLI::Range(0, 1000000));
  cmd->callback([&ctx, args] {
    auto a = open_app(ctx);
    if (!a)
      return;
    audit::AuditQuery q;
    q.login = args->login;
    if (args->key) {
      // Any case and a prefix name a key, as everywhere; a key deleted since still has
      // its events, so an unknown key is one neither held nor in the log.
      auto want = keys::normalize_fingerprint_prefix(*args->key);
      if (!want)
        return report(ctx, want.error());
      keys::KeyStore store(a->db, a->config, *a->clock);
      auto held = store.find(*want);
      if (held) {
        q.key_fpr = held->fingerprint;
      } else if (held.code() != Errc::not_found) {
        return report(ctx, held.error());
      } else {
        audit::AuditQuery any;
        any.key_fpr = *want;
        any.limit = 1;
        if (audit::AuditLog(a->db, *a->clock).query(any).empty())
          return report(ctx, make_error(Errc::not_found,
                                        "no key " + *want + " is held, and the log names none"));
        q.key_fpr = *want;
      }
    }
    q.limit = args->limit;
    if (args->since) {
      auto t = util::parse_time_spec(*args->since, a->clock->now());
      if (!t)
        return report(ctx, t.error());
      q.since = *t;
    }
    auto entries = audit::AuditLog(a->db, *a->clock).query(q);
    if (ctx.json) {
      util::JsonWriter w;
      w.begin_array();
      for (const auto& e : entries) {
        w.begin_object()
            .field("id", e.id)
            .field("at", e.at)
            .field("time", util::format_utc(e.at))
            .field("login", e.event.login)
            .field("event", e.event.event)
            .field("outcome", e.event.outcome)
            .field("key_fpr", e.event.key_fpr)
            .field("session", e.event.session)
            .field("client_addr", e.event.client_addr)
            .field("detail", e.event.detail)
            .end_object();
      }
      std::cout << w.end_array().str() << "\n";
      return;
    }
    for (const auto& e : entries) {
      std::cout << util::format_utc(e.at) << "  " << (e.event.login.empty() ? "-" : e.event.login)
                << "  " << e.event.event << "  " << e.event.outcome;
      if (!e.event.key_fpr.empty())
        std::cout << "  key=" << e.event.key_fpr;
      if (!e.event.session.empty())
        std::cout << "  session=" << e.event.session;
      if (!e.event.client_addr.empty())
        std::cout << "  from=" << e.event.client_addr;
      if (!e.event.detail.empty())
        std::cout << "  (" << e.event.detail << ")";
      std::cout << "\n";
    }
  });
}

}  // namespace wmk::cli

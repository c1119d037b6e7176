// webmailkey: the admin CLI. Parses the command line, dispatches to one subcommand,
// and maps unexpected exceptions to exit status 1 (a database lost midway is said as
// such: "the database at ... is unreachable: ...").

#include <cstdio>
#include <exception>
#include <iostream>

#include "cli/cli.h"
#include "core/store/db.h"
#include "core/util/json.h"
#include "core/util/process.h"

namespace wmk::cli {

std::optional<app::App> open_app(Context& ctx) {
  auto a = app::open(ctx.config_path);
  if (!a) {
    report(ctx, a.error());
    return std::nullopt;
  }
  return std::move(a).value();
}

void report(Context& ctx, const Error& error) {
  if (ctx.json) {
    std::cout << "{\"error\":" << wmk::util::json_quote(error.message) << ",\"code\":\""
              << errc_name(error.code) << "\"}\n";
  }
  std::cerr << "webmailkey: " << error.message << "\n";
  ctx.exit_code = error.code == Errc::invalid_argument ? kExitUsage : kExitFailure;
}

}  // namespace wmk::cli

int main(int argc, char** argv) {
  // No core dumps: a dump could hold a passphrase or an unlocked key.
  wmk::util::disable_core_dumps();

  using namespace wmk::cli;
  Context ctx;
  CLI::App app{"webmailkey: server-side custody of OpenPGP and S/MIME keys for webmail"};
  app.set_version_flag("--version", WEBMAILKEY_VERSION);
  app.require_subcommand(1);
  // Global options (--json, --config) may also follow the subcommand.
  app.fallthrough();
  app.add_option(
      "--config", ctx.config_path,
      "configuration file (else $WEBMAILKEY_CONFIG, else /etc/webmailkey/webmailkey.conf)");
  app.add_flag("--json", ctx.json, "machine-readable output");
  register_init(app, ctx);
  register_config(app, ctx);
  register_user(app, ctx);
  register_session(app, ctx);
  register_purge(app, ctx);
  register_fsck(app, ctx);
  register_deliver(app, ctx);
  register_audit(app, ctx);
  register_grant(app, ctx);
  register_key(app, ctx);
  register_contact(app, ctx);
  register_store(app, ctx);
  register_help_dump(app, ctx);  // last: it walks what the others registered
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  } catch (const wmk::store::StoreUnavailable& e) {
    report(ctx, wmk::make_error(wmk::Errc::unavailable, e.what()));
    return kExitFailure;
  } catch (const std::exception& e) {
    std::cerr << "webmailkey: unexpected error: " << e.what() << "\n";
    return kExitFailure;
  }
  return ctx.exit_code;
}

// webmailkey config check
#include <iostream>

#include "cli/cli.h"
#include "core/util/json.h"

namespace wmk::cli {

void register_config(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("config", "inspect the configuration");
  cmd->require_subcommand(1);
  auto* check = cmd->add_subcommand("check", "parse the configuration and report every problem");
  check->callback([&ctx] {
    std::string path = config::resolve_path(ctx.config_path);
    auto cfg = config::load(path);
    if (!cfg)
      return report(ctx, cfg.error());
    auto problems = config::check_environment(*cfg);
    // A PostgreSQL store is tried: the server answers and holds our schema.
    if (cfg->store == config::StoreEngine::postgresql && !cfg->store_postgresql.empty()) {
      if (auto opened = app::open_with(*cfg); !opened)
        problems.push_back("store_postgresql: " + opened.error().message);
    }
    if (!problems.empty()) {
      std::string msg;
      for (const std::string& p : problems)
        msg += (msg.empty() ? "" : "\n") + path + ": " + p;
      return report(ctx, make_error(Errc::config, msg));
    }
    if (ctx.json) {
      std::cout << util::JsonWriter()
                       .begin_object()
                       .field("config", path)
                       .field("ok", true)
                       .end_object()
                       .str()
                << "\n";
    } else {
      std::cout << path << ": ok\n";
    }
  });
}

}  // namespace wmk::cli

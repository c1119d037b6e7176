// webmailkey init [--data-dir DIR]
#include <iostream>

#include "cli/cli.h"
#include "core/setup/init.h"
#include "core/util/json.h"

namespace wmk::cli {

void register_init(CLI::App& app, Context& ctx) {
  auto* cmd =
      app.add_subcommand("init", "create the data directory, database and GnuPG home (idempotent)");
  auto data_dir = std::make_shared<std::optional<std::string>>();
  cmd->add_option("--data-dir", *data_dir, "data directory (absolute path)");
  cmd->callback([&ctx, data_dir] {
    auto a = setup::init(ctx.config_path, *data_dir);
    if (!a)
      return report(ctx, a.error());
    if (ctx.json) {
      util::JsonWriter w;
      w.begin_object()
          .field("data_dir", a->config.data_dir)
          .field("config", a->config.source)
          .field("database", a->config.database_path())
          .end_object();
      std::cout << w.str() << "\n";
    } else {
      std::cout << "initialised " << a->config.data_dir << " (config " << a->config.source << ")\n";
    }
  });
}

}  // namespace wmk::cli

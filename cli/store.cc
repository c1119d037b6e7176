// webmailkey store migrate --to postgresql
#include <iostream>
#include <memory>
#include <string>

#include "cli/cli.h"
#include "core/config/config.h"
#include "core/setup/store_migrate.h"
#include "core/util/json.h"

namespace wmk::cli {

void register_store(CLI::App& app, Context& ctx) {
  auto* store = app.add_subcommand("store", "the store's engines (docs/admin-guide.md)");
  store->require_subcommand(1);
  auto to = std::make_shared<std::string>();
  auto* migrate = store->add_subcommand(
      "migrate",
      "copy the SQLite store in data_dir into the empty PostgreSQL database that "
      "store_postgresql names, in one transaction, checking each table's rows and checksum "
      "before it commits; then set `store = postgresql`");
  migrate->add_option("--to", *to, "the target engine")
      ->required()
      ->check(CLI::IsMember({"postgresql"}));
  migrate->callback([&ctx, to] {
    auto cfg = config::load(config::resolve_path(ctx.config_path));
    if (!cfg)
      return report(ctx, cfg.error());
    auto copied = setup::migrate_store(*cfg, config::StoreEngine::postgresql);
    if (!copied)
      return report(ctx, copied.error());
    if (ctx.json) {
      util::JsonWriter w;
      w.begin_object().field("to", "postgresql").field("schema_version", copied->schema_version);
      w.key("tables").begin_array();
      for (const auto& t : copied->tables) {
        w.begin_object()
            .field("table", t.table)
            .field("rows", t.rows)
            .field("checksum", t.checksum)
            .end_object();
      }
      w.end_array();
      std::cout << w.end_object().str() << "\n";
      return;
    }
    std::int64_t rows = 0;
    for (const auto& t : copied->tables) {
      std::cout << t.table << ": " << t.rows << " rows, sha256 " << t.checksum << "\n";
      rows += t.rows;
    }
    std::cout << "copied " << rows << " rows in " << copied->tables.size()
              << " tables (schema version " << copied->schema_version
              << "), each table checked; set `store = postgresql` in the config to use it\n";
  });
}

}  // namespace wmk::cli

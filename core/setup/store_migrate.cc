#include "core/setup/store_migrate.h"

#include "core/store/db.h"

namespace wmk::setup {

Result<store::CopyReport> migrate_store(const config::Config& cfg, config::StoreEngine to) {
  if (to != config::StoreEngine::postgresql)
    return make_error(Errc::invalid_argument, "the store can be migrated to postgresql only");
  if (cfg.store_postgresql.empty()) {
    return make_error(Errc::config,
                      "store_postgresql, the connection string of the target, is not set");
  }
  auto from = store::Db::open(cfg.database_path(), store::OpenMode::must_exist);
  if (!from)
    return from.error();
  auto target = store::Db::open_postgresql(cfg.store_postgresql);
  if (!target)
    return target.error();
  return store::copy_store(*from, *target);
}

}  // namespace wmk::setup

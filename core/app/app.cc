#include "core/app/app.h"

#include "core/store/schema.h"

namespace wmk::app {

Result<store::Db> open_store(const config::Config& cfg, store::OpenMode mode) {
  if (cfg.store == config::StoreEngine::sqlite)
    return store::Db::open(cfg.database_path(), mode);
  if (cfg.store_postgresql.empty()) {
    return make_error(Errc::config,
                      "store = postgresql needs store_postgresql, the connection string");
  }
  return store::Db::open_postgresql(cfg.store_postgresql);
}

Result<App> open_with(config::Config cfg, const util::Clock& clock) {
  auto db = open_store(cfg, store::OpenMode::must_exist);
  if (!db)
    return db.error();
  WMK_TRY(store::check_schema(*db));
  return App{std::move(cfg), std::move(db).value(), &clock};
}

Result<App> open(const std::optional<std::string>& config_path, const util::Clock& clock) {
  auto cfg = config::load(config::resolve_path(config_path));
  if (!cfg)
    return cfg.error();
  return open_with(std::move(cfg).value(), clock);
}

}  // namespace wmk::app

#include "core/app/app.h"

#include <cstdlib>

#include "core/keys/gnupg_home.h"
#include "core/store/schema.h"
#include "core/util/fs.h"

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

Result<App> init(const std::optional<std::string>& config_path,
                 const std::optional<std::string>& data_dir, const util::Clock& clock) {
  std::string path = config::resolve_path(config_path);
  config::Config cfg;
  if (util::path_exists(path)) {
    auto loaded = config::load(path);
    if (!loaded)
      return loaded.error();
    cfg = std::move(loaded).value();
    if (data_dir && *data_dir != cfg.data_dir) {
      return make_error(
          Errc::invalid_argument,
          "--data-dir " + *data_dir + " differs from data_dir " + cfg.data_dir + " in " + path);
    }
  } else if (data_dir) {
    cfg.data_dir = *data_dir;
    // Without an explicit config, the config lives in the data directory.
    if (!config_path && std::getenv(config::kConfigEnv) == nullptr) {
      path = cfg.data_dir + "/webmailkey.conf";
    }
  }
  if (cfg.data_dir.empty() || cfg.data_dir[0] != '/') {
    return make_error(Errc::invalid_argument, "the data directory must be an absolute path");
  }
  WMK_TRY(util::ensure_private_dir(cfg.data_dir));
  if (!util::path_exists(path)) {
    auto dir = path.substr(0, path.find_last_of('/'));
    if (!dir.empty())
      WMK_TRY(util::ensure_private_dir(dir));
    cfg.source = path;
    WMK_TRY(util::write_file_atomic(path, config::render(cfg), 0600));
  }
  auto db = open_store(cfg, store::OpenMode::create_if_missing);
  if (!db)
    return db.error();
  WMK_TRY(store::migrate(*db));
  WMK_TRY(keys::ensure_gnupg_home(cfg.gnupg_home()));
  return App{std::move(cfg), std::move(db).value(), &clock};
}

}  // namespace wmk::app

#include "core/setup/init.h"

#include <cstdlib>

#include "core/keys/gnupg_home.h"
#include "core/store/schema.h"
#include "core/util/fs.h"

namespace wmk::setup {

Result<app::App> init(const std::optional<std::string>& config_path,
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
  auto db = app::open_store(cfg, store::OpenMode::create_if_missing);
  if (!db)
    return db.error();
  WMK_TRY(store::migrate(*db));
  WMK_TRY(keys::ensure_gnupg_home(cfg.gnupg_home()));
  return app::App{std::move(cfg), std::move(db).value(), &clock};
}

}  // namespace wmk::setup

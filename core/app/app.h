#pragma once
// App: what every entry point opens first: the configuration, the database at the
// expected schema, and the clock. The CLI and the CGI programs hold one each.
// This module only opens: what creates, repairs or moves an installation (init,
// fsck, store migrate) is core/setup's, so that app includes nothing above config and
// store and every module may include it (cmake/check_core_shape.cmake).

#include <optional>
#include <string>

#include "core/config/config.h"
#include "core/store/db.h"
#include "core/util/clock.h"
#include "core/util/result.h"

namespace wmk::app {

struct App {
  config::Config config;
  store::Db db;
  const util::Clock* clock;
};

// Opens the store the config names (`store`): the SQLite file in data_dir, or the
// PostgreSQL database of `store_postgresql` (which must exist; mode is SQLite's).
// The schema is not checked.
Result<store::Db> open_store(const config::Config& cfg, store::OpenMode mode);

// Loads the config (see config::resolve_path) and opens the existing database,
// checking its schema. Errc::not_found / Errc::config say what to do next.
Result<App> open(const std::optional<std::string>& config_path,
                 const util::Clock& clock = util::system_clock());

// Opens with an already-loaded config.
Result<App> open_with(config::Config cfg, const util::Clock& clock = util::system_clock());

}  // namespace wmk::app

#pragma once
// App: what every entry point opens first: the configuration, the database at the
// expected schema, and the clock. The CLI and the CGI programs hold one each.

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

// Creates the data directory, the database (migrated), the GnuPG home and, when
// config_path does not exist, writes it with every key at its default.
// Idempotent. Returns the App opened on the result.
Result<App> init(const std::optional<std::string>& config_path,
                 const std::optional<std::string>& data_dir,
                 const util::Clock& clock = util::system_clock());

}  // namespace wmk::app

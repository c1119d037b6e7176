#pragma once
// `webmailkey init`: what creates an installation, where core/app only opens one. It
// needs the modules that app must not include (the GnuPG home is core/keys'), so it
// lives here, above both, and the dependency runs one way: setup -> keys -> app.

#include <optional>
#include <string>

#include "core/app/app.h"
#include "core/util/clock.h"
#include "core/util/result.h"

namespace wmk::setup {

// Creates the data directory, the database (migrated), the GnuPG home and, when
// config_path does not exist, writes it with every key at its default.
// Idempotent. Returns the App opened on the result. Errc::invalid_argument for a
// data directory that is not absolute or differs from the config's; what opening
// the store returns (Errc::unavailable: the PostgreSQL server cannot be reached).
Result<app::App> init(const std::optional<std::string>& config_path,
                      const std::optional<std::string>& data_dir,
                      const util::Clock& clock = util::system_clock());

}  // namespace wmk::setup

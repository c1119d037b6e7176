#pragma once
// `webmailkey store migrate --to postgresql`: the SQLite store in data_dir copied into
// the PostgreSQL database `store_postgresql` names (core/store/copy.h does the copy).

#include "core/config/config.h"
#include "core/store/copy.h"
#include "core/util/result.h"

namespace wmk::setup {

// Errc::invalid_argument for a target other than postgresql; Errc::config without a
// connection string; otherwise what store::copy_store returns. The source is opened
// read-only in intent: only SELECTs run on it.
Result<store::CopyReport> migrate_store(const config::Config& cfg, config::StoreEngine to);

}  // namespace wmk::setup

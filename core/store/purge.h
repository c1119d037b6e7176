#pragma once
// How a purge of expired rows runs: count only, or delete.

namespace wmk::store {

enum class PurgeMode { dry_run, remove };

}  // namespace wmk::store

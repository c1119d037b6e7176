#pragma once
// Recovery after a crash: what a process killed midway can leave behind, found and
// removed. The cheap part runs with every `webmailkey purge`; `webmailkey fsck` runs
// all of it.

#include <chrono>
#include <string>
#include <vector>

#include "core/app/app.h"
#include "core/store/purge.h"
#include "core/util/result.h"

namespace wmk::setup {

// Files in a Maildir tmp/ older than this are a delivery that died before its link
// (the Maildir specification's 36 hours).
inline constexpr std::chrono::seconds kMaildirTmpAge{std::chrono::hours(36)};
// Scratch GnuPG homes of export and encrypt (DATA_DIR/tmp/export-*, encrypt-*) older
// than this belong to no running operation. (Import homes are removed by the full
// check whenever no import runs.)
inline constexpr std::chrono::seconds kScratchAge{std::chrono::hours(1)};

struct FsckReport {
  int maildir_tmp = 0;                          // old files in Maildir tmp/ directories
  int deliveries = 0;                           // delivery records past kDeliveryMemory
  int scratch_homes = 0;                        // leftover scratch GnuPG homes
  std::vector<std::string> orphan_keys;         // fingerprints: secret keys with no row
  std::vector<std::string> orphan_public_keys;  // public keys no user or contact holds
  bool orphans_checked = false;                 // false: skipped (an import was running)
  // OpenPGP keys made before the store held their secret material, filled from this
  // node's GnuPG home, and those this home lacks too (their own node must fill them).
  std::vector<std::string> material_filled;
  std::vector<std::string> material_missing;
};

enum class FsckDepth {
  cheap,  // Maildir tmp/, delivery records, scratch homes: file-system walks only
  full,   // and the GnuPG home's keys against the keys table (runs gpg)
};

// Finds leftovers and, with PurgeMode::remove, removes them. A user's missing Maildir
// is not an error. Errc::io / Errc::config only when the GnuPG home cannot be read.
Result<FsckReport> fsck(app::App& app, FsckDepth depth, store::PurgeMode mode);

}  // namespace wmk::setup

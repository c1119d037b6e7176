#include "core/setup/fsck.h"

#include <sys/stat.h>

#include <filesystem>

#include "core/auth/users.h"
#include "core/keys/gnupg_home.h"
#include "core/keys/keystore.h"
#include "core/mail/deliver.h"
#include "core/mail/maildir.h"

namespace wmk::setup {

namespace {

int clean_scratch(const app::App& app, store::PurgeMode mode) {
  namespace fs = std::filesystem;
  const std::string dir = app.config.data_dir + "/tmp";
  const std::int64_t before = app.clock->now() - kScratchAge.count();
  int count = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    // Import homes are checked under the key lock by the full fsck; export and
    // encrypt homes hold no lock, so only their age tells they are left over.
    bool ours = name.rfind("export-", 0) == 0 || name.rfind("encrypt-", 0) == 0;
    struct stat st {};
    if (!ours || ::lstat(e.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_mtime >= before)
      continue;
    if (mode == store::PurgeMode::remove) {
      std::error_code rm;
      (void)keys::stop_agent(e.path().string());
      fs::remove_all(e.path(), rm);
      if (rm)
        continue;
    }
    ++count;
  }
  return count;
}

}  // namespace

Result<FsckReport> fsck(app::App& app, FsckDepth depth, store::PurgeMode mode) {
  FsckReport r;
  const bool dry_run = mode == store::PurgeMode::dry_run;
  // With mailbox = imap the Maildirs (if any) belong to the IMAP server.
  for (const auto& user : app.config.mailbox == config::MailboxBackend::maildir
                              ? auth::UserStore(app.db, *app.clock).list()
                              : std::vector<auth::User>()) {
    mail::Maildir md(config::maildir_for(app.config, user.login, user.email), *app.clock);
    r.maildir_tmp += md.clean_tmp(kMaildirTmpAge, dry_run);
  }
  r.deliveries = mail::purge_deliveries(app.db, *app.clock, mode);
  r.scratch_homes = clean_scratch(app, mode);
  if (depth == FsckDepth::full) {
    keys::KeyStore store(app.db, app.config, *app.clock);
    auto orphans = store.remove_orphans(mode);
    if (orphans) {
      r.orphan_keys = std::move(orphans->keys);
      r.orphan_public_keys = std::move(orphans->public_keys);
      r.scratch_homes += orphans->scratch_homes;
      r.orphans_checked = true;
    } else if (orphans.code() != Errc::busy) {
      return orphans.error();
    }
    auto material = store.fill_key_material(mode);
    if (!material)
      return material.error();
    r.material_filled = std::move(material->filled);
    r.material_missing = std::move(material->missing);
  }
  return r;
}

}  // namespace wmk::setup

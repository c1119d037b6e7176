// webmailkey fsck [--dry-run]: finds and removes what a killed process left behind.
#include <iostream>

#include "cli/cli.h"
#include "core/setup/fsck.h"
#include "core/util/json.h"

namespace wmk::cli {

void register_fsck(CLI::App& app, Context& ctx) {
  auto dry_run = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "fsck",
      "find and remove leftovers of killed processes: keys in the GnuPG home with no "
      "database row (users' or contacts'), old files in Maildir tmp/, scratch GnuPG homes, old "
      "delivery records; and store the secret key material of OpenPGP keys made before the "
      "database held it, from this node's GnuPG home");
  cmd->add_flag("--dry-run", *dry_run, "report what would be removed, remove nothing");
  cmd->callback([&ctx, dry_run] {
    auto a = open_app(ctx);
    if (!a)
      return;
    auto r = setup::fsck(*a, setup::FsckDepth::full,
                         *dry_run ? store::PurgeMode::dry_run : store::PurgeMode::remove);
    if (!r)
      return report(ctx, r.error());
    if (ctx.json) {
      util::JsonWriter w;
      w.begin_object()
          .field("dry_run", *dry_run)
          .field("maildir_tmp", r->maildir_tmp)
          .field("deliveries", r->deliveries)
          .field("scratch_homes", r->scratch_homes)
          .field("orphans_checked", r->orphans_checked)
          .key("orphan_keys")
          .begin_array();
      for (const auto& fpr : r->orphan_keys)
        w.value(fpr);
      w.end_array().key("orphan_public_keys").begin_array();
      for (const auto& fpr : r->orphan_public_keys)
        w.value(fpr);
      w.end_array().key("key_material_filled").begin_array();
      for (const auto& fpr : r->material_filled)
        w.value(fpr);
      w.end_array().key("key_material_missing").begin_array();
      for (const auto& fpr : r->material_missing)
        w.value(fpr);
      w.end_array().end_object();
      std::cout << w.str() << "\n";
      return;
    }
    std::cout << (*dry_run ? "would remove (dry run, nothing removed):\n" : "removed:\n")
              << "maildir_tmp: " << r->maildir_tmp << "\n"
              << "deliveries: " << r->deliveries << "\n"
              << "scratch_homes: " << r->scratch_homes << "\n";
    if (!r->orphans_checked) {
      std::cout << "orphan_keys: not checked (a key is being imported or generated; run "
                   "fsck again)\n";
    } else {
      std::cout << "orphan_keys: " << r->orphan_keys.size() << "\n";
      for (const auto& fpr : r->orphan_keys)
        std::cout << "  " << fpr << "\n";
      std::cout << "orphan_public_keys: " << r->orphan_public_keys.size() << "\n";
      for (const auto& fpr : r->orphan_public_keys)
        std::cout << "  " << fpr << "\n";
    }
    // Not a removal: the store gains the material of keys older than it (filled from
    // this node's GnuPG home, or missing here too: their own node must run fsck).
    std::cout << "key_material_filled: " << r->material_filled.size() << "\n";
    for (const auto& fpr : r->material_filled)
      std::cout << "  " << fpr << "\n";
    std::cout << "key_material_missing: " << r->material_missing.size() << "\n";
    for (const auto& fpr : r->material_missing)
      std::cout << "  " << fpr << "\n";
  });
}

}  // namespace wmk::cli

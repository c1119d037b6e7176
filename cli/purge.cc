// webmailkey purge [--dry-run]   (for cron)
#include <iostream>
#include <utility>
#include <vector>

#include "cli/cli.h"
#include "core/auth/throttle.h"
#include "core/grant/grant.h"
#include "core/session/session.h"
#include "core/setup/fsck.h"
#include "core/util/json.h"

namespace wmk::cli {

void register_purge(CLI::App& app, Context& ctx) {
  auto dry_run = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "purge",
      "delete expired sessions (with their grants), stale login-failure counters, and the "
      "cheap part of fsck (old Maildir tmp/ files, delivery records, scratch homes)");
  cmd->add_flag("--dry-run", *dry_run, "count what would be deleted, delete nothing");
  cmd->callback([&ctx, dry_run] {
    auto a = open_app(ctx);
    if (!a)
      return;
    const auto mode = *dry_run ? store::PurgeMode::dry_run : store::PurgeMode::remove;
    // One line (and one JSON field) per kind of row; each purge is its own core call.
    std::vector<std::pair<const char*, int>> counts;
    // Grants first, so expired ones are audited as grant.expire rather than
    // vanishing through the session cascade.
    auto grants = grant::GrantStore(a->db, *a->clock, a->config).purge(mode);
    if (!grants)
      return report(ctx, grants.error());
    counts.emplace_back("grants", *grants);
    counts.emplace_back("sessions", session::SessionStore(a->db, *a->clock, a->config).purge(mode));
    counts.emplace_back("throttle",
                        auth::Throttle(a->db, *a->clock, auth::throttle_policy(a->config),
                                       auth::throttle_lock_dir(a->config))
                            .purge_stale(mode));
    // The cheap part of fsck: old Maildir tmp/ files, delivery records, scratch homes.
    auto leftovers = setup::fsck(*a, setup::FsckDepth::cheap, mode);
    if (!leftovers)
      return report(ctx, leftovers.error());
    counts.emplace_back("deliveries", leftovers->deliveries);
    counts.emplace_back("maildir_tmp", leftovers->maildir_tmp);
    counts.emplace_back("scratch_homes", leftovers->scratch_homes);
    if (ctx.json) {
      util::JsonWriter w;
      w.begin_object().field("dry_run", *dry_run);
      for (const auto& [kind, n] : counts)
        w.field(kind, n);
      std::cout << w.end_object().str() << "\n";
      return;
    }
    std::cout << (*dry_run ? "would delete (dry run, nothing deleted):\n" : "deleted:\n");
    for (const auto& [kind, n] : counts)
      std::cout << kind << ": " << n << "\n";
  });
}

}  // namespace wmk::cli

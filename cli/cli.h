#pragma once
// Shared plumbing for the CLI subcommands: one file per subcommand registers itself
// on the CLI11 app, parses, calls core and prints. No SQL, GPGME or OpenSSL here.

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "core/app/app.h"
#include "core/util/result.h"

namespace wmk::cli {

// Exit statuses of the contract: 0 ok, 1 failure, 2 usage error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct Context {
  std::optional<std::string> config_path;
  bool json = false;
  int exit_code = kExitOk;
};

// Opens the App from the global --config, or prints the reason and returns nullopt
// (setting exit_code to 1).
std::optional<app::App> open_app(Context& ctx);

// Prints "webmailkey: MESSAGE" to stderr (or a JSON error object on stdout with --json)
// and sets the exit code: 2 for invalid_argument, else 1.
void report(Context& ctx, const Error& error);

// Each subcommand file defines one of these.
void register_init(CLI::App& app, Context& ctx);
void register_config(CLI::App& app, Context& ctx);
void register_user(CLI::App& app, Context& ctx);
void register_session(CLI::App& app, Context& ctx);
void register_purge(CLI::App& app, Context& ctx);
void register_fsck(CLI::App& app, Context& ctx);
void register_deliver(CLI::App& app, Context& ctx);
void register_audit(CLI::App& app, Context& ctx);
void register_key(CLI::App& app, Context& ctx);
void register_grant(CLI::App& app, Context& ctx);
void register_help_dump(CLI::App& app, Context& ctx);
void register_contact(CLI::App& app, Context& ctx);
void register_store(CLI::App& app, Context& ctx);

}  // namespace wmk::cli

#pragma once
// Audit rows for key operations, written through audit::AuditLog. Every row says
// who (the actor, in detail), which key (fingerprint, owner login), what (event),
// when (the clock) and the outcome.

#include <string>
#include <string_view>

#include "core/store/db.h"
#include "core/util/clock.h"

namespace wmk::keys {

// Who asks for a key operation: the admin at the CLI, or a web session.
struct Actor {
  std::string who;          // "cli:root", or the login of the web user
  std::string session;      // short session id, "" outside the web
  std::string client_addr;  // "" outside the web

  // The admin running the CLI, named after the Unix account (audit::admin_actor).
  static Actor cli();
};

// Events, one per kind of key operation.
inline constexpr const char* kEventGenerate = "key.generate";
inline constexpr const char* kEventImport = "key.import";
inline constexpr const char* kEventUnlock = "key.unlock";
inline constexpr const char* kEventDecrypt = "key.decrypt";
inline constexpr const char* kEventSign = "key.sign";
inline constexpr const char* kEventPasswd = "key.passwd";
inline constexpr const char* kEventDelete = "key.delete";
inline constexpr const char* kEventExport = "key.export";

// Appends one audit row: login is the key owner's, outcome "ok" or "fail", detail
// says what failed (never a secret). Throws StoreError only on a broken database.
void record_key_event(store::Db& db, const util::Clock& clock, const Actor& actor,
                      std::string_view owner_login, std::string_view event,
                      std::string_view outcome, std::string_view fingerprint,
                      std::string_view detail);

}  // namespace wmk::keys

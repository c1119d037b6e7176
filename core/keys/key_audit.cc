#include "core/keys/key_audit.h"

#include <pwd.h>
#include <unistd.h>

namespace wmk::keys {

Actor Actor::cli() {
  struct passwd* pw = ::getpwuid(::getuid());
  std::string name =
      pw != nullptr && pw->pw_name != nullptr ? pw->pw_name : "uid " + std::to_string(::getuid());
  return Actor{"admin:" + name, "", ""};
}

void record_key_event(store::Db& db, const util::Clock& clock, const Actor& actor,
                      std::string_view owner_login, std::string_view event,
                      std::string_view outcome, std::string_view fingerprint,
                      std::string_view detail) {
  std::string full_detail = "by " + actor.who;
  if (!detail.empty()) {
    full_detail += ": ";
    full_detail += detail;
  }
  db.prepare(
        "INSERT INTO audit (at, login, event, outcome, key_fpr, session, client_addr, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(clock.now(), owner_login, event, outcome, fingerprint, actor.session,
                actor.client_addr, full_detail)
      .run();
}

}  // namespace wmk::keys

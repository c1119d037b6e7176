#include "core/keys/key_audit.h"

#include "core/audit/audit.h"

namespace wmk::keys {

Actor Actor::cli() {
  return Actor{audit::admin_actor(), "", ""};
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
  audit::AuditLog(db, clock).record(
      audit::AuditEvent{std::string(owner_login), std::string(event), std::string(outcome),
                        std::string(fingerprint), actor.session, actor.client_addr, full_detail});
}

}  // namespace wmk::keys

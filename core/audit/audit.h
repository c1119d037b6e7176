#pragma once
// The audit log: an append-only table of security events (logins, unlocks, decrypts,
// signatures, revocations, expiries, admin actions, failures). Users see their own
// key's history from it; admins query it with `webmailkey audit`.
// Never put a secret in any field: no password, passphrase, token or key material.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/store/db.h"
#include "core/util/clock.h"

namespace wmk::audit {

// Event and outcome names used across the product (free text is allowed, but reuse these).
namespace event {
inline constexpr const char* kLogin = "login";
inline constexpr const char* kLogout = "logout";
inline constexpr const char* kSessionExpire = "session.expire";
inline constexpr const char* kSessionKill = "session.kill";
inline constexpr const char* kUserAdd = "user.add";
inline constexpr const char* kUserDelete = "user.delete";
inline constexpr const char* kUserPasswd = "user.passwd";
inline constexpr const char* kUserDisable = "user.disable";
inline constexpr const char* kUserEnable = "user.enable";
}  // namespace event
namespace outcome {
inline constexpr const char* kOk = "ok";
inline constexpr const char* kFail = "fail";
inline constexpr const char* kLockedOut = "locked_out";
inline constexpr const char* kDisabled = "disabled";
inline constexpr const char* kExpired = "expired";
inline constexpr const char* kDenied = "denied";
// The request ended (killed, or an error) before its check finished; counted as a failure.
inline constexpr const char* kInterrupted = "interrupted";
// Another attempt on the same account or key was in flight; nothing was tried or counted.
inline constexpr const char* kBusy = "busy";
}  // namespace outcome

struct AuditEvent {
  std::string login;
  std::string event;    // see namespace event
  std::string outcome;  // see namespace outcome
  std::string key_fpr;
  std::string session;  // the short session id
  std::string client_addr;
  std::string detail;  // free text for people; no secrets
};

struct AuditEntry {
  std::int64_t id = 0;
  std::int64_t at = 0;  // Unix seconds
  AuditEvent event;
};

struct AuditQuery {
  std::optional<std::string> login;
  std::optional<std::int64_t> since;   // at >= since
  std::optional<std::string> key_fpr;  // the stored fingerprint or a prefix of it
  int limit = 100;                     // 0: no limit
};

class AuditLog {
 public:
  AuditLog(store::Db& db, const util::Clock& clock) : db_(db), clock_(clock) {}

  // Appends e stamped with the clock's time. Control characters in the fields become
  // '?' and each field is cut at 1000 bytes, so a line of output stays one line.
  // Joins the caller's open transaction, if any. Throws StoreError only on a broken
  // database.
  void record(const AuditEvent& e);

  // Matching entries, newest first, at most q.limit of them.
  std::vector<AuditEntry> query(const AuditQuery& q);

 private:
  store::Db& db_;
  const util::Clock& clock_;
};

// Who runs this admin command, for the detail of admin events: "cli:USER" from the
// real uid (the user name, or the number when it has none).
std::string admin_actor();

}  // namespace wmk::audit

#pragma once
// Throttle: slows online guessing. Failures are counted per scope ("login:alice",
// "addr:192.0.2.7", "key:FINGERPRINT") in table auth_failures. After
// policy.max_failures failures in a row the scope is locked for policy.lockout, and
// each further failure doubles the lock, up to policy.max_lockout. A success resets
// the scope; failures are forgotten after max_lockout of quiet following the last
// failure and the end of the last lock.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/store/db.h"
#include "core/store/purge.h"
#include "core/util/clock.h"
#include "core/util/result.h"

namespace wmk::config {
struct Config;
}

namespace wmk::auth {

struct ThrottlePolicy {
  std::uint32_t max_failures = 5;
  std::chrono::seconds lockout{60};
  std::chrono::seconds max_lockout{std::chrono::hours(24)};
};

// The policy from the config's max_failures and lockout, capped at one day.
ThrottlePolicy throttle_policy(const config::Config& cfg);

// Scope names; the same name always maps to the same counter.
std::string login_scope(std::string_view login);
std::string address_scope(std::string_view client_addr);
std::string key_scope(std::string_view fingerprint);

class Throttle {
 public:
  Throttle(store::Db& db, const util::Clock& clock, ThrottlePolicy policy)
      : db_(db), clock_(clock), policy_(policy) {}

  // Ok if scope may try now; Errc::locked_out, with the seconds to wait in the message,
  // while a lock is in force.
  Status check(const std::string& scope);

  // check() and, if allowed, counts a failure in the same transaction, before the
  // caller verifies anything: concurrent guesses cannot all slip past one check.
  // The caller calls record_success() when the attempt turns out right.
  // Errc::locked_out as check().
  Status acquire(const std::string& scope);

  // Counts one failure and sets the lock when the count reaches the limit.
  void record_failure(const std::string& scope);
  // Forgets the failures of scope.
  void record_success(const std::string& scope);

  // Seconds until scope may try again; 0 when it may try now.
  std::int64_t seconds_locked(const std::string& scope);
  // Failures in a row currently counted for scope.
  std::uint32_t failures(const std::string& scope);

  // Rows that would be forgotten anyway (max_lockout since the last failure and since
  // the lock ended): counts them, and deletes them unless mode is dry_run.
  int purge_stale(store::PurgeMode mode);

 private:
  void count_failure(const std::string& scope, std::int64_t now);
  Status locked_status(const std::string& scope, std::int64_t until, std::int64_t now) const;

  store::Db& db_;
  const util::Clock& clock_;
  ThrottlePolicy policy_;
};

}  // namespace wmk::auth

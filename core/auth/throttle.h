#pragma once
// Throttle: slows online guessing. Failures are counted per scope ("login:alice",
// "addr:192.0.2.7", "key:FINGERPRINT") in table auth_failures. After
// policy.max_failures failures in a row (policy.address_max_failures for an address)
// the scope is locked for policy.lockout, and each further failure doubles the lock,
// up to policy.max_lockout. A success resets the scope; failures are forgotten after
// max_lockout of quiet following the last failure and the end of the last lock.
//
// A guess is checked inside an Attempt (Throttle::begin): it holds one of the scope's
// few slots (a lock file under lock_dir, flock(2)), so only that many guesses per scope
// are in flight at once and each is judged on the failures of the guesses that ended
// before it. A marker in the slot's file says an attempt is running; the kernel drops
// the lock when its process dies, and the next attempt to take the slot finds the
// marker: that attempt was interrupted, and counts as a failure (audited as
// `interrupted`), so killing requests cannot buy free guesses.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/audit/audit.h"
#include "core/store/db.h"
#include "core/store/purge.h"
#include "core/util/clock.h"
#include "core/util/fs.h"
#include "core/util/result.h"

namespace wmk::config {
struct Config;
}

namespace wmk::auth {

struct ThrottlePolicy {
  std::uint32_t max_failures = 5;
  std::uint32_t address_max_failures = 20;
  std::chrono::seconds lockout{60};
  std::chrono::seconds max_lockout{std::chrono::hours(24)};
};

// How long a guess waits for a slot of its scope before it is told "busy".
inline constexpr std::chrono::milliseconds kAttemptWait{8000};
// Guesses in flight at once: per key and per account one (the KDF runs once at a
// time), per client address a few (people behind one NAT sign in at once).
inline constexpr int kKeySlots = 1;
inline constexpr int kLoginSlots = 1;
inline constexpr int kAddressSlots = 4;

// The policy from the config's max_failures, max_failures_per_address and lockout,
// capped at one day.
ThrottlePolicy throttle_policy(const config::Config& cfg);

// Where the slot files live: DATA_DIR/throttle.
std::string throttle_lock_dir(const config::Config& cfg);

// Scope names; the same name always maps to the same counter.
std::string login_scope(std::string_view login);
std::string address_scope(std::string_view client_addr);
std::string key_scope(std::string_view fingerprint);

// A scope an attempt takes part in, and how many of its guesses may be in flight.
struct AttemptScope {
  std::string scope;
  int slots = 1;
};

// How a guess turned out.
enum class Verdict {
  right,      // the secret was right: every scope's failures are forgotten
  wrong,      // counts one failure on every scope
  not_tried,  // nothing was checked (the key vanished, or is in use elsewhere)
};

class Throttle;

// One guess in flight (move-only). finish() records its verdict and frees the slots.
// An Attempt destroyed unfinished (an exception) leaves its marker, as a killed
// process does, and the next attempt on those slots counts it as interrupted.
class Attempt {
 public:
  Attempt(Attempt&&) noexcept = default;
  Attempt& operator=(Attempt&&) noexcept = default;
  Attempt(const Attempt&) = delete;
  Attempt& operator=(const Attempt&) = delete;
  ~Attempt() = default;

  void finish(Verdict verdict);

 private:
  friend class Throttle;
  struct Slot {
    std::string scope;
    util::Fd fd;
  };
  Attempt(Throttle& throttle, std::vector<Slot> slots)
      : throttle_(&throttle), slots_(std::move(slots)) {}
  void clear_markers();

  Throttle* throttle_;
  std::vector<Slot> slots_;
};

class Throttle {
 public:
  // Counting only (check, record_*, purge): no attempts.
  Throttle(store::Db& db, const util::Clock& clock, ThrottlePolicy policy)
      : db_(db), clock_(clock), policy_(policy) {}
  // With lock_dir (see throttle_lock_dir) for begin().
  Throttle(store::Db& db, const util::Clock& clock, ThrottlePolicy policy, std::string lock_dir)
      : db_(db), clock_(clock), policy_(policy), lock_dir_(std::move(lock_dir)) {}

  // Ok if scope may try now; Errc::locked_out, with the seconds to wait in the message
  // (and how many of the failures were interrupted attempts), while a lock is in force.
  Status check(const std::string& scope);

  // Starts one guess on scopes (in this order): takes a free slot of each, waiting up
  // to wait; settles any interrupted attempt found on a slot (a failure, audited as
  // `interrupted` with what the marker says); then refuses if a scope is locked.
  // what describes the attempt for that audit row (login, event, key, session, address;
  // outcome and detail are filled in). Errors: Errc::busy when no slot came free in
  // time (nothing counted), Errc::locked_out as check(), Errc::io if the lock directory
  // cannot be used.
  Result<Attempt> begin(const std::vector<AttemptScope>& scopes, const audit::AuditEvent& what,
                        std::chrono::milliseconds wait = kAttemptWait);

  // Counts one failure and sets the lock when the count reaches the limit.
  void record_failure(const std::string& scope);
  // Forgets the failures of scope.
  void record_success(const std::string& scope);

  // Seconds until scope may try again; 0 when it may try now.
  std::int64_t seconds_locked(const std::string& scope);
  // Failures in a row currently counted for scope.
  std::uint32_t failures(const std::string& scope);
  // Of those, how many were interrupted attempts.
  std::uint32_t interrupted(const std::string& scope);

  // Rows that would be forgotten anyway (max_lockout since the last failure and since
  // the lock ended): counts them, and deletes them unless mode is dry_run. Also removes
  // slot files that are free, hold no marker and were not used for a day.
  int purge_stale(store::PurgeMode mode);

 private:
  friend class Attempt;
  enum class Cause { wrong, interrupted };
  void count_failure(const std::string& scope, std::int64_t now, Cause cause);
  Status locked_status(const std::string& scope, std::int64_t until, std::int64_t now,
                       std::int64_t interrupted) const;
  void settle_interrupted(const std::string& scope, const std::string& marker);
  std::uint32_t limit_for(const std::string& scope) const;

  store::Db& db_;
  const util::Clock& clock_;
  ThrottlePolicy policy_;
  std::string lock_dir_;
};

}  // namespace wmk::auth

#pragma once
// A web session's use of its user's keys (DESIGN flows 3-6): a key opened through the
// session's live grant and the grant cookie, or unlocked with the key passphrase,
// which records a grant for the session and sets the grant cookie. Programs that use
// it list kGrantCookie among their secret cookies.

#include <optional>
#include <string>

#include "cgi/common/guard.h"
#include "core/grant/grant.h"
#include "core/keys/keystore.h"
#include "core/util/secret.h"

namespace wmk::cgi {

class KeyAccess {
 public:
  // For ctx's live session; key operations are audited as the session's user.
  explicit KeyAccess(Context& ctx);
  KeyAccess(const KeyAccess&) = delete;
  KeyAccess& operator=(const KeyAccess&) = delete;

  keys::KeyStore& keys() { return keys_; }

  // The key opened through this session's live grant on it; nullopt when there is
  // none. When a grant existed but could not be used (expired, cookie missing or
  // wrong) why says so.
  std::optional<keys::UnlockedKey> from_grant(const keys::KeyInfo& key, std::optional<Error>* why);

  // Unlocks key with passphrase through webflow::unlock (throttled per key, audited)
  // and records a grant for this session, making a grant cookie when the session has
  // none yet and giving the session a new token (ctx's session is replaced; see
  // add_cookies). Errc::wrong_passphrase, Errc::locked_out (wait),
  // Errc::key_in_use (another session holds a live grant: see live_elsewhere),
  // Errc::expired/revoked.
  Result<keys::UnlockedKey> unlock(const keys::KeyInfo& key, const util::SecretBuffer& passphrase);

  // Adds the cookies that unlock() made, if any, to response: the session's new token
  // and a new grant cookie.
  void add_cookies(Response& response);

  // The live grant on key in another session, if any (for the key-in-use page).
  std::optional<grant::GrantInfo> live_elsewhere(const keys::KeyInfo& key);

 private:
  std::optional<util::SecretBuffer> grant_secret();

  Context& ctx_;
  keys::KeyStore keys_;
  grant::GrantStore grants_;
  std::optional<util::SecretBuffer> cookie_secret_;
  std::optional<SetCookie> new_cookie_;
  std::optional<SetCookie> new_session_cookie_;
  bool cookie_read_ = false;
};

}  // namespace wmk::cgi

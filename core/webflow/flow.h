#pragma once
// The browser's key flows (DESIGN §2, flows 2-4, 6 and 7) in one place, so that the
// CGI programs only parse, call and render:
//   - open an encrypted message of the user's own mailbox under this session's
//     grant: decrypted, or "unlock first", or "the key is in use elsewhere";
//   - unlock a key with its passphrase into a grant for this session (throttled per
//     key, audited), the grant secret going to the browser's cookie only;
//   - stop another session's grant on one of the user's keys (after the user saw and
//     confirmed which one), lock this session's grants;
//   - the key state every page shows (unlocked keys and time left).
// Only messages of the session user's own Maildir are ever decrypted: callers name a
// folder and a uid, never ciphertext. Nothing decrypted is stored.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/app/app.h"
#include "core/grant/grant.h"
#include "core/keys/types.h"
#include "core/mail/maildir.h"
#include "core/mail/mime.h"
#include "core/reader/reader.h"
#include "core/session/session.h"
#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::webflow {

// Where the acting request comes from (for the grant row and the audit log).
struct Client {
  std::string addr;
  std::string user_agent;
};

// A message of the session user's own mailbox.
struct MessageRef {
  mail::Folder folder = mail::Folder::inbox;
  std::string uid;
};

// What decrypting a message showed: plain and decrypted segments kept apart, the
// signature verdicts (core/reader). Never stored anywhere.
using DecryptedView = reader::DecryptedView;

// This session's grant opened the key and the message was decrypted.
struct Decrypted {
  keys::KeyInfo key;
  grant::GrantInfo grant;        // after this use: its new idle deadline
  mail::ParsedMessage envelope;  // the stored message's headers (From, To, Subject, Date)
  DecryptedView view;
};

// One part of the decrypted content, decrypted once for this request (a download).
struct DecryptedPart {
  keys::KeyInfo key;
  mail::PartContent content;
};

// This session holds no usable grant on the key and no other session does: the
// unlock page.
struct NeedUnlock {
  keys::KeyInfo key;
  // Why an earlier grant of this session no longer works ("" if there was none):
  // e.g. it timed out, or the browser's grant cookie was missing.
  std::string reason;
};

// Another session holds the key's live grant (flow 6): when, from where.
struct InUseElsewhere {
  keys::KeyInfo key;
  grant::GrantInfo other;
};

using DecryptOutcome = std::variant<Decrypted, NeedUnlock, InUseElsewhere>;
using PartOutcome = std::variant<DecryptedPart, NeedUnlock, InUseElsewhere>;

// A key was unlocked: the grant, and the grant secret that opens it. new_cookie says
// the secret is new and must be set as the browser's grant cookie
// (cgi SetCookie::session_secret of grant::encode_grant_cookie); otherwise it is the one the
// browser already holds. The session was given a new token (a privilege change:
// SessionStore::rotate), with the session's grants moved along: use `session` from now on and set
// `session_token` as the browser's session cookie — the old token no longer works.
struct Unlocked {
  keys::KeyInfo key;
  grant::GrantInfo grant;
  util::SecretBuffer grant_secret;
  bool new_cookie = false;
  session::Session session;
  util::SecretBuffer session_token;
};

using UnlockOutcome = std::variant<Unlocked, InUseElsewhere>;

// Whether unlock() demands the confirmation field (config unlock_confirmation).
enum class Confirmation { required, not_asked };

// One key of the user and who holds a grant on it now.
struct KeyState {
  keys::KeyInfo key;
  std::optional<grant::GrantInfo> mine;   // this session's live grant
  std::optional<grant::GrantInfo> other;  // another session's live grant
};

// A key unlocked in this session, for the banner of every page.
struct UnlockedKeyState {
  std::int64_t key_id = 0;
  std::string fingerprint;
  keys::KeyType type = keys::KeyType::openpgp;
  std::string grant_id;
  std::int64_t seconds_left = 0;
  std::int64_t deadline = 0;  // Unix seconds
};

// What stop_other() did.
enum class StopResult {
  stopped,       // the confirmed grant was revoked; its session is told at its next request
  already_gone,  // no other session holds the key any more: go on to unlock
  changed,       // another grant than the confirmed one holds the key now: confirm again
  own,           // the live grant is this session's own: nothing to stop
};

struct StopOutcome {
  StopResult result = StopResult::stopped;
  std::optional<grant::GrantInfo> current;  // the grant holding the key now (changed)
};

// The grant secret in the browser's grant cookie value; nullopt when the cookie is
// absent or malformed (a damaged or forged cookie counts as none).
std::optional<util::SecretBuffer> grant_secret_from_cookie(
    const std::optional<util::SecretBuffer>& cookie);

// The key of the session user that decrypts message ref. Errc::not_found if there is
// no such message in the user's mailbox (Errc::invalid_argument for a malformed uid);
// Errc::unsupported if the message is not encrypted; Errc::not_found (with a message
// saying so) if the user holds no key of the message's kind.
Result<keys::KeyInfo> key_for_message(app::App& app, const session::Session& session,
                                      const MessageRef& ref);
// The same for a message of the user's mailbox that this request has already read and
// parsed (the message page), so that it is not read and parsed again.
Result<keys::KeyInfo> key_for_message(app::App& app, const session::Session& session,
                                      const mail::Message& message);

// Who holds a grant on key now; Errc::not_found if key is not the session user's.
Result<KeyState> key_state(app::App& app, const session::Session& session,
                           const keys::KeyInfo& key);

// Every key of the session user with its grant state. Errc::not_found if the user
// is gone.
Result<std::vector<KeyState>> key_states(app::App& app, const session::Session& session);

// Flows 3 and 6: the message decrypted under this session's grant (marked used), or
// NeedUnlock, or InUseElsewhere. grant_secret comes from the browser's cookie
// (grant_secret_from_cookie); without it an existing grant of this session cannot be
// opened and is ended (NeedUnlock says why). Errors: those of key_for_message;
// Errc::crypto if the message does not decrypt with the key or lacks integrity
// protection (OpenPGP without MDC; S/MIME CBC when smime_unprotected = refuse:
// reader::decrypt), nothing of it is shown; Errc::revoked if the key was revoked. A
// key past its expiry still decrypts (DecryptedView::key_expired).
Result<DecryptOutcome> open_for_decrypt(app::App& app, const session::Session& session,
                                        const std::optional<util::SecretBuffer>& grant_secret,
                                        const MessageRef& ref, const Client& client);

// The attachment part_id of the decrypted content of message ref (an attachment of
// the view with reader::PartSource::decrypted), under this session's grant as
// open_for_decrypt. Errors as open_for_decrypt, plus Errc::invalid_argument for a
// malformed part id and Errc::not_found if the decrypted content has no such part.
Result<PartOutcome> open_decrypted_part(app::App& app, const session::Session& session,
                                        const std::optional<util::SecretBuffer>& grant_secret,
                                        const MessageRef& ref, std::string_view part_id,
                                        const Client& client);

// Flow 4: checks passphrase (and confirmation, when required) for key and records a
// grant for this session, sealed under the browser's grant secret (grant_secret, if
// the session already uses one) or a new one. Every attempt is throttled per key
// before the KDF runs and audited. Errors:
//   Errc::invalid_argument — empty passphrase, missing confirmation, or the two differ
//                            (not counted as a guess);
//   Errc::locked_out       — too many failed attempts for this key: the message says
//                            how long to wait and how many were interrupted requests;
//   Errc::busy             — another unlock of this key was checked for kAttemptWait;
//                            nothing was tried or counted;
//   Errc::wrong_passphrase — nothing unlocked;
//   Errc::expired / Errc::revoked — the key itself cannot be used;
//   Errc::not_found        — the key is not the session user's, or the session ended.
// A live grant of another session gives InUseElsewhere (checked before and after the
// KDF: two sessions racing never both get a grant). On success the session has a new
// token (see Unlocked).
Result<UnlockOutcome> unlock(app::App& app, const session::Session& session,
                             const keys::KeyInfo& key, const util::SecretBuffer& passphrase,
                             const std::optional<util::SecretBuffer>& confirmation,
                             Confirmation mode,
                             const std::optional<util::SecretBuffer>& grant_secret,
                             const Client& client);

// Flow 6: ends grant_id, the other session's grant on key that the confirmation page
// showed. A grant that replaced it meanwhile is never stopped unseen (changed).
// Errc::not_found if key is not the session user's.
Result<StopOutcome> stop_other(app::App& app, const session::Session& session,
                               const keys::KeyInfo& key, std::string_view grant_id,
                               const Client& client);

// /lock: ends every grant of this session. Returns how many ended.
Result<int> lock(app::App& app, const session::Session& session, const Client& client);

// The keys unlocked in this session with the seconds each has left, soonest first.
std::vector<UnlockedKeyState> key_banner_state(app::App& app, const session::Session& session);

// One entry of the user's key-use history.
struct HistoryEntry {
  std::int64_t at = 0;
  std::string event;        // "key.unlock", "key.decrypt", "grant.revoke", ...
  std::string outcome;      // "ok", "fail", "expired", "denied", "locked_out"
  std::string fingerprint;  // the key
  std::string session;      // the short session id
  std::string client_addr;
  std::string detail;
};

// The user's own keys' use history from the audit log (unlock, decrypt, sign, grant
// creation, revocation, expiry), newest first, at most limit entries.
std::vector<HistoryEntry> key_history(app::App& app, const session::Session& session,
                                      int limit = 50);

}  // namespace wmk::webflow

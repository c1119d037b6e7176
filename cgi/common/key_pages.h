#pragma once
// The pages of the key flows (DESIGN §2 flows 3, 4 and 6) and the key banner that
// every page carries: unlock (data-page="unlock"), key in use elsewhere ("in-use"),
// stop the other session? ("confirm-stop"), the decrypted message ("decrypted"),
// and the responses for the flows' errors. Rendering only: the decisions are in
// core/webflow.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cgi/common/guard.h"
#include "cgi/common/layout.h"
#include "core/webflow/flow.h"
#include "core/webflow/key_session.h"

namespace wmk::cgi {

// "OpenPGP" or "S/MIME".
std::string key_kind(keys::KeyType type);

// "OpenPGP key 1234 ABCD 5678 EF90 …" : the kind and the start of the fingerprint.
std::string key_label(keys::KeyType type, std::string_view fingerprint);

// "9 min left", "less than a minute left".
std::string time_left(std::int64_t seconds);

// The banner for every page of a session with unlocked keys: each key with its time
// left, and a Lock button that returns to back (a same-site path). Empty when no
// key is unlocked in this session.
Html key_banner(Context& ctx, std::string_view back);

// The path a Lock button may return to: back if it is a same-site path (one leading
// '/', no backslash or control character), else /inbox.
std::string safe_return_path(std::string_view back);

// The grant cookie of a request's browser, decoded; nullopt if absent or malformed.
std::optional<util::SecretBuffer> request_grant_secret(Request& request);

// Where the request comes from, for grants and the audit log.
webflow::Client client_of(const Request& request);

// This request's use of the user's keys (core/webflow/key_session.h), with the
// browser's grant cookie (taken from the request: make one per request).
std::unique_ptr<webflow::KeySession> key_session(Context& ctx);

// The one unlock page (data-page="unlock") for key, for a message and for a draft:
// passphrase, confirmation (unless the config turns it off), OK and Clear, posting to
// /unlock with target_fields (what to do once unlocked: `id` and `folder` of a
// message, or `draft` and `then`); back_url is the way back. notice: why it is shown
// (again): mismatch, earlier unlock ended...
Page unlock_page(Context& ctx, const keys::KeyInfo& key, const Html& target_fields,
                 std::string_view back_url, Nav nav, std::optional<Notice> notice = std::nullopt);
// The unlock page for the key of message ref.
Page unlock_page(Context& ctx, const webflow::MessageRef& ref, const keys::KeyInfo& key,
                 std::optional<Notice> notice = std::nullopt);

// The unlock form of this request (fields `passphrase` and `confirm`, declared
// secret by the program) run through keys.unlock() for key with the config's
// confirmation rule. Shared by /unlock's message and draft branches. On Unlocked the
// request goes on as the session with its new token (ctx.session is replaced, and
// keys goes on with the new grant secret); pass the outcome to set_unlock_cookies()
// on the response.
Result<webflow::UnlockOutcome> unlock_from_form(Context& ctx, webflow::KeySession& keys,
                                                const keys::KeyInfo& key);

// Sets the cookies an unlock gives on r: the session's new token, and the grant
// cookie when the unlock made a new grant secret.
void set_unlock_cookies(Response& r, const webflow::Unlocked& unlocked);

// 409: the key is unlocked in another session (when, from where); Decrypt again
// leads to the confirmation.
Response in_use_response(Context& ctx, const webflow::MessageRef& ref,
                         const webflow::InUseElsewhere& in_use);

// "Stop the key's use in the other session?" with OK (revokes exactly that grant)
// and Cancel.
Response confirm_stop_response(Context& ctx, const webflow::MessageRef& ref,
                               const keys::KeyInfo& key, const grant::GrantInfo& other);

// The decrypted message: envelope headers, the indicators (encrypted, cipher,
// integrity, signatures) outside the content, the content; Cache-Control: no-store.
Response decrypted_response(Context& ctx, const webflow::MessageRef& ref,
                            const webflow::Decrypted& decrypted);

// A decrypted attachment as a download (never shown inline; Cache-Control: no-store).
Response decrypted_part_response(const webflow::DecryptedPart& part);

// What any of the flows' outcomes is shown as: the decrypted view, the unlock page,
// or the in-use page.
Response outcome_response(Context& ctx, const webflow::MessageRef& ref,
                          webflow::DecryptOutcome& outcome);

// The response for an error of the key flows, in words for the user, on the
// message's own page: 404 no such message or no key for it, 400 not encrypted or
// decryption refused (no integrity protection, not for this key, altered), 403 key
// expired or revoked, 429 locked after too many failed attempts, 503 not tried (another
// unlock of the key in flight), 409 busy. Anything else is a
// bug: thrown, so the guard answers 500.
Response flow_error_response(Context& ctx, const webflow::MessageRef& ref, const Error& error);

}  // namespace wmk::cgi

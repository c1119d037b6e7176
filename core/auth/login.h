#pragma once
// The login check: throttle, password verification, account state, a new session,
// and an audit record, in that order. Shared by the /login CGI and the tests.

#include <optional>
#include <string>
#include <string_view>

#include "core/app/app.h"
#include "core/auth/users.h"
#include "core/session/session.h"
#include "core/util/result.h"
#include "core/util/secret.h"

namespace wmk::auth {

struct LoginOutcome {
  User user;
  session::NewSession session;  // session.token is the cookie value
  // imap_login = user: the value of the cookie session::kMailCookieName, which opens the
  // session's kept mail password; a credential. nullopt otherwise.
  std::optional<util::SecretBuffer> mail_cookie;
};

// Logs login in with password from client_addr (may be empty: no per-address limit).
// The login name is matched case-insensitively. Errors:
//   Errc::bad_credentials — unknown login or wrong password (one message for both);
//   Errc::locked_out      — too many failures for this login or address; the message
//                           says how many seconds to wait (and how many of the
//                           failures were interrupted requests);
//   Errc::busy            — another check for this login (or several for this address)
//                           ran for kAttemptWait; nothing was tried or counted;
//   Errc::disabled        — right password, but the account is switched off.
// Every outcome is audited. An unknown login costs the same Argon2id work as a known
// one, so response time does not tell which logins exist.
Result<LoginOutcome> login(app::App& app, const std::string& login,
                           const util::SecretBuffer& password, std::string_view client_addr,
                           std::string_view user_agent);

// A well-formed PHC string with params that matches no password: verifying against it
// costs what verifying a real hash with those params costs.
std::string dummy_password_hash(const crypto::KdfParams& params);

}  // namespace wmk::auth

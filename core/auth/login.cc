#include "core/auth/login.h"

#include "core/util/secret_cookie.h"

#include <algorithm>
#include <cctype>

#include "core/audit/audit.h"
#include "core/auth/throttle.h"

namespace wmk::auth {

namespace {

constexpr const char* kBadCredentials = "wrong login name or password";

// The "m=..,t=..,p=.." part of a PHC string, or "" if it has none.
std::string phc_params(const std::string& phc) {
  // $argon2id$v=19$m=65536,t=2,p=1$salt$hash
  std::size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    pos = phc.find('$', pos);
    if (pos == std::string::npos)
      return "";
    ++pos;
  }
  auto end = phc.find('$', pos);
  return end == std::string::npos ? "" : phc.substr(pos, end - pos);
}

}  // namespace

std::string dummy_password_hash(const crypto::KdfParams& params) {
  // Standard base64 without padding, as Argon2 encodes: 16 salt bytes and 32 hash bytes,
  // all zero. No password hashes to 32 zero bytes in practice.
  return "$argon2id$v=19$" + params.to_string() + "$" + std::string(22, 'A') + "$" +
         std::string(43, 'A');
}

Result<LoginOutcome> login(app::App& app, const std::string& login,
                           const util::SecretBuffer& password, std::string_view client_addr,
                           std::string_view user_agent) {
  std::string name = login;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // A string that cannot be a login name is kept out of the audit log and the throttle
  // table: it may well be a password typed into the wrong field.
  const bool well_formed = validate_login(name).ok();
  const std::string audit_name = well_formed ? name : "";
  const std::string addr(client_addr);

  Throttle throttle(app.db, *app.clock, throttle_policy(app.config), throttle_lock_dir(app.config));
  audit::AuditLog log(app.db, *app.clock);
  auto record = [&](const char* outcome, const std::string& session, const std::string& detail) {
    log.record(
        audit::AuditEvent{audit_name, audit::event::kLogin, outcome, "", session, addr, detail});
  };

  // One password check at a time per account (a few per address): each is judged on
  // the failures of the checks that ended before it, so a right password is never
  // refused because of wrong ones still in flight. A check killed midway counts.
  std::vector<AttemptScope> scopes;
  if (!addr.empty())
    scopes.push_back({address_scope(addr), kAddressSlots});
  if (well_formed)
    scopes.push_back({login_scope(name), kLoginSlots});
  auto attempt = throttle.begin(
      scopes, audit::AuditEvent{audit_name, audit::event::kLogin, "", "", "", addr, ""});
  if (!attempt) {
    if (attempt.code() == Errc::busy)
      record(audit::outcome::kBusy, "", attempt.error().message);
    else if (attempt.code() == Errc::locked_out)
      record(audit::outcome::kLockedOut, "", attempt.error().message);
    return attempt.error();
  }

  const crypto::KdfParams params = password_params(app.config);
  UserStore users(app.db, *app.clock);
  std::optional<Credential> cred;
  if (well_formed)
    cred = users.credential(name);
  // Always run one Argon2id verification, against a dummy hash for an unknown login.
  const bool match =
      crypto::verify_password(password, cred ? cred->password_hash : dummy_password_hash(params));
  if (!cred || !match) {
    attempt->finish(Verdict::wrong);
    record(audit::outcome::kFail, "",
           !well_formed ? "malformed login name" : (cred ? "wrong password" : "unknown login"));
    return make_error(Errc::bad_credentials, kBadCredentials);
  }
  if (cred->user.disabled) {
    // The counts stay: a right password does not unlock a disabled account's counters.
    attempt->finish(Verdict::not_tried);
    record(audit::outcome::kDisabled, "", "the account is disabled");
    return make_error(Errc::disabled, "the account is disabled");
  }
  attempt->finish(Verdict::right);

  // Keep the stored hash at the configured cost: rehash when the config changed.
  if (phc_params(cred->password_hash) != params.to_string())
    WMK_TRY(users.set_password(name, password, params));

  session::SessionStore sessions(app.db, *app.clock, app.config);
  auto ns = sessions.create(cred->user.id, addr, user_agent);
  if (!ns)
    return ns.error();
  std::optional<util::SecretBuffer> mail_cookie;
  if (app.config.mailbox == config::MailboxBackend::imap &&
      app.config.imap_login == config::ImapLogin::user) {
    // The password is the user's IMAP password too: kept for the session like a grant.
    auto secret = sessions.keep_mail_password(ns->session, password);
    if (!secret)
      return secret.error();
    mail_cookie = util::encode_secret_cookie(*secret);
  }
  record(audit::outcome::kOk, ns->session.short_id, "");
  return LoginOutcome{std::move(cred->user), std::move(ns).value(), std::move(mail_cookie)};
}

}  // namespace wmk::auth

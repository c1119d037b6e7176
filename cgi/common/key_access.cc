#include "cgi/common/key_access.h"

#include "core/grant/cookie.h"
#include "core/webflow/flow.h"

namespace wmk::cgi {

KeyAccess::KeyAccess(Context& ctx)
    : ctx_(ctx),
      keys_(ctx.app, keys::Actor{ctx.live_session().login, ctx.live_session().short_id,
                                 ctx.request.client_addr()}),
      grants_(ctx.app.db, *ctx.app.clock, ctx.app.config) {}

std::optional<util::SecretBuffer> KeyAccess::grant_secret() {
  if (!cookie_read_) {
    cookie_read_ = true;
    if (auto value = ctx_.request.take_secret_cookie(kGrantCookie)) {
      if (auto secret = grant::decode_grant_cookie(value->view()))
        cookie_secret_ = std::move(secret).value();
    }
  }
  if (!cookie_secret_)
    return std::nullopt;
  return util::SecretBuffer::copy_of(cookie_secret_->view());
}

std::optional<keys::UnlockedKey> KeyAccess::from_grant(const keys::KeyInfo& key,
                                                       std::optional<Error>* why) {
  const auto& session = ctx_.live_session();
  if (!grants_.for_session_and_key(session.id, key.id))
    return std::nullopt;
  auto secret = grant_secret();
  if (!secret) {
    if (why != nullptr)
      *why = make_error(Errc::revoked, "the key's unlock cookie is missing: unlock it again");
    return std::nullopt;
  }
  auto key_secret = grants_.use(session.id, key.id, *secret);
  if (!key_secret) {
    if (why != nullptr)
      *why = key_secret.error();
    return std::nullopt;
  }
  auto unlocked = keys_.from_key_secret(key, std::move(key_secret).value());
  if (!unlocked) {
    if (why != nullptr)
      *why = unlocked.error();
    return std::nullopt;
  }
  return std::move(unlocked).value();
}

Result<keys::UnlockedKey> KeyAccess::unlock(const keys::KeyInfo& key,
                                            const util::SecretBuffer& passphrase) {
  // The same unlock as /unlock for a message (core/webflow): throttled per key before
  // the KDF, another session's live grant checked before and after it, one grant
  // secret per session. The caller has checked the confirmation field.
  auto outcome =
      webflow::unlock(ctx_.app, ctx_.live_session(), key, passphrase, std::nullopt,
                      webflow::Confirmation::not_asked, grant_secret(),
                      webflow::Client{ctx_.request.client_addr(), ctx_.request.user_agent()});
  if (!outcome)
    return outcome.error();
  if (std::holds_alternative<webflow::InUseElsewhere>(*outcome))
    return make_error(Errc::key_in_use,
                      "the key " + key.fingerprint + " is unlocked in another session");
  auto& unlocked = std::get<webflow::Unlocked>(*outcome);
  if (unlocked.new_cookie) {
    new_cookie_.emplace(
        SetCookie::session_secret(kGrantCookie, grant::encode_grant_cookie(unlocked.grant_secret)));
  }
  // The session has a new token now (a privilege change): the request goes on as it,
  // and the browser gets the new cookie.
  new_session_cookie_.emplace(SetCookie::session_secret(kSessionCookie, unlocked.session_token));
  ctx_.session = unlocked.session;
  const auto& session = ctx_.live_session();
  cookie_secret_ = std::move(unlocked.grant_secret);
  cookie_read_ = true;
  // The key itself, through the grant just made (one AES-GCM open, no second KDF).
  auto key_secret = grants_.use(session.id, key.id, *cookie_secret_);
  if (!key_secret)
    return key_secret.error();
  return keys_.from_key_secret(key, std::move(key_secret).value());
}

void KeyAccess::add_cookies(Response& response) {
  if (new_session_cookie_) {
    response.add_cookie(std::move(*new_session_cookie_));
    new_session_cookie_.reset();
  }
  if (new_cookie_) {
    response.add_cookie(std::move(*new_cookie_));
    new_cookie_.reset();
  }
}

std::optional<grant::GrantInfo> KeyAccess::live_elsewhere(const keys::KeyInfo& key) {
  auto g = grants_.live_for_key(key.id);
  if (g && g->session_id != ctx_.live_session().id)
    return g;
  return std::nullopt;
}

}  // namespace wmk::cgi

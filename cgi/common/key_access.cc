#include "cgi/common/key_access.h"

#include "core/auth/throttle.h"
#include "core/grant/cookie.h"

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
  const auto& session = ctx_.live_session();
  auth::Throttle throttle(ctx_.app.db, *ctx_.app.clock, auth::throttle_policy(ctx_.app.config));
  std::string key_scope = auth::key_scope(key.fingerprint);
  std::string addr_scope = auth::address_scope(ctx_.request.client_addr());
  WMK_TRY(throttle.check(addr_scope));
  WMK_TRY(throttle.acquire(key_scope));
  auto unlocked = keys_.unlock(key, passphrase);
  if (!unlocked) {
    if (unlocked.code() == Errc::wrong_passphrase)
      throttle.record_failure(addr_scope);
    return unlocked.error();
  }
  throttle.record_success(key_scope);

  auto secret = grant_secret();
  bool new_cookie = !secret;
  util::SecretBuffer grant_secret_value =
      new_cookie ? grant::new_grant_secret() : std::move(*secret);
  auto g = grants_.create(session.id, key.id, unlocked->key_secret(), grant_secret_value,
                          ctx_.request.client_addr(), ctx_.request.user_agent());
  if (!g)
    return g.error();
  if (new_cookie) {
    new_cookie_.emplace(
        SetCookie::session_secret(kGrantCookie, grant::encode_grant_cookie(grant_secret_value)));
    cookie_secret_ = std::move(grant_secret_value);
    cookie_read_ = true;
  }
  return unlocked;
}

void KeyAccess::add_cookies(Response& response) {
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

Html KeyAccess::banner() {
  auto live = grants_.for_session(ctx_.live_session().id);
  if (live.empty())
    return {};
  std::int64_t now = ctx_.app.clock->now();
  std::vector<Html> items;
  for (const auto& g : live) {
    std::int64_t left = g.seconds_left(now);
    items.push_back(fill(R"(<span class="unlocked">Key {{fpr}} unlocked — {{min}} min left</span>)",
                         {{"fpr", g.key_fingerprint.substr(0, 16)},
                          {"min", static_cast<long long>((left + 59) / 60)}}));
  }
  return join(items);
}

}  // namespace wmk::cgi

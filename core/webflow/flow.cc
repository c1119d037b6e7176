#include "core/webflow/flow.h"

#include <algorithm>
#include <map>

#include "core/audit/audit.h"
#include "core/auth/throttle.h"
#include "core/auth/users.h"
#include "core/config/config.h"
#include "core/grant/cookie.h"
#include "core/keys/key_audit.h"
#include "core/keys/keystore.h"
#include "core/webflow/key_session.h"

namespace wmk::webflow {

namespace {

keys::Actor actor_of(const session::Session& s, const Client& client) {
  return keys::Actor{s.login, s.short_id, client.addr};
}

std::optional<util::SecretBuffer> copy_secret(const std::optional<util::SecretBuffer>& secret) {
  if (!secret)
    return std::nullopt;
  return util::SecretBuffer::copy_of(secret->bytes());
}

Status owns(const session::Session& s, const keys::KeyInfo& key) {
  if (key.user_id != s.user_id)
    return make_error(Errc::not_found, "no such key for this user");
  return {};
}

}  // namespace

std::optional<util::SecretBuffer> grant_secret_from_cookie(
    const std::optional<util::SecretBuffer>& cookie) {
  if (!cookie || cookie->empty())
    return std::nullopt;
  auto secret = grant::decode_grant_cookie(cookie->view());
  if (!secret)
    return std::nullopt;
  return std::move(secret).value();
}

Result<keys::KeyInfo> key_for_message(app::App& app, const session::Session& session,
                                      const MessageRef& ref) {
  KeySession ks(app, session, std::nullopt, Client{});
  return ks.key_for_message(ref);
}

Result<keys::KeyInfo> key_for_message(app::App& app, const session::Session& session,
                                      const mail::Message& message) {
  KeySession ks(app, session, std::nullopt, Client{});
  return ks.key_for_message(message);
}

Result<KeyState> key_state(app::App& app, const session::Session& session,
                           const keys::KeyInfo& key) {
  WMK_TRY(owns(session, key));
  grant::GrantStore grants(app.db, *app.clock, app.config);
  KeyState st{key, std::nullopt, std::nullopt};
  if (auto live = grants.live_for_key(key.id)) {
    if (live->session_id == session.id)
      st.mine = std::move(live);
    else
      st.other = std::move(live);
  }
  return st;
}

Result<std::vector<KeyState>> key_states(app::App& app, const session::Session& session) {
  keys::KeyStore store(app.db, app.config, *app.clock);
  auto all = store.list(session.login);
  if (!all)
    return all.error();
  std::vector<KeyState> out;
  for (auto& k : *all) {
    auto st = key_state(app, session, k);
    if (st)
      out.push_back(std::move(st).value());
  }
  return out;
}

Result<DecryptOutcome> open_for_decrypt(app::App& app, const session::Session& session,
                                        const std::optional<util::SecretBuffer>& grant_secret,
                                        const MessageRef& ref, const Client& client) {
  KeySession ks(app, session, copy_secret(grant_secret), client);
  return ks.decrypt(ref);
}

Result<PartOutcome> open_decrypted_part(app::App& app, const session::Session& session,
                                        const std::optional<util::SecretBuffer>& grant_secret,
                                        const MessageRef& ref, std::string_view part_id,
                                        const Client& client) {
  KeySession ks(app, session, copy_secret(grant_secret), client);
  return ks.decrypted_part(ref, part_id);
}

Result<UnlockOutcome> unlock(app::App& app, const session::Session& session,
                             const keys::KeyInfo& key, const util::SecretBuffer& passphrase,
                             const std::optional<util::SecretBuffer>& confirmation,
                             Confirmation mode,
                             const std::optional<util::SecretBuffer>& grant_secret,
                             const Client& client) {
  WMK_TRY(owns(session, key));
  if (passphrase.empty())
    return make_error(Errc::invalid_argument, "type the key's passphrase");
  if (mode == Confirmation::required) {
    if (!confirmation || confirmation->empty()) {
      return make_error(Errc::invalid_argument,
                        "type the passphrase a second time in the confirmation field");
    }
    if (!passphrase.equals(*confirmation)) {
      return make_error(Errc::invalid_argument,
                        "the passphrase and its confirmation differ; nothing was tried");
    }
  }

  grant::GrantStore grants(app.db, *app.clock, app.config);
  // Taken elsewhere: say so before any guess is counted or the KDF runs.
  if (auto other = grants.live_for_key(key.id); other && other->session_id != session.id)
    return UnlockOutcome{InUseElsewhere{key, std::move(*other)}};

  const keys::Actor actor = actor_of(session, client);
  auth::Throttle throttle(app.db, *app.clock, auth::throttle_policy(app.config),
                          auth::throttle_lock_dir(app.config));
  // One KDF at a time per key: each guess is judged on the guesses that ended before
  // it, so a right passphrase is never refused because of wrong ones in flight, and a
  // guess killed midway still counts (audited as interrupted).
  auto attempt =
      throttle.begin({{auth::key_scope(key.fingerprint), auth::kKeySlots}},
                     audit::AuditEvent{key.login, keys::kEventUnlock, "", key.fingerprint,
                                       actor.session, actor.client_addr, "by " + actor.who});
  if (!attempt) {
    if (attempt.code() == Errc::locked_out || attempt.code() == Errc::busy) {
      keys::record_key_event(
          app.db, *app.clock, actor, key.login, keys::kEventUnlock,
          attempt.code() == Errc::busy ? audit::outcome::kBusy : audit::outcome::kLockedOut,
          key.fingerprint, attempt.error().message);
    }
    return attempt.error();
  }
  // Another session may have won the key while this one waited: no guess needed.
  if (auto other = grants.live_for_key(key.id); other && other->session_id != session.id) {
    attempt->finish(auth::Verdict::not_tried);
    return UnlockOutcome{InUseElsewhere{key, std::move(*other)}};
  }
  keys::KeyStore store(app.db, app.config, *app.clock, actor);
  auto unlocked = store.unlock(key, passphrase);
  if (!unlocked) {
    attempt->finish(unlocked.code() == Errc::wrong_passphrase ? auth::Verdict::wrong
                                                              : auth::Verdict::not_tried);
    return unlocked.error();
  }
  attempt->finish(auth::Verdict::right);

  // One grant secret per login session: reused while the session holds grants
  // sealed under it, else a fresh one for the browser's cookie.
  Unlocked out{unlocked->info(), {}, {}, false, {}, {}};
  if (grant_secret && grant_secret->size() == grant::kGrantSecretSize &&
      !grants.for_session(session.id).empty()) {
    out.grant_secret = util::SecretBuffer::copy_of(grant_secret->bytes());
  } else {
    out.grant_secret = grant::new_grant_secret();
    out.new_cookie = true;
  }
  auto created = grants.create(session.id, key.id, unlocked->key_secret(), out.grant_secret,
                               client.addr, client.user_agent);  // bound to the old id, moved below
  if (!created) {
    if (created.code() == Errc::key_in_use) {
      if (auto other = grants.live_for_key(key.id))
        return UnlockOutcome{InUseElsewhere{key, std::move(*other)}};
      return make_error(Errc::conflict, "another session held the key a moment ago; try again");
    }
    return created.error();
  }
  // A privilege change: the session gets a new token, its grants (the new one
  // included) move along, and a token from before (leaked, or planted) is dead.
  session::SessionStore sessions(app.db, *app.clock, app.config);
  auto rotated =
      sessions.rotate(session, [&](const std::string& old_id, const std::string& new_id) {
        auto moved = grants.rebind_session(old_id, new_id, out.grant_secret);
        return moved ? Status{} : Status{moved.error()};
      });
  if (!rotated)
    return rotated.error();
  out.session = std::move(rotated->session);
  out.session_token = std::move(rotated->token);
  auto grant = grants.for_session_and_key(out.session.id, key.id);
  if (!grant)
    return make_error(Errc::conflict, "the new unlock ended at once; unlock again");
  out.grant = std::move(*grant);
  return UnlockOutcome{std::move(out)};
}

Result<StopOutcome> stop_other(app::App& app, const session::Session& session,
                               const keys::KeyInfo& key, std::string_view grant_id,
                               const Client& client) {
  WMK_TRY(owns(session, key));
  grant::GrantStore grants(app.db, *app.clock, app.config);
  auto current = grants.live_for_key(key.id);
  if (!current)
    return StopOutcome{StopResult::already_gone, std::nullopt};
  if (current->session_id == session.id)
    return StopOutcome{StopResult::own, std::move(current)};
  if (current->id != grant_id)
    return StopOutcome{StopResult::changed, std::move(current)};
  auto n = grants.revoke(current->id, grant::Revoker::other_session(session.id, client.addr));
  if (!n) {
    if (n.code() == Errc::not_found)  // ended meanwhile
      return StopOutcome{StopResult::already_gone, std::nullopt};
    return n.error();
  }
  return StopOutcome{StopResult::stopped, std::nullopt};
}

Result<int> lock(app::App& app, const session::Session& session, const Client& client) {
  grant::GrantStore grants(app.db, *app.clock, app.config);
  return grants.revoke_for_session(session.id, grant::Revoker::owner(session.id, client.addr));
}

std::vector<UnlockedKeyState> key_banner_state(app::App& app, const session::Session& session) {
  grant::GrantStore grants(app.db, *app.clock, app.config);
  auto live = grants.for_session(session.id);
  if (live.empty())
    return {};
  std::map<std::int64_t, keys::KeyType> types;
  keys::KeyStore store(app.db, app.config, *app.clock);
  if (auto all = store.list(session.login)) {
    for (const auto& k : *all)
      types[k.id] = k.type;
  }
  const std::int64_t now = app.clock->now();
  std::vector<UnlockedKeyState> out;
  for (const auto& g : live) {
    auto type = types.find(g.key_id);
    out.push_back(UnlockedKeyState{g.key_id, g.key_fingerprint,
                                   type == types.end() ? keys::KeyType::openpgp : type->second,
                                   g.id, g.seconds_left(now), g.deadline()});
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.deadline < b.deadline; });
  return out;
}

std::vector<HistoryEntry> key_history(app::App& app, const session::Session& session, int limit) {
  keys::KeyStore store(app.db, app.config, *app.clock);
  auto all = store.list(session.login);
  if (!all)
    return {};
  audit::AuditLog log(app.db, *app.clock);
  std::vector<audit::AuditEntry> rows;
  for (const auto& k : *all) {
    // Key events carry the key's fingerprint; the owner's login keeps another user's
    // rows about a key of the same fingerprint (deleted and re-imported) out.
    auto some = log.query(audit::AuditQuery{session.login, std::nullopt, k.fingerprint, limit});
    rows.insert(rows.end(), std::make_move_iterator(some.begin()),
                std::make_move_iterator(some.end()));
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.at != b.at ? a.at > b.at : a.id > b.id; });
  if (limit > 0 && rows.size() > static_cast<std::size_t>(limit))
    rows.resize(static_cast<std::size_t>(limit));
  std::vector<HistoryEntry> out;
  out.reserve(rows.size());
  for (auto& r : rows) {
    out.push_back(HistoryEntry{r.at, std::move(r.event.event), std::move(r.event.outcome),
                               std::move(r.event.key_fpr), std::move(r.event.session),
                               std::move(r.event.client_addr), std::move(r.event.detail)});
  }
  return out;
}

}  // namespace wmk::webflow

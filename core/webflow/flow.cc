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

namespace wmk::webflow {

namespace {

keys::Actor actor_of(const session::Session& s, const Client& client) {
  return keys::Actor{s.login, s.short_id, client.addr};
}

Result<auth::User> user_of(app::App& app, const session::Session& s) {
  auth::UserStore users(app.db, *app.clock);
  auto user = users.find_by_id(s.user_id);
  if (!user)
    return make_error(Errc::not_found, "the account no longer exists");
  return std::move(*user);
}

// The raw message from the user's own Maildir: the folder is an enum and the uid is
// checked by Maildir, so nothing outside the mailbox can be named.
Result<std::string> read_message(app::App& app, const auth::User& user, const MessageRef& ref) {
  mail::Maildir maildir(config::maildir_for(app.config, user.login, user.email), *app.clock);
  auto raw = maildir.read(ref.folder, ref.uid);
  if (!raw) {
    if (raw.code() == Errc::not_found)
      return make_error(Errc::not_found, "there is no such message; it may have been moved");
    return raw.error();
  }
  return raw;
}

// An encrypted message of the user's own mailbox and the user's key that opens it.
struct Located {
  std::string raw;
  mail::ParsedMessage parsed;
  keys::KeyInfo key;
};

Result<Located> locate(app::App& app, const session::Session& session, const MessageRef& ref) {
  auto user = user_of(app, session);
  if (!user)
    return user.error();
  auto raw = read_message(app, *user, ref);
  if (!raw)
    return raw.error();
  auto message = reader::inspect(*raw);
  if (!message) {
    if (message.code() == Errc::not_found)
      return make_error(Errc::unsupported, "this message is not encrypted");
    return message.error();
  }
  auto parsed = mail::parse_message(*raw);
  if (!parsed)
    return parsed.error();
  keys::KeyStore store(app);
  auto key = reader::choose_key(store, *user, *message, *parsed);
  if (!key)
    return key.error();
  return Located{std::move(raw).value(), std::move(parsed).value(), std::move(key).value()};
}

// EFAIL: ciphertext without integrity protection (S/MIME EnvelopedData, i.e. CBC) is
// refused as a whole. OpenPGP without MDC never gets this far (KeyStore refuses it).
Status check_integrity(const reader::DecryptedView& view) {
  if (view.integrity_protected)
    return {};
  return make_error(Errc::crypto,
                    "the message is encrypted without integrity protection (" + view.cipher +
                        "), so it could have been altered on its way to you (EFAIL); it is "
                        "not shown");
}

// The key opened through this session's grant, or why not: NeedUnlock or
// InUseElsewhere in `instead`.
struct Opened {
  std::optional<keys::UnlockedKey> key;
  std::variant<std::monostate, NeedUnlock, InUseElsewhere> instead;
};

Result<Opened> open_with_grant(app::App& app, const session::Session& session,
                               const std::optional<util::SecretBuffer>& grant_secret,
                               keys::KeyStore& store, const keys::KeyInfo& key) {
  grant::GrantStore grants(app.db, *app.clock, app.config);
  // Without a cookie, use() still ends a grant of this session that nothing can open
  // any more (its secret was only in the cookie), so the key is not blocked until it
  // times out.
  const util::SecretBuffer none;
  auto key_secret = grants.use(session.id, key.id, grant_secret ? *grant_secret : none);
  if (key_secret) {
    auto unlocked = store.from_key_secret(key, std::move(key_secret).value());
    if (!unlocked)
      return unlocked.error();
    return Opened{std::move(unlocked).value(), std::monostate{}};
  }
  std::string reason;
  switch (key_secret.code()) {
    case Errc::not_found:
      break;
    case Errc::expired:
      reason = "Your earlier unlock of this key has ended (" + key_secret.error().message +
               "). Unlock it again.";
      break;
    case Errc::revoked:
      reason =
          "This browser no longer holds the unlock of this key (its grant cookie was missing "
          "or did not match), so that unlock was ended. Unlock it again.";
      break;
    default:
      return key_secret.error();
  }
  if (auto other = grants.live_for_key(key.id); other && other->session_id != session.id)
    return Opened{std::nullopt, InUseElsewhere{key, std::move(*other)}};
  return Opened{std::nullopt, NeedUnlock{key, std::move(reason)}};
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
  auto located = locate(app, session, ref);
  if (!located)
    return located.error();
  return std::move(located->key);
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
  keys::KeyStore store(app);
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
  auto located = locate(app, session, ref);
  if (!located)
    return located.error();
  keys::KeyStore store(app, actor_of(session, client));
  auto opened = open_with_grant(app, session, grant_secret, store, located->key);
  if (!opened)
    return opened.error();
  if (auto* need = std::get_if<NeedUnlock>(&opened->instead))
    return DecryptOutcome{std::move(*need)};
  if (auto* in_use = std::get_if<InUseElsewhere>(&opened->instead))
    return DecryptOutcome{std::move(*in_use)};

  auto view = reader::decrypt(store, *opened->key, located->raw);
  if (!view)
    return view.error();
  WMK_TRY(check_integrity(*view));
  grant::GrantStore grants(app.db, *app.clock, app.config);
  auto grant = grants.for_session_and_key(session.id, located->key.id);
  if (!grant)  // ended in the moment since it was used
    return make_error(Errc::expired, "the key's unlock ended while the message was opened");
  return DecryptOutcome{Decrypted{std::move(located->key), std::move(*grant),
                                  std::move(located->parsed), std::move(view).value()}};
}

Result<PartOutcome> open_decrypted_part(app::App& app, const session::Session& session,
                                        const std::optional<util::SecretBuffer>& grant_secret,
                                        const MessageRef& ref, std::string_view part_id,
                                        const Client& client) {
  auto located = locate(app, session, ref);
  if (!located)
    return located.error();
  keys::KeyStore store(app, actor_of(session, client));
  auto opened = open_with_grant(app, session, grant_secret, store, located->key);
  if (!opened)
    return opened.error();
  if (auto* need = std::get_if<NeedUnlock>(&opened->instead))
    return PartOutcome{std::move(*need)};
  if (auto* in_use = std::get_if<InUseElsewhere>(&opened->instead))
    return PartOutcome{std::move(*in_use)};
  // The whole message first: a part is only released from content whose integrity
  // was checked, and only if the view offers it as a decrypted attachment.
  auto view = reader::decrypt(store, *opened->key, located->raw);
  if (!view)
    return view.error();
  WMK_TRY(check_integrity(*view));
  bool offered = false;
  for (const auto& segment : view->segments) {
    for (const auto& a : segment.attachments)
      offered = offered || (a.source == reader::PartSource::decrypted && a.id == part_id);
  }
  if (!offered)
    return make_error(Errc::not_found, "the decrypted message has no such attachment");
  auto part = reader::decrypted_part(store, *opened->key, located->raw, part_id);
  if (!part)
    return part.error();
  return PartOutcome{DecryptedPart{std::move(located->key), std::move(part).value()}};
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
  keys::KeyStore store(app, actor);
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
  keys::KeyStore store(app);
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
  keys::KeyStore store(app);
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

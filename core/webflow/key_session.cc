#include "core/webflow/key_session.h"

#include "core/bindings/bindings.h"
#include "core/config/config.h"
#include "core/contacts/contacts.h"
#include "core/grant/grant.h"
#include "core/mail/maildir.h"
#include "core/mail/open_mailbox.h"
#include "core/reader/reader.h"

namespace wmk::webflow {

namespace {

Status owns(const session::Session& s, const keys::KeyInfo& key) {
  if (key.user_id != s.user_id)
    return make_error(Errc::not_found, "no such key for this user");
  return {};
}

}  // namespace

// An encrypted message of the user's own mailbox and the user's key that opens it.
struct KeySession::KeyChoice {
  std::optional<keys::KeyInfo> key;  // nullopt: not encrypted
  std::optional<Error> no_key;       // encrypted, but the user has no key for it
  std::optional<Error> unreadable;   // encrypted, but its encrypted parts cannot be used
};

struct KeySession::Located : KeySession::KeyChoice {
  mail::Message message;  // the request's one parse of the stored message
};

KeySession::KeySession(app::App& app, session::Session session,
                       std::optional<util::SecretBuffer> grant_secret, Client client,
                       mail::MailboxKeeper* mailboxes)
    : app_(app),
      session_(std::move(session)),
      grant_secret_(std::move(grant_secret)),
      client_(std::move(client)),
      keys_(app.db, app.config, *app.clock,
            keys::Actor{session_.login, session_.short_id, client_.addr}),
      mailboxes_(mailboxes != nullptr ? *mailboxes : own_mailboxes_) {}

Result<auth::User> KeySession::user() {
  auth::UserStore users(app_.db, *app_.clock);
  auto user = users.find_by_id(session_.user_id);
  if (!user)
    return make_error(Errc::not_found, "the account no longer exists");
  return std::move(*user);
}

// The raw message from the user's own mailbox (the folder is an enum and the backend
// checks the id, so nothing outside the mailbox can be named), parsed once: the
// reader and the reply read this one parse. The mailbox is the request's one
// (MailboxKeeper): opened here only if the page has not opened it yet.
Result<KeySession::Located> KeySession::locate(const MessageRef& ref) {
  auto user = this->user();
  if (!user)
    return user.error();
  auto mailbox = mailboxes_.open(app_.config, user->login, user->email, *app_.clock,
                                 session_.mail_password.get());
  if (!mailbox)
    return mailbox.error();
  auto raw = (*mailbox)->read(ref.folder, ref.uid);
  if (!raw) {
    if (raw.code() == Errc::not_found)
      return make_error(Errc::not_found, "there is no such message; it may have been moved");
    return raw.error();
  }
  auto parsed = mail::Message::parse(*raw);
  if (!parsed)
    return parsed.error();
  auto choice = choose(*user, *parsed);
  return Located{std::move(choice), std::move(parsed).value()};
}

KeySession::KeyChoice KeySession::choose(const auth::User& user, const mail::Message& message) {
  KeyChoice out;
  auto inspected = reader::inspect(message);
  if (!inspected) {
    if (inspected.code() != Errc::not_found)
      out.unreadable = inspected.error();
    return out;
  }
  auto key = reader::choose_key(keys_, user, *inspected, message.parsed());
  if (key)
    out.key = std::move(key).value();
  else
    out.no_key = key.error();
  return out;
}

Result<KeyOpen> KeySession::open(const keys::KeyInfo& key) {
  WMK_TRY(owns(session_, key));
  grant::GrantStore grants(app_.db, *app_.clock, app_.config);
  // Without a cookie, use() still ends a grant of this session that nothing can open
  // any more (its secret was only in the cookie), so the key is not blocked until it
  // times out.
  const util::SecretBuffer none;
  auto key_secret = grants.use(session_.id, key.id, grant_secret_ ? *grant_secret_ : none);
  if (key_secret) {
    auto unlocked = keys_.from_key_secret(key, std::move(key_secret).value());
    if (!unlocked)
      return unlocked.error();
    return KeyOpen{std::move(unlocked).value()};
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
  if (auto other = grants.live_for_key(key.id); other && other->session_id != session_.id)
    return KeyOpen{InUseElsewhere{key, std::move(*other)}};
  return KeyOpen{NeedUnlock{key, std::move(reason)}};
}

Result<UnlockOutcome> KeySession::unlock(const keys::KeyInfo& key,
                                         const util::SecretBuffer& passphrase,
                                         const std::optional<util::SecretBuffer>& confirmation,
                                         Confirmation mode) {
  auto outcome =
      webflow::unlock(app_, session_, key, passphrase, confirmation, mode, grant_secret_, client_);
  if (outcome) {
    if (auto* unlocked = std::get_if<Unlocked>(&*outcome)) {
      session_ = unlocked->session;
      grant_secret_ = util::SecretBuffer::copy_of(unlocked->grant_secret.bytes());
    }
  }
  return outcome;
}

Result<KeySession::Located> KeySession::locate_encrypted(const MessageRef& ref) {
  auto located = locate(ref);
  if (!located)
    return located.error();
  WMK_TRY(encrypted_for_a_key(*located));
  return located;
}

Status KeySession::encrypted_for_a_key(const KeyChoice& choice) {
  if (choice.unreadable)
    return *choice.unreadable;
  if (choice.no_key)
    return *choice.no_key;
  if (!choice.key)
    return make_error(Errc::unsupported, "this message is not encrypted");
  return {};
}

Result<keys::KeyInfo> KeySession::key_for_message(const MessageRef& ref) {
  auto located = locate_encrypted(ref);
  if (!located)
    return located.error();
  return std::move(*located->key);
}

Result<keys::KeyInfo> KeySession::key_for_message(const mail::Message& message) {
  auto user = this->user();
  if (!user)
    return user.error();
  auto choice = choose(*user, message);
  WMK_TRY(encrypted_for_a_key(choice));
  return std::move(*choice.key);
}

namespace {

// What a flow shows instead of its result when the key did not open: the unlock page
// or the key in use elsewhere. nullopt when the key opened.
template <class Outcome>
std::optional<Outcome> instead_of_key(KeyOpen& opened) {
  if (auto* need = std::get_if<NeedUnlock>(&opened))
    return Outcome{std::move(*need)};
  if (auto* in_use = std::get_if<InUseElsewhere>(&opened))
    return Outcome{std::move(*in_use)};
  return std::nullopt;
}

// The reader's view of raw with key. The reader keeps the EFAIL rules (OpenPGP
// without MDC refused; S/MIME CBC as marked text, or refused by config
// smime_unprotected) and names the sender only as the binding sources know it.
Result<reader::DecryptedView> checked_view(app::App& app, keys::KeyStore& store,
                                           const keys::UnlockedKey& key,
                                           const mail::Message& message) {
  // The key is the session user's own: their directory of correspondents' keys counts.
  return reader::decrypt(store, key, message, contacts::standard_bindings(app, key.info().user_id),
                         reader::read_options(app.config));
}

}  // namespace

Result<DecryptOutcome> KeySession::decrypt_located(Located& located) {
  auto opened = open(*located.key);
  if (!opened)
    return opened.error();
  if (auto instead = instead_of_key<DecryptOutcome>(*opened))
    return std::move(*instead);
  auto view = checked_view(app_, keys_, std::get<keys::UnlockedKey>(*opened), located.message);
  if (!view)
    return view.error();
  grant::GrantStore grants(app_.db, *app_.clock, app_.config);
  auto grant = grants.for_session_and_key(session_.id, located.key->id);
  if (!grant)  // ended in the moment since it was used
    return make_error(Errc::expired, "the key's unlock ended while the message was opened");
  return DecryptOutcome{Decrypted{*located.key, std::move(*grant), located.message.parsed(),
                                  std::move(view).value()}};
}

Result<DecryptOutcome> KeySession::decrypt(const MessageRef& ref) {
  auto located = locate_encrypted(ref);
  if (!located)
    return located.error();
  return decrypt_located(*located);
}

Result<PartOutcome> KeySession::decrypted_part(const MessageRef& ref, std::string_view part_id) {
  auto located = locate_encrypted(ref);
  if (!located)
    return located.error();
  auto opened = open(*located->key);
  if (!opened)
    return opened.error();
  if (auto instead = instead_of_key<PartOutcome>(*opened))
    return std::move(*instead);
  // One decryption gives the checked view and the part: a part is released only from
  // content whose integrity was checked, and only if the view offers it.
  auto both = reader::decrypt_part(keys_, std::get<keys::UnlockedKey>(*opened), located->message,
                                   contacts::standard_bindings(app_, located->key->user_id),
                                   part_id, reader::read_options(app_.config));
  if (!both && both.code() == Errc::invalid_argument)  // a malformed id names no attachment
    return make_error(Errc::not_found, "the decrypted message has no such attachment");
  if (!both)
    return both.error();
  return PartOutcome{DecryptedPart{*located->key, std::move(both->part)}};
}

Result<Reading> KeySession::read(const MessageRef& ref) {
  auto located = locate(ref);
  if (!located)
    return located.error();
  Reading out;
  out.ref = ref;
  out.encrypted = mail::is_encrypted(located->message.parsed().protection);
  if (located->unreadable) {
    out.encrypted = true;
    out.failure = reader::failure_of(*located->unreadable);
    out.failure_detail = located->unreadable->message;
  } else if (located->no_key) {
    out.encrypted = true;
    out.failure = reader::Failure::not_for_your_keys;
    out.failure_detail = located->no_key->message;
  } else if (located->key) {
    out.encrypted = true;
    auto outcome = decrypt_located(*located);
    if (!outcome) {
      out.failure = reader::failure_of(outcome.error());
      out.failure_detail = outcome.error().message;
    } else if (auto* d = std::get_if<Decrypted>(&*outcome)) {
      out.envelope = d->envelope;
      out.decrypted = std::move(*d);
      return out;
    } else if (std::holds_alternative<InUseElsewhere>(*outcome)) {
      out.failure = reader::Failure::key_elsewhere;
    } else {
      out.failure = reader::Failure::key_locked;
    }
  }
  out.envelope = located->message.parsed();
  return out;
}

}  // namespace wmk::webflow

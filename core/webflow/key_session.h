#pragma once
// One web request's use of its user's keys: the only owner of "use my keys in this
// web session". Every program that touches a key (/decrypt, /attachment, /unlock,
// /stop-other, /compose) goes through a KeySession:
//   - open a key through this session's grant and the browser's grant secret (or say
//     why not: unlock first, the grant ended, the key is in use elsewhere);
//   - unlock a key into a grant (webflow::unlock: throttled, audited, session rotated);
//   - read a message of the user's own mailbox: parsed once and, when it is encrypted
//     and the key is open, decrypted once through core/reader; the same reading serves
//     the page and the quoting of a reply;
//   - the KeyStore (audited as this session's user) that signs and encrypts.
// The browser's grant secret is taken once per request; after unlock() the session
// and the grant secret are the new ones.

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/app/app.h"
#include "core/auth/users.h"
#include "core/keys/keystore.h"
#include "core/mail/open_mailbox.h"
#include "core/reader/reader.h"
#include "core/webflow/flow.h"

namespace wmk::webflow {

// A key of the user opened through this session's grant, or why not.
using KeyOpen = std::variant<keys::UnlockedKey, NeedUnlock, InUseElsewhere>;

// A message of the user's own mailbox, read once for this request.
struct Reading {
  MessageRef ref;
  mail::ParsedMessage envelope;  // headers; for a clear message also its text
  bool encrypted = false;
  // Encrypted, and this session's grant opened the key: the reader's one result.
  std::optional<Decrypted> decrypted;
  // Encrypted but not decrypted: why (locked, unlocked elsewhere, not for the user's
  // keys, no integrity protection, damaged), and the error's own words ("" for a key
  // that is locked or in use elsewhere). nullopt otherwise.
  std::optional<reader::Failure> failure;
  std::string failure_detail;
};

class KeySession {
 public:
  // grant_secret: the browser's grant cookie (grant_secret_from_cookie), taken once.
  // mailboxes: the request's mailbox owner, so that reading a message uses the mailbox
  // the page already opened (one IMAP login per request); nullptr: the session's own.
  KeySession(app::App& app, session::Session session,
             std::optional<util::SecretBuffer> grant_secret, Client client,
             mail::MailboxKeeper* mailboxes = nullptr);
  KeySession(const KeySession&) = delete;
  KeySession& operator=(const KeySession&) = delete;

  app::App& app() { return app_; }
  // The session (after unlock(): the rotated one).
  const session::Session& session() const { return session_; }
  const Client& client() const { return client_; }
  // Key custody for this session, audited as the session's user.
  keys::KeyStore& keys() { return keys_; }
  // The session's user. Errc::not_found if the account is gone.
  Result<auth::User> user();

  // key opened through this session's live grant (the grant is marked used), or
  // NeedUnlock (with the reason an earlier grant no longer works), or
  // InUseElsewhere. Errc::not_found if key is not the session user's.
  Result<KeyOpen> open(const keys::KeyInfo& key);

  // Flow 4 (see webflow::unlock). On Unlocked this KeySession goes on as the new
  // session with the new grant secret; the caller sets the cookies it carries.
  Result<UnlockOutcome> unlock(const keys::KeyInfo& key, const util::SecretBuffer& passphrase,
                               const std::optional<util::SecretBuffer>& confirmation,
                               Confirmation mode);

  // The key of the user that decrypts message ref (see webflow::key_for_message).
  Result<keys::KeyInfo> key_for_message(const MessageRef& ref);
  // The same for a message this request has already read and parsed.
  Result<keys::KeyInfo> key_for_message(const mail::Message& message);

  // Flows 3 and 6: see webflow::open_for_decrypt.
  Result<DecryptOutcome> decrypt(const MessageRef& ref);

  // One attachment of the decrypted content: see webflow::open_decrypted_part.
  Result<PartOutcome> decrypted_part(const MessageRef& ref, std::string_view part_id);

  // The message for a reply or forward: read and parsed once; when encrypted and this
  // session's grant opens the key, decrypted once (Reading::decrypted), else why not.
  // Errc::not_found if there is no such message, Errc::corrupt if it does not parse.
  // Never unlocks and never fails because of the key.
  Result<Reading> read(const MessageRef& ref);

 private:
  struct KeyChoice;
  struct Located;
  Result<Located> locate(const MessageRef& ref);
  // Which key of user opens message (inspect and choose_key), or why none does.
  KeyChoice choose(const auth::User& user, const mail::Message& message);
  // Errc::unsupported if choice is of a message that is not encrypted; else the error
  // of a message that is encrypted but no key of the user opens.
  static Status encrypted_for_a_key(const KeyChoice& choice);
  // locate(), refusing a message that is not encrypted or that no key of the user opens.
  Result<Located> locate_encrypted(const MessageRef& ref);
  Result<DecryptOutcome> decrypt_located(Located& located);

  app::App& app_;
  session::Session session_;
  std::optional<util::SecretBuffer> grant_secret_;
  Client client_;
  keys::KeyStore keys_;
  mail::MailboxKeeper own_mailboxes_;
  mail::MailboxKeeper& mailboxes_;
};

}  // namespace wmk::webflow

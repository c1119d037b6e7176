#pragma once
// The compose pages (DESIGN flow 5), shared by /compose and by /unlock, which resumes a
// draft after the key passphrase: the compose form (data-page="compose"), the question
// before decrypted text is quoted (data-page="confirm-quote"), the review of a signed
// and/or encrypted message (data-page="signed") and the sent page (data-page="sent").
// The unlock page is the one of cgi/common/key_pages.h. Keys, drafting and the
// quoting rules are core's (core/webflow/key_session.h, core/webflow/drafting.h);
// this only parses and renders.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cgi/common/guard.h"
#include "cgi/common/mailbox.h"
#include "core/contacts/contacts.h"
#include "core/mail/outgoing.h"
#include "core/mail/sendmail.h"
#include "core/webflow/drafting.h"
#include "core/webflow/key_session.h"

namespace wmk::cgi {

// What the unlock page leads to once the key is open.
enum class AfterUnlock {
  sign,  // sign (and encrypt, if chosen) the draft and show it for review
  edit,  // open the (encrypted) draft in the compose form
  send,  // send the (encrypted, because it quotes decrypted text) draft as it is
};

// "sign" / "edit" / "send"; and back (nullopt for anything else).
const char* after_unlock_name(AfterUnlock a);
std::optional<AfterUnlock> after_unlock_from(std::string_view text);

// What a WKD lookup from the compose page found for one address.
struct KeyLookupLine {
  enum class Outcome { found, not_found, error };
  std::string address;
  Outcome outcome = Outcome::error;
  std::string text;  // the fingerprint when found, else why in words
};

// Everything one compose request needs: the user's mailbox, the session's keys, the
// outbox.
class ComposeSession {
 public:
  // Errc::not_found if the session's user is gone.
  static Result<std::unique_ptr<ComposeSession>> open(Context& ctx);

  ComposeSession(Context& ctx, std::unique_ptr<UserMailbox> box);
  ComposeSession(const ComposeSession&) = delete;
  ComposeSession& operator=(const ComposeSession&) = delete;

  Context& ctx() { return ctx_; }
  UserMailbox& box() { return *box_; }
  webflow::KeySession& keys() { return *keys_; }
  mail::Outbox& outbox() { return outbox_; }
  contacts::ContactStore& contacts() { return contacts_; }

  // The outcome of a key lookup, shown by the next compose().
  void looked_up(std::vector<KeyLookupLine> lines) { lookups_ = std::move(lines); }

  // The compose form for draft (stored as draft_id, "" when not stored yet).
  Response compose(int status, const mail::Draft& draft, const std::string& draft_id,
                   std::optional<Notice> notice);
  // The review page of a prepared message, with its Send form.
  Response review(const mail::Prepared& prepared, const mail::Draft& draft);
  // The unlock page for key, leading back to the draft.
  Response unlock_page(int status, const keys::KeyInfo& key, const std::string& draft_id,
                       AfterUnlock after, std::optional<Notice> notice);
  // The key opened through this session's grant: what to show instead when it is not
  // (the unlock page, leading on with after; or the key in use elsewhere).
  std::variant<keys::UnlockedKey, Response> open_key(const keys::KeyInfo& key,
                                                     const std::string& draft_id,
                                                     AfterUnlock after);
  // Signs/encrypts the stored draft with key, opens it in the form, or sends it.
  Response resume(const std::string& draft_id, AfterUnlock after, const keys::UnlockedKey& key);
  // The "key in use elsewhere" page for a draft.
  Response in_use(const webflow::InUseElsewhere& in_use);
  // Adds the cookies of an unlock in this request to r.
  Response finish(Response r);
  // Remembers the cookies of an unlock in this request for finish().
  void unlocked(webflow::Unlocked u) { unlocked_ = std::move(u); }

 private:
  Page page(std::string name, std::string title);
  // The outcome of a lookup in this request, and the recipients of d without a usable
  // key (when d is to be encrypted), with the lookup button.
  Html key_panels(const mail::Draft& d);
  Context& ctx_;
  std::unique_ptr<UserMailbox> box_;
  std::unique_ptr<webflow::KeySession> keys_;
  contacts::ContactStore contacts_;
  mail::SendmailTransport transport_;
  mail::Outbox outbox_;
  std::optional<webflow::Unlocked> unlocked_;
  std::vector<KeyLookupLine> lookups_;
};

// The /compose program's handler.
Response compose_handler(Context& ctx);

// The /unlock program's draft branch: unlocks the draft's key with the request's
// passphrase (and confirmation) and resumes the draft (field `then`).
Response unlock_for_draft(Context& ctx, const std::string& draft_id);

}  // namespace wmk::cgi

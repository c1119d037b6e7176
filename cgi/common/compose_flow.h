#pragma once
// The compose pages (DESIGN flow 5), shared by /compose and by /unlock, which resumes a
// draft after the key passphrase: the compose form (data-page="compose"), the review
// of a signed and/or encrypted message (data-page="signed"), the sent page
// (data-page="sent") and the unlock page for a draft (data-page="unlock").

#include <optional>
#include <string>
#include <vector>

#include "cgi/common/guard.h"
#include "cgi/common/key_access.h"
#include "cgi/common/mailbox.h"
#include "core/mail/outgoing.h"

namespace wmk::cgi {

// What the unlock page leads to once the key is open.
enum class AfterUnlock {
  sign,  // sign (and encrypt, if chosen) the draft and show it for review
  edit,  // open the (encrypted) draft in the compose form
};

// "sign" / "edit"; and back (nullopt for anything else).
const char* after_unlock_name(AfterUnlock a);
std::optional<AfterUnlock> after_unlock_from(std::string_view text);

// Everything one compose request needs: the user's mailbox, key access, the outbox.
class ComposeSession {
 public:
  // Errc::not_found if the session's user is gone.
  static Result<std::unique_ptr<ComposeSession>> open(Context& ctx);

  ComposeSession(Context& ctx, std::unique_ptr<UserMailbox> box);
  ComposeSession(const ComposeSession&) = delete;
  ComposeSession& operator=(const ComposeSession&) = delete;

  Context& ctx() { return ctx_; }
  UserMailbox& box() { return *box_; }
  KeyAccess& access() { return access_; }
  mail::Outbox& outbox() { return outbox_; }

  // The compose form for draft (stored as draft_id, "" when not stored yet).
  Response compose(int status, const mail::Draft& draft, const std::string& draft_id,
                   std::optional<Notice> notice);
  // The review page of a prepared message, with its Send form.
  Response review(const mail::Prepared& prepared, const mail::Draft& draft);
  // The unlock page for key, leading back to the draft.
  Response unlock_page(int status, const keys::KeyInfo& key, const std::string& draft_id,
                       AfterUnlock after, std::optional<Notice> notice);
  // Signs/encrypts the stored draft with key, or opens it in the form (after an
  // unlock, or when the grant was live already).
  Response resume(const std::string& draft_id, AfterUnlock after, const keys::UnlockedKey& key);
  // The sender's key for signing the stored draft draft_id (its From and its kind).
  Result<keys::KeyInfo> draft_key(const std::string& draft_id);

 private:
  // Adds the key banner's cookies (a new grant cookie) to r.
  Response finish(Response r);
  Page page(std::string name, std::string title);
  Context& ctx_;
  std::unique_ptr<UserMailbox> box_;
  KeyAccess access_;
  mail::SendmailTransport transport_;
  mail::Outbox outbox_;
};

// The /compose program's handler.
Response compose_handler(Context& ctx);

// The /unlock program's draft branch: passphrase and confirm already taken from the
// request. Unlocks the draft's signing key and resumes the draft.
Response unlock_for_draft(Context& ctx, const std::string& draft_id,
                          const util::SecretBuffer& passphrase,
                          const std::optional<util::SecretBuffer>& confirm);

}  // namespace wmk::cgi

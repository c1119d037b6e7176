#pragma once
// Signed-only mail on the message page: its verdict needs only public keys, so it is
// shown to the session's user with no key opened and no unlock.

#include <optional>
#include <string>
#include <string_view>

#include "core/app/app.h"
#include "core/mail/mime.h"
#include "core/reader/reader.h"
#include "core/session/session.h"
#include "core/util/result.h"

namespace wmk::webflow {

struct SignedMessage {
  reader::MessageView view;
  // The key that signed the previous verified message from the From address, when it
  // was another than the one that signed this message (the key changed).
  std::optional<std::string> previous_signer;
};

// The signature verdicts and segments of message, a signed (not encrypted) message of
// the session user's mailbox (the page's one parse of it), the sender named as the
// binding sources (the server's users, the user's correspondents' keys) know it. A
// good signature bound to the From address is remembered per address to tell when its
// key changes. Errors as
// reader::verify_signed: Errc::not_found if it carries no signature that can be
// checked.
Result<SignedMessage> verify_signed_message(app::App& app, const session::Session& session,
                                            const mail::Message& message);

}  // namespace wmk::webflow

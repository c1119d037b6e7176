#pragma once
// Signed-only mail on the message page: its verdict needs only public keys, so it is
// shown to the session's user with no key opened and no unlock.

#include <string_view>

#include "core/app/app.h"
#include "core/reader/reader.h"
#include "core/session/session.h"
#include "core/util/result.h"

namespace wmk::webflow {

// The signature verdicts and segments of raw, a signed (not encrypted) message of the
// session user's mailbox. Errors as reader::verify_signed: Errc::not_found if it
// carries no signature that can be checked, Errc::corrupt if it does not parse.
Result<reader::MessageView> verify_signed_message(app::App& app, const session::Session& session,
                                                  std::string_view raw);

}  // namespace wmk::webflow

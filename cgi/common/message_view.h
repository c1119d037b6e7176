#pragma once
// The pieces of a message page that /message, /decrypt, /unlock and /stop-other
// share: the message named by a request, its headers, its text, its attachments,
// the encrypted placeholder with the Decrypt button, and the message page itself
// (also what a failed unlock returns to: "the state before Decrypt").

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cgi/common/guard.h"
#include "cgi/common/html.h"
#include "cgi/common/layout.h"
#include "core/mail/maildir.h"
#include "core/mail/mime.h"
#include "core/webflow/correspondents.h"
#include "core/webflow/flow.h"

namespace wmk::cgi {

// Adds notice to the page, after a notice it already has (e.g. the session's pending
// one, which must not be lost); the more severe kind wins.
void add_notice(Page& page, Notice notice);

// The message named by the request's `id` and `folder` (default INBOX) fields;
// nullopt if either is malformed.
std::optional<webflow::MessageRef> message_param(const Request& request);

// The hidden id and folder fields that name ref in a form.
Html message_fields(const webflow::MessageRef& ref);

// The /message URL of ref.
std::string message_url(const webflow::MessageRef& ref);

// The navigation entry for ref's folder.
Nav message_nav(const webflow::MessageRef& ref);

// The links that answer m (ref): Reply, Reply all, Reply to list (only when m has a
// List-Post address) and Forward, each to /compose; then `Back to the folder`.
Html answer_links(const webflow::MessageRef& ref, const mail::ParsedMessage& m);

// From, To, Cc and Date as <dt>/<dd> rows.
Html header_rows(const mail::ParsedMessage& m);

// How an HTML-only body is shown: sanitized in the sandboxed frame, or as text.
enum class HtmlView { framed, text };

// The best text body of m: plain text escaped in a <pre>; an HTML body sanitized in
// the sandboxed mail frame (cgi/common/mail_frame.h) or, with HtmlView::text, as
// text, with a link to switch.
Html text_content(const mail::ParsedMessage& m, HtmlView view, const webflow::MessageRef& ref);

// Links to /attachment for m's attachments; empty if it has none.
Html attachment_list(const mail::ParsedMessage& m, const webflow::MessageRef& ref);

// Whether the key that decrypts a message is unlocked in this session: the Decrypt
// button looks different then (DESIGN flow 4).
enum class DecryptLook { locked, unlocked };

// The placeholder of an encrypted message: a badge, a sentence and the Decrypt button.
Html encrypted_content(const Context& ctx, const webflow::MessageRef& ref, DecryptLook look);

// The keys a message offers for its sender (core/webflow/correspondents.h), each with
// its fingerprint and, unless it is bound already or refused, an import form posted to
// action_path (action=import-key, kind, part, fingerprint); empty if there are none.
Html key_offers_section(const Context& ctx, const webflow::MessageRef& ref,
                        const std::vector<webflow::KeyOffer>& offers, std::string_view action_path);

// The message page (data-page="message") for ref with the given status and notice:
// the headers and the text, or the encrypted placeholder with its Decrypt button; for
// a message that is not encrypted, the keys it offers for its sender (an attached
// application/pgp-keys part, its Autocrypt header), each with its fingerprint and an
// import form (POST /message, action=import-key).
// Error pages for a message that cannot be found or read.
Response message_page(Context& ctx, const webflow::MessageRef& ref, int status,
                      std::optional<Notice> notice = std::nullopt,
                      HtmlView view = HtmlView::framed);

}  // namespace wmk::cgi

// /message
//   GET  id (the Maildir uid), folder (default INBOX), view (html|text) → the message:
//        headers, the text body escaped in a <pre> (an HTML-only body sanitized in a
//        sandboxed frame, or with view=text as text), the attachments with links to
//        /attachment. An
//        encrypted message shows that it is encrypted and a Decrypt button (POST
//        /decrypt with id, folder and csrf), which looks different while the key is
//        unlocked in this session. Viewing marks the message seen.
//        404 for an unknown folder or message. A message that is not encrypted shows
//        the keys it offers for its sender (an attached application/pgp-keys part, the
//        Autocrypt header) with their fingerprints.
//   POST csrf, id, folder, action=import-key, kind (attached|autocrypt), part (attached),
//        fingerprint (the one the page showed) → imports that key for the message's From
//        address (attached: source user; Autocrypt: source autocrypt) and 303 back to the
//        message, where a notice says so; 400 `message` with the reason when it is
//        refused, 409 `message` when the message now offers another key.
#include <stdexcept>

#include "cgi/common/guard.h"
#include "cgi/common/mailbox.h"
#include "cgi/common/message_view.h"
#include "core/session/session.h"
#include "core/webflow/correspondents.h"

namespace wmk::cgi {

namespace {

Response message(Context& ctx) {
  auto ref = message_param(ctx.request);
  if (!ref)
    return error_response(404, "There is no such message.", ctx.viewer());
  auto box = UserMailbox::open(ctx.app, ctx.mailboxes, ctx.live_session());
  if (!box)
    return mailbox_error(box.error(), ctx.viewer());
  auto& mailbox = (*box)->mailbox();
  // Mark it seen unless the index already says so: each Maildir lookup of a message in
  // cur/ lists the folder, which costs ~20 ms per lookup at 10,000 messages (and each
  // IMAP STORE a round trip).
  auto& index = (*box)->index();
  if (auto summary = index.find(ref->folder, ref->uid); !summary || !summary->seen) {
    if (mailbox.mark_seen(ref->folder, ref->uid))
      (void)index.note_changed(ref->folder, ref->uid);
  }
  const HtmlView view =
      ctx.request.field("view").value_or("") == "text" ? HtmlView::text : HtmlView::framed;
  return message_page(ctx, *ref, 200, std::nullopt, view);
}

Response import_key(Context& ctx, const webflow::MessageRef& ref) {
  auto kind = webflow::parse_offer_kind(ctx.request.field("kind").value_or(""));
  const std::string fingerprint = ctx.request.field("fingerprint").value_or("");
  if (!kind || fingerprint.empty())
    return error_response(400, "The request names no key to import.", ctx.viewer());
  auto box = UserMailbox::open(ctx.app, ctx.mailboxes, ctx.live_session());
  if (!box)
    return mailbox_error(box.error(), ctx.viewer());
  auto raw = (*box)->mailbox().read(ref.folder, ref.uid);
  if (!raw)
    return error_response(404, "There is no such message; it may have been moved or deleted.",
                          ctx.viewer());
  auto imported = webflow::accept_key_offer(ctx.app, ctx.live_session(), *raw, *kind,
                                            ctx.request.field("part").value_or(""), fingerprint);
  if (!imported) {
    const Errc code = imported.code();
    if (code != Errc::invalid_argument && code != Errc::not_found && code != Errc::conflict &&
        code != Errc::corrupt && code != Errc::unsupported)
      throw std::runtime_error("importing a key from a message failed: " +
                               imported.error().message);
    return message_page(
        ctx, ref, code == Errc::conflict ? 409 : 400,
        Notice{Notice::Kind::error, "The key was not imported: " + imported.error().message + "."});
  }
  std::string bound;
  for (const auto& b : imported->bindings)
    bound += (bound.empty() ? "" : ", ") + b.email;
  (void)session::SessionStore(ctx.app.db, *ctx.app.clock, ctx.app.config)
      .set_notice(ctx.live_session().id, "Imported key " + imported->fingerprint + " for " + bound +
                                             ". It is listed under Your keys.");
  return Response::redirect(message_url(ref));
}

Response handle_message(Context& ctx) {
  if (!ctx.request.is_post())
    return message(ctx);
  auto ref = message_param(ctx.request);
  if (!ref)
    return error_response(404, "There is no such message.", ctx.viewer());
  if (ctx.request.field("action").value_or("") != "import-key")
    return error_response(400, "Unknown action.", ctx.viewer());
  return import_key(ctx, *ref);
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{
      .name = "message", .methods = {"GET", "POST"}, .access = Access::session, .secrets = {}};
  return run(program, handle_message);
}

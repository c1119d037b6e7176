// /message
//   GET  id (the Maildir uid), folder (default INBOX), view (html|text) → the message:
//        headers, the text body escaped in a <pre> (an HTML-only body sanitized in a
//        sandboxed frame, or with view=text as text), the attachments with links to
//        /attachment. An
//        encrypted message shows that it is encrypted and a Decrypt button (POST
//        /decrypt with id, folder and csrf), which looks different while the key is
//        unlocked in this session. Viewing marks the message seen.
//        404 for an unknown folder or message.
#include "cgi/common/guard.h"
#include "cgi/common/mailbox.h"
#include "cgi/common/message_view.h"

namespace wmk::cgi {

namespace {

Response message(Context& ctx) {
  auto ref = message_param(ctx.request);
  if (!ref)
    return error_response(404, "There is no such message.", ctx.viewer());
  auto box = UserMailbox::open(ctx.app, ctx.live_session());
  if (!box)
    return error_response(404, box.error().message, ctx.viewer());
  const auto& maildir = (*box)->maildir();
  // Mark it seen unless the index already says so: each Maildir lookup of a message in
  // cur/ lists the folder, which costs ~20 ms per lookup at 10,000 messages.
  auto& index = (*box)->index();
  if (auto summary = index.find(ref->folder, ref->uid); !summary || !summary->seen) {
    if (maildir.mark_seen(ref->folder, ref->uid))
      (void)index.note_changed(ref->folder, ref->uid);
  }
  const HtmlView view =
      ctx.request.field("view").value_or("") == "text" ? HtmlView::text : HtmlView::framed;
  return message_page(ctx, *ref, 200, std::nullopt, view);
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "message", .methods = {"GET"}, .access = Access::session, .secrets = {}};
  return run(program, message);
}

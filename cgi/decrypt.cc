// /decrypt
//   POST id, folder (default INBOX), csrf → flow 3: the decrypted message
//        (data-page="decrypted", Cache-Control: no-store) when this session holds a
//        live grant on the message's key and the browser's grant cookie opens it; else
//        the unlock page (data-page="unlock"); or 409 "key in use elsewhere"
//        (data-page="in-use") when another session holds the key. Only messages of the
//        user's own mailbox: the request names a folder and a uid, never ciphertext.
//   POST id, folder, part, csrf → that attachment of the decrypted content as a
//        download (decrypted once for this request), or the unlock / in-use page.
//   GET  the same without csrf: the decrypted message's own address
//        (/decrypt?id=ID&folder=F), which survives reload and the back button while
//        this session's grant lives and leads to the unlock page once it has ended;
//        with part, the attachment's link. Nothing changes state that a POST would not
//        (the grant's idle time restarts and the use is audited, as on POST), and the
//        session and grant cookies are SameSite=Strict, so another site cannot make
//        the browser send them.
#include "cgi/common/guard.h"
#include "cgi/common/key_pages.h"
#include "cgi/common/message_view.h"

namespace wmk::cgi {

namespace {

Response decrypt(Context& ctx) {
  auto ref = message_param(ctx.request);
  if (!ref)
    return error_response(404, "There is no such message.", ctx.viewer());
  auto keys = key_session(ctx);
  if (auto part = ctx.request.field("part")) {
    auto got = keys->decrypted_part(*ref, *part);
    if (!got)
      return flow_error_response(ctx, *ref, got.error());
    if (auto* content = std::get_if<webflow::DecryptedPart>(&*got))
      return decrypted_part_response(*content);
    if (auto* in_use = std::get_if<webflow::InUseElsewhere>(&*got))
      return in_use_response(ctx, *ref, *in_use);
    webflow::DecryptOutcome need{std::get<webflow::NeedUnlock>(std::move(*got))};
    return outcome_response(ctx, *ref, need);
  }
  auto outcome = keys->decrypt(*ref);
  if (!outcome)
    return flow_error_response(ctx, *ref, outcome.error());
  return outcome_response(ctx, *ref, *outcome);
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "decrypt",
                  .methods = {"GET", "POST"},
                  .access = Access::session,
                  .secrets = {.fields = {}, .cookies = {kGrantCookie}}};
  return run(program, decrypt);
}

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
//        The decrypted page lists the keys attached inside the encryption
//        (application/pgp-keys parts), each with its fingerprint and an import form.
//   POST id, folder, csrf, action=import-key, kind=attached, part (the decrypted
//        attachment id), fingerprint (the one the page showed) → decrypts the message
//        again under this session's grant, imports that key for the From address
//        (source user) and 303 to the decrypted message, where a notice says so; the
//        unlock or in-use page when the grant no longer opens the key; 400 `message`
//        with the reason when it is refused, 409 `message` when the message carries
//        another key.
#include "cgi/common/guard.h"
#include "cgi/common/key_pages.h"
#include "cgi/common/message_view.h"
#include "core/session/session.h"
#include "core/webflow/correspondents.h"

namespace wmk::cgi {

namespace {

Response import_key(Context& ctx, const webflow::MessageRef& ref) {
  const std::string part = ctx.request.field("part").value_or("");
  const std::string fingerprint = ctx.request.field("fingerprint").value_or("");
  if (webflow::parse_offer_kind(ctx.request.field("kind").value_or("")) !=
          webflow::KeyOffer::Kind::attached ||
      part.empty() || fingerprint.empty())
    return error_response(400, "The request names no key to import.", ctx.viewer());
  auto keys = key_session(ctx);
  auto imported = webflow::accept_decrypted_key_offer(*keys, ref, part, fingerprint);
  if (!imported) {
    const Errc code = imported.code();
    if (code != Errc::invalid_argument && code != Errc::not_found && code != Errc::conflict)
      return flow_error_response(ctx, ref, imported.error());
    return message_page(
        ctx, ref, code == Errc::conflict ? 409 : 400,
        Notice{Notice::Kind::error, "The key was not imported: " + imported.error().message + "."});
  }
  if (auto* in_use = std::get_if<webflow::InUseElsewhere>(&*imported))
    return in_use_response(ctx, ref, *in_use);
  if (auto* need = std::get_if<webflow::NeedUnlock>(&*imported)) {
    webflow::DecryptOutcome outcome{std::move(*need)};
    return outcome_response(ctx, ref, outcome);
  }
  const auto& key = std::get<contacts::ContactKey>(*imported);
  std::string bound;
  for (const auto& b : key.bindings)
    bound += (bound.empty() ? "" : ", ") + b.email;
  (void)session::SessionStore(ctx.app.db, *ctx.app.clock, ctx.app.config)
      .set_notice(ctx.live_session().id, "Imported key " + key.fingerprint + " for " + bound +
                                             ". It is listed under Your keys.");
  return Response::redirect(
      url("/decrypt", {{"id", ref.uid}, {"folder", mail::folder_name(ref.folder)}}));
}

Response decrypt(Context& ctx) {
  auto ref = message_param(ctx.request);
  if (!ref)
    return error_response(404, "There is no such message.", ctx.viewer());
  if (ctx.request.is_post() && ctx.request.field("action").value_or("") == "import-key")
    return import_key(ctx, *ref);
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

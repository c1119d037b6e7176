// /unlock
//   POST passphrase, confirm (unless the config sets unlock_confirmation = false),
//        id + folder of a message, csrf → flow 4: the key that decrypts the message is
//        unlocked for this session (a grant; the grant cookie is set when the session
//        had none) and the decrypted message is shown (data-page="decrypted").
//        Wrong passphrase → 403 on the message page (data-page="message", the state
//        before Decrypt) saying so; passphrase and confirmation differ or are missing
//        → 400, the unlock page again; too many failed attempts for the key → 429;
//        another unlock of the key in flight → 503;
//        the key unlocked in another session meanwhile → 409 data-page="in-use".
//   POST passphrase, confirm, draft (+ then = sign|edit|send), csrf: unlocks the draft's
//        signing key for this session and resumes the draft: signed for review
//        (data-page="signed") or opened in the compose form; 403 and the unlock page
//        again on a wrong passphrase, the draft kept (cgi/common/compose_flow.h).
//   The passphrase fields never reach cgicc or a std::string (SecretNames).
#include "cgi/common/compose_flow.h"
#include "cgi/common/guard.h"
#include "cgi/common/key_pages.h"
#include "cgi/common/message_view.h"

namespace wmk::cgi {

namespace {

Response unlock_for_message(Context& ctx, const webflow::MessageRef& ref) {
  auto keys = key_session(ctx);
  auto key = keys->key_for_message(ref);
  if (!key)
    return flow_error_response(ctx, ref, key.error());
  auto outcome = unlock_from_form(ctx, *keys, *key);
  if (!outcome) {
    const Error& e = outcome.error();
    if (e.code == Errc::invalid_argument) {
      std::string text = e.message;
      if (!text.empty())
        text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
      return page_response(400,
                           unlock_page(ctx, ref, *key, Notice{Notice::Kind::error, text + "."}));
    }
    if (e.code == Errc::wrong_passphrase) {
      return message_page(ctx, ref, 403,
                          Notice{Notice::Kind::error,
                                 "Wrong passphrase: your key was not unlocked. Press Decrypt "
                                 "to try again."});
    }
    return flow_error_response(ctx, ref, e);
  }
  if (auto* in_use = std::get_if<webflow::InUseElsewhere>(&*outcome))
    return in_use_response(ctx, ref, *in_use);

  auto& unlocked = std::get<webflow::Unlocked>(*outcome);
  auto decrypted = keys->decrypt(ref);
  Response r = decrypted ? outcome_response(ctx, ref, *decrypted)
                         : flow_error_response(ctx, ref, decrypted.error());
  // The grant exists whatever the decryption gave: the browser needs its secret, and
  // the session's new token.
  set_unlock_cookies(r, unlocked);
  return r;
}

Response unlock(Context& ctx) {
  if (auto draft = ctx.request.field("draft"))
    return unlock_for_draft(ctx, *draft);
  auto ref = message_param(ctx.request);
  if (!ref)
    return error_response(404, "There is no such message.", ctx.viewer());
  return unlock_for_message(ctx, *ref);
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "unlock",
                  .methods = {"POST"},
                  .access = Access::session,
                  .secrets = {.fields = {"passphrase", "confirm"}, .cookies = {kGrantCookie}}};
  return run(program, unlock);
}

// /stop-other
//   POST id, folder (default INBOX), csrf → flow 6: "Stop the key's use in the other
//        session?" (data-page="confirm-stop") naming the other session's grant (when,
//        from where), with OK and Cancel.
//   POST ... grant, ok=1 → that grant (and only that one: a grant that replaced it
//        meanwhile is shown for confirmation again) is revoked, its session is told at
//        its next request, and the unlock page follows (data-page="unlock").
//   When no other session holds the key any more, what Decrypt would show.
#include "cgi/common/guard.h"
#include "cgi/common/key_pages.h"
#include "cgi/common/message_view.h"

namespace wmk::cgi {

namespace {

Response as_decrypt(Context& ctx, webflow::KeySession& keys, const webflow::MessageRef& ref) {
  auto outcome = keys.decrypt(ref);
  if (!outcome)
    return flow_error_response(ctx, ref, outcome.error());
  return outcome_response(ctx, ref, *outcome);
}

Response stop_other(Context& ctx) {
  auto ref = message_param(ctx.request);
  if (!ref)
    return error_response(404, "There is no such message.", ctx.viewer());
  auto keys = key_session(ctx);
  auto key = keys->key_for_message(*ref);
  if (!key)
    return flow_error_response(ctx, *ref, key.error());

  if (ctx.request.field("ok").value_or("") != "1") {
    auto state = webflow::key_state(ctx.app, ctx.live_session(), *key);
    if (!state)
      return flow_error_response(ctx, *ref, state.error());
    if (state->other)
      return confirm_stop_response(ctx, *ref, *key, *state->other);
    return as_decrypt(ctx, *keys, *ref);
  }

  auto stopped =
      webflow::stop_other(ctx.app, ctx.live_session(), *key,
                          ctx.request.field("grant").value_or(""), client_of(ctx.request));
  if (!stopped)
    return flow_error_response(ctx, *ref, stopped.error());
  switch (stopped->result) {
    case webflow::StopResult::changed:
      return confirm_stop_response(ctx, *ref, *key, *stopped->current);
    case webflow::StopResult::own:
      return as_decrypt(ctx, *keys, *ref);
    case webflow::StopResult::stopped:
      return page_response(
          200, unlock_page(ctx, *ref, *key,
                           Notice{Notice::Kind::success,
                                  "The key's use in the other session was stopped. Unlock it "
                                  "here."}));
    case webflow::StopResult::already_gone:
      break;
  }
  return page_response(
      200, unlock_page(ctx, *ref, *key,
                       Notice{Notice::Kind::info,
                              "The other session no longer holds the key. Unlock it here."}));
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "stop-other",
                  .methods = {"POST"},
                  .access = Access::session,
                  .secrets = {.fields = {}, .cookies = {kGrantCookie}}};
  return run(program, stop_other);
}

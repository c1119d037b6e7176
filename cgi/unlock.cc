// /unlock
//   POST  passphrase, confirm (when the config asks for it), csrf, and either
//         draft (+ then = sign|edit): unlocks the draft's signing key for this session
//         (a grant) and resumes the draft: signed for review (data-page="signed") or
//         opened in the compose form; 403 and the unlock page again on a wrong
//         passphrase, the draft kept;
//         or id: the decrypt flow (not in this branch yet).
#include "cgi/common/compose_flow.h"

namespace wmk::cgi {

namespace {

Response unlock(Context& ctx) {
  auto passphrase = ctx.request.take_secret("passphrase");
  auto confirm = ctx.request.take_secret("confirm");
  if (!passphrase)
    return error_response(400, "The passphrase is missing.", ctx.viewer());
  if (auto draft = ctx.request.field("draft"))
    return unlock_for_draft(ctx, *draft, *passphrase, confirm);
  return error_response(400, "Nothing to unlock for: name a draft.", ctx.viewer());
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

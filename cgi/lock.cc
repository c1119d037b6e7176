// /lock
//   POST csrf, back (optional: a same-site path) → every grant of this session ends
//        at once (the keys must be unlocked again), the grant cookie is cleared, and
//        303 back (default /inbox), where a notice confirms the lock.
#include "cgi/common/guard.h"
#include "cgi/common/key_pages.h"

namespace wmk::cgi {

namespace {

Response lock(Context& ctx) {
  auto ended = webflow::lock(ctx.app, ctx.live_session(), client_of(ctx.request));
  if (!ended)
    throw std::runtime_error("locking the session's keys failed: " + ended.error().message);
  // The next page confirms it (a session notice, shown once).
  (void)session::SessionStore(ctx.app.db, *ctx.app.clock, ctx.app.config)
      .set_notice(ctx.live_session().id,
                  *ended == 0 ? "No key was unlocked in this session."
                              : "Your keys are locked. Decrypting or signing asks for the key "
                                "passphrase again.");
  Response r = Response::redirect(safe_return_path(ctx.request.field("back").value_or("/inbox")));
  r.add_cookie(SetCookie::deletion(kGrantCookie));
  return r;
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "lock", .methods = {"POST"}, .access = Access::session, .secrets = {}};
  return run(program, lock);
}

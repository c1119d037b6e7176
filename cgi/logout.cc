// /logout
//   POST  csrf → the session's grants end (audited as stopped by their owner), then
//         the session; the session and grant cookies are cleared, 303 /login?ended=logout
//         (the login page confirms the logout).
#include "cgi/common/guard.h"
#include "cgi/common/key_pages.h"

namespace wmk::cgi {

namespace {

Response logout(Context& ctx) {
  // The grants first, each audited as stopped by its owner (the user's key history
  // shows the unlock ended at logout); then the session, which would take them along.
  (void)webflow::lock(ctx.app, ctx.live_session(), client_of(ctx.request));
  session::SessionStore sessions(ctx.app.db, *ctx.app.clock, ctx.app.config);
  // not_found means it ended meanwhile (timeout, admin): the outcome is the same.
  (void)sessions.end(ctx.live_session().id);
  Response r = Response::redirect("/login?ended=logout");
  r.add_cookie(SetCookie::deletion(kSessionCookie));
  r.add_cookie(SetCookie::deletion(kGrantCookie));
  r.add_cookie(SetCookie::deletion(kMailCookie));
  return r;
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "logout", .methods = {"POST"}, .access = Access::session, .secrets = {}};
  return run(program, logout);
}

// /logout
//   POST  csrf → the session ends (its grants with it), the session and grant cookies
//         are cleared, 303 /login.
#include "cgi/common/guard.h"

namespace wmk::cgi {

namespace {

Response logout(Context& ctx) {
  session::SessionStore sessions(ctx.app.db, *ctx.app.clock, ctx.app.config);
  // not_found means it ended meanwhile (timeout, admin): the outcome is the same.
  (void)sessions.end(ctx.live_session().id);
  Response r = Response::redirect("/login");
  r.add_cookie(SetCookie::deletion(kSessionCookie));
  r.add_cookie(SetCookie::deletion(kGrantCookie));
  return r;
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "logout", .methods = {"POST"}, .access = Access::session, .secrets = {}};
  return run(program, logout);
}

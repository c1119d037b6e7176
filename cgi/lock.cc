// /lock
//   POST csrf, back (optional: a same-site path) → every grant of this session ends
//        at once (the keys must be unlocked again), the grant cookie is cleared, and
//        303 back (default /inbox).
#include "cgi/common/guard.h"
#include "cgi/common/key_pages.h"

namespace wmk::cgi {

namespace {

Response lock(Context& ctx) {
  auto ended = webflow::lock(ctx.app, ctx.live_session(), client_of(ctx.request));
  if (!ended)
    throw std::runtime_error("locking the session's keys failed: " + ended.error().message);
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

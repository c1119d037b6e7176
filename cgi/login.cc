// /login
//   GET   the login form, with a fresh pre-session CSRF token (cookie + hidden field,
//         double submit); a live session goes straight to /inbox.
//   POST  user, password, csrf → auth::login → a new session cookie and 303 /inbox;
//         401 on wrong credentials, 429 when throttled, 403 for a disabled account
//         or a missing or wrong CSRF token; each failure shows the form again.
#include "core/auth/login.h"
#include "cgi/common/guard.h"
#include "core/util/encoding.h"

namespace wmk::cgi {

namespace {

constexpr std::string_view kPassword = "password";

// The form with a new CSRF token (cookie and field), status and notice.
Response form(int status, std::string_view user, const std::optional<Notice>& notice) {
  std::string csrf = util::random_token(32);
  Response r = page_response(status, login_page(csrf, user, notice));
  r.add_cookie(SetCookie::session(kLoginCsrfCookie, csrf));
  return r;
}

// "too many ... seconds" → "Too many ... seconds."
std::string sentence(std::string text) {
  if (!text.empty() && text[0] >= 'a' && text[0] <= 'z')
    text[0] = static_cast<char>(text[0] - 'a' + 'A');
  return text + ".";
}

Notice error(std::string text) {
  return Notice{Notice::Kind::error, std::move(text)};
}

Response show(Context& ctx) {
  if (ctx.session)
    return Response::redirect("/inbox");
  std::optional<Notice> notice;
  // Why the last session ended, when the guard or /logout knows it.
  std::string ended = ctx.request.query("ended").value_or("");
  if (ctx.session_error == Errc::expired && ended.empty())
    ended = "expired";
  if (ended == "logout")
    notice = Notice{Notice::Kind::success,
                    "You have logged out, and your keys are locked. Log in again to continue."};
  else if (ended == "disabled")
    notice = Notice{Notice::Kind::info,
                    "Your session has ended: your account has been switched off. Ask your "
                    "administrator."};
  else if (ended == "gone")
    notice = Notice{Notice::Kind::info,
                    "Your session was ended on the server (an administrator may have ended it). "
                    "Your keys are locked. Log in again to continue."};
  else if (!ended.empty())
    notice = Notice{Notice::Kind::info,
                    "Your session has ended: it timed out after a while without use, or reached "
                    "its time limit. Your keys are locked. Log in again to continue."};
  Response r = form(200, "", notice);
  if (ctx.session_error)
    r.add_cookie(SetCookie::deletion(kSessionCookie));
  return r;
}

Response submit(Context& ctx) {
  Request& req = ctx.request;
  std::string user = req.field("user").value_or("");
  auto cookie = req.cookie(kLoginCsrfCookie);
  auto field = req.field("csrf");
  if (!cookie || !field || !tokens_equal(*cookie, *field)) {
    return form(403, user,
                error("The login form had expired or did not come from this site. "
                      "Please try again."));
  }
  auto password = req.take_secret(kPassword);
  if (user.empty() || !password || password->empty())
    return form(400, user, error("Enter your user name and your password."));

  auto outcome = auth::login(ctx.app, user, *password, req.client_addr(), req.user_agent());
  if (!outcome) {
    switch (outcome.code()) {
      case Errc::bad_credentials:
        return form(401, user, error("Wrong user name or password."));
      case Errc::locked_out:
        return form(429, user, error(sentence(outcome.error().message)));
      case Errc::busy:
        return form(503, user,
                    error("Another sign-in to this account is being checked right now, so "
                          "this one was not tried. Please try again in a moment."));
      case Errc::disabled:
        return form(403, user, error("This account is disabled. Ask your administrator."));
      default:
        throw std::runtime_error("login failed: " + outcome.error().message);
    }
  }
  // A session this browser had before (another user, or a stale one) ends here: every
  // login gets a new random session id, never one chosen before authentication.
  if (ctx.session) {
    session::SessionStore sessions(ctx.app.db, *ctx.app.clock, ctx.app.config);
    (void)sessions.end(ctx.session->id);
  }
  Response r = Response::redirect("/inbox");
  r.add_cookie(SetCookie::session_secret(kSessionCookie, outcome->session.token));
  r.add_cookie(SetCookie::deletion(kLoginCsrfCookie));
  r.add_cookie(SetCookie::deletion(kGrantCookie));
  if (outcome->mail_cookie)
    r.add_cookie(SetCookie::session_secret(kMailCookie, *outcome->mail_cookie));
  else
    r.add_cookie(SetCookie::deletion(kMailCookie));
  return r;
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "login",
                  .methods = {"GET", "POST"},
                  .access = Access::anonymous,
                  .secrets = {.fields = {kPassword}, .cookies = {}}};
  return run(program, [](Context& ctx) { return ctx.request.is_post() ? submit(ctx) : show(ctx); });
}

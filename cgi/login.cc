// /login: GET shows the login form with a fresh pre-session CSRF token (cookie +
// hidden field, double submit).
#include "cgi/common/guard.h"
#include "core/util/encoding.h"

namespace wmk::cgi {

Response show_form(Context&) {
  std::string csrf = util::random_token(32);
  Response r = page_response(200, login_page(csrf, ""));
  r.add_cookie(SetCookie::session(kLoginCsrfCookie, csrf));
  return r;
}

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{.name = "login", .methods = {"GET"}, .access = Access::anonymous, .secrets = {}};
  return run(program, show_form);
}

#include "cgi/common/layout.h"

#include <vector>

namespace wmk::cgi {

namespace {

Html nav_item(Literal href, std::string_view label, bool current) {
  return fill(R"(<li><a href="{{href}}"{{current}}>{{label}}</a></li>)",
              {{"href", href.view()},
               {"current", current ? Html(R"( aria-current="page")") : Html()},
               {"label", label}});
}

Html header(const Page& page) {
  if (!page.viewer) {
    return Html(R"(<header class="site"><span class="brand">webmailkey</span></header>)");
  }
  Html items = nav_item("/inbox", "Inbox", page.nav == Nav::inbox) +
               nav_item("/inbox?folder=Sent", "Sent", page.nav == Nav::sent) +
               nav_item("/inbox?folder=Drafts", "Drafts", page.nav == Nav::drafts) +
               nav_item("/compose", "Compose", page.nav == Nav::compose) +
               nav_item("/keys", "Keys", page.nav == Nav::keys);
  return fill(
      R"(<header class="site">
<a class="brand" href="/inbox">webmailkey</a>
<nav aria-label="Main"><ul>{{items}}</ul></nav>
<div class="account"><span class="who">Signed in as <strong>{{login}}</strong></span>
<form method="post" action="/logout" class="inline">{{csrf}}<button type="submit" class="link">Log out</button></form></div>
</header>)",
      {{"items", items}, {"login", page.viewer->login}, {"csrf", csrf_field(page.viewer->csrf)}});
}

}  // namespace

Html render_notice(const Notice& notice) {
  switch (notice.kind) {
    case Notice::Kind::error:
      return fill(R"(<p class="notice notice-error" role="alert">{{text}}</p>)",
                  {{"text", notice.text}});
    case Notice::Kind::success:
      return fill(R"(<p class="notice notice-success" role="status">{{text}}</p>)",
                  {{"text", notice.text}});
    case Notice::Kind::info:
      break;
  }
  return fill(R"(<p class="notice" role="status">{{text}}</p>)", {{"text", notice.text}});
}

Html render(const Page& page) {
  Html banner;
  if (!page.key_banner.empty())
    banner = fill(R"(<div class="key-banner" role="status">{{b}}</div>)", {{"b", page.key_banner}});
  return fill(R"(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{title}} — webmailkey</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
{{scripts}}</head>
<body data-page="{{page}}">
<a class="skip" href="#main">Skip to content</a>
{{header}}
{{banner}}
<main id="main">
{{notice}}
{{main}}
</main>
</body>
</html>
)",
              {{"title", page.title},
               // The one script: it keeps the banner's time left true while the page
               // stays open. Pages work without it.
               {"scripts", page.key_banner.empty()
                               ? Html()
                               : Html("<script src=\"/static/banner.js\" defer></script>\n")},
               {"page", page.name},
               {"header", header(page)},
               {"banner", banner},
               {"notice", page.notice ? render_notice(*page.notice) : Html()},
               {"main", page.main}});
}

Response page_response(int status, const Page& page) {
  Response r = Response::page(status, render(page));
  if (!page.key_banner.empty())
    r.extend_csp("script-src 'self'");
  return r;
}

Response error_response(int status, std::string_view message, const std::optional<Viewer>& viewer) {
  Page p;
  p.name = "error";
  p.title = reason_phrase(status);
  p.viewer = viewer;
  p.main = fill(R"(<h1>{{status}} {{reason}}</h1>
<p class="error-message">{{message}}</p>
<p><a href="{{back}}">{{back_label}}</a></p>)",
                {{"status", status},
                 {"reason", reason_phrase(status)},
                 {"message", message},
                 {"back", viewer ? "/inbox" : "/login"},
                 {"back_label", viewer ? "Back to the inbox" : "Go to the login page"}});
  return page_response(status, p);
}

Page login_page(std::string_view csrf, std::string_view user, const std::optional<Notice>& notice) {
  Page p;
  p.name = "login";
  p.title = "Log in";
  p.notice = notice;
  p.main = fill(R"(<h1>Log in</h1>
<form method="post" action="/login" class="stacked login">
{{csrf}}
<label for="user">User name</label>
<input id="user" name="user" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="{{user}}"{{focus_user}}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{{focus_password}}>
<button type="submit">Log in</button>
</form>)",
                // The cursor waits where typing goes on: the password after a failure.
                {{"csrf", csrf_field(csrf)},
                 {"user", user},
                 {"focus_user", user.empty() ? Html(" autofocus") : Html()},
                 {"focus_password", user.empty() ? Html() : Html(" autofocus")}});
  return p;
}

}  // namespace wmk::cgi

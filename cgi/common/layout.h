#pragma once
// The page shell every program renders into: doctype, viewport, stylesheet, a
// header with the app name, the user, the navigation and a Logout button, a slot
// for the key-state banner, a slot for a notice, and <body data-page="..."> naming
// the page's state for tests and scripts (DESIGN §6). A page with the key banner
// also loads /static/banner.js (a countdown of the time left; pages work without it)
// and its response allows script-src 'self'.

#include <optional>
#include <string>
#include <string_view>

#include "cgi/common/html.h"
#include "cgi/common/response.h"

namespace wmk::cgi {

// Who is logged in, for the header.
struct Viewer {
  std::string login;
  std::string csrf;  // the session's CSRF token, for the Logout form
};

struct Notice {
  enum class Kind { info, success, error };
  Kind kind = Kind::info;
  std::string text;
};

// Which navigation entry is the current page.
enum class Nav { none, inbox, sent, drafts, compose, keys };

struct Page {
  std::string name;   // the data-page value: login, inbox, message, error, ...
  std::string title;  // shown in the tab, before " — webmailkey"
  std::optional<Viewer> viewer;
  Nav nav = Nav::none;
  Html key_banner;  // e.g. "Key unlocked — 9 min left"; empty: none
  std::optional<Notice> notice;
  Html main;
};

// The whole document.
Html render(const Page& page);

// The document as a response with the given status (script-src 'self' added to the
// CSP when the page has a key banner).
Response page_response(int status, const Page& page);

// An error page (data-page="error") with the status, its reason and a message that
// says what went wrong in words for the user. Never pass internal details here.
Response error_response(int status, std::string_view message,
                        const std::optional<Viewer>& viewer = std::nullopt);

// The login page (data-page="login"): user name, password, the pre-session CSRF
// token; the user name typed before is kept after a failure.
Page login_page(std::string_view csrf, std::string_view user,
                const std::optional<Notice>& notice = std::nullopt);

// A notice as markup (a <p> with role=status or role=alert).
Html render_notice(const Notice& notice);

}  // namespace wmk::cgi

#pragma once
// The common start of every CGI program: load the config ($WEBMAILKEY_CONFIG as the
// server sets it), open the app, refuse plain HTTP unless the config allows it,
// check the method and, for POSTs, that the request comes from our own pages;
// resume the session from its cookie (idle and absolute limits are checked by
// core/session on every request), check the session's CSRF token on POSTs; then
// call the program's handler. Exceptions become a 500 page without details (the
// details go to stderr, the server's error log); a database that cannot be reached,
// before or during the request, a 503 page that says so (and, for a form such as
// compose, gives back what was typed), and the next request connects again.

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cgi/common/layout.h"
#include "cgi/common/request.h"
#include "cgi/common/response.h"
#include "core/app/app.h"
#include "core/grant/cookie.h"
#include "core/mail/open_mailbox.h"
#include "core/session/session.h"
#include "core/util/clock.h"

namespace wmk::cgi {

// The largest request body the programs read: 4 × attachment_max_bytes + 2 MiB. A web
// server's own request limit must be above it (examples/, scripts/serve), so that a
// too-large upload gets the product's page rather than the server's bare 413.
std::size_t max_request_bytes(const config::Config& cfg);

inline constexpr std::string_view kSessionCookie = "__Host-wmk-session";
// The pre-session CSRF token of the login form (double submit: cookie + field).
inline constexpr std::string_view kLoginCsrfCookie = "__Host-wmk-login-csrf";

// The grant cookie; cleared at login and logout.
inline constexpr std::string_view kGrantCookie = grant::kGrantCookieName;

// The cookie opening the session's kept mail password (imap_login = user); set at
// login, cleared at logout.
inline constexpr std::string_view kMailCookie = session::kMailCookieName;

// Who may run a program.
enum class Access {
  anonymous,  // no session needed; a live one is still resumed (login). The program
              // checks its own POSTs' CSRF token.
  session,    // a live session, else 303 /login (with ?ended=1 after a timeout);
              // every POST must carry the session's CSRF token in field `csrf`.
};

// Thrown by a handler when a server it needs besides the database (the IMAP server)
// cannot be reached before it did anything: the guard answers the same 503 page as for
// the database, saying said, with a POST's kept fields given back; detail goes to the
// error log.
class ServiceUnavailable : public std::runtime_error {
 public:
  ServiceUnavailable(const std::string& said, std::string detail)
      : std::runtime_error(said), detail_(std::move(detail)) {}
  const std::string& detail() const { return detail_; }

 private:
  std::string detail_;
};

// A form field that a POST gets back when the database cannot be reached.
struct KeptField {
  enum class Shown {
    hidden,  // carried unseen (every value, when repeated)
    line,    // a one-line text box
    text,    // a text area
  };
  std::string_view name;
  Shown shown = Shown::hidden;
  std::string_view label = {};  // for line and text
};

struct Program {
  std::string_view name;                         // for the error log, e.g. "inbox"
  std::vector<std::string_view> methods{"GET"};  // others → 405
  Access access = Access::session;
  SecretNames secrets;  // form fields and cookies kept out of cgicc (the session
                        // cookie is always added)
  // The fields of a POST that the "database unreachable" page (503) puts back into a
  // form that sends them again to the same path, so that nothing typed is lost
  // (compose). Never a secret field; uploaded files cannot be given back.
  std::vector<KeptField> kept_when_unavailable = {};
};

// What a handler gets.
struct Context {
  app::App& app;
  Request& request;
  // The user's mailbox for this request, opened at most once (UserMailbox, KeySession);
  // a FastCGI worker's keeps a master-user IMAP connection between requests.
  mail::MailboxKeeper& mailboxes;
  std::optional<session::Session> session;  // the live session, if any
  std::optional<Errc> session_error;        // why the cookie opened none (expired, ...)
  // Where the key banner's Lock button returns to; unset: the request's own path for a
  // GET, /inbox after a POST. Pages about a message set it to the message.
  std::optional<std::string> return_path = std::nullopt;

  // The header's user and Logout token, when logged in.
  std::optional<Viewer> viewer() const;
  // A page for this request: viewer set, the session's pending notice (taken, so it
  // is shown once), and the key banner (unlocked keys, time left, Lock).
  Page page(std::string name, std::string title, Nav nav = Nav::none);
  // The live session; throws std::logic_error (a bug) in an anonymous program without one.
  const session::Session& live_session() const;
};

using Handler = std::function<Response(Context&)>;

// Handles one request from source and returns the response (no output). The
// config comes from source's WEBMAILKEY_CONFIG, else the process environment's, else
// the default path.
Response handle(const Program& program, const RequestSource& source, const Handler& handler,
                const util::Clock& clock = util::system_clock());

// The same with an app kept across requests (a FastCGI worker): opened on the first
// request and kept while requests name the same config file. A failed open is not
// kept, so the next request tries again. The request's mailbox is opened at most once
// and logged out at the end.
Response handle(const Program& program, const RequestSource& source, const Handler& handler,
                std::optional<app::App>& kept, const util::Clock& clock = util::system_clock());

// The same with the worker's mailbox owner: after a request that ended without an
// error (status below 500), its IMAP connection may be kept for the next request as
// mail::MailboxKeeper says; dropped when the app is opened afresh (another config).
Response handle(const Program& program, const RequestSource& source, const Handler& handler,
                std::optional<app::App>& kept, mail::MailboxKeeper& mailboxes,
                const util::Clock& clock = util::system_clock());

// The program's main. Started by a web server as CGI: handle() on the process
// environment and stdin, written to stdout. Started as a FastCGI application (stdin
// a listening socket, as lighttpd's mod_fastcgi spawns it): a worker serving one
// request at a time until it has served config.worker_max_requests (see
// cgi/common/worker.h). Either way core dumps are off (RLIMIT_CORE 0, not dumpable).
// Returns the process exit status: 0, or 1 when the response could not be written.
int run(const Program& program, const Handler& handler);

// True when a state-changing request comes from our own pages: Sec-Fetch-Site, when
// sent, is same-origin; Origin, when sent, equals this site, or is "null" (what
// browsers send under no-referrer) with Sec-Fetch-Site present. Browsers send at
// least one of them on every POST.
bool same_origin(const Request& request);

// Constant-time comparison of two tokens.
bool tokens_equal(std::string_view a, std::string_view b);

}  // namespace wmk::cgi

#include "cgi/common/guard.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <stdexcept>

#include "cgi/common/key_pages.h"
#include "cgi/common/mailbox.h"
#include "cgi/common/worker.h"
#include "core/config/config.h"
#include "core/store/db.h"
#include "core/util/process.h"

namespace wmk::cgi {

std::size_t max_request_bytes(const config::Config& cfg) {
  // Room for every attachment at its limit twice over (base64 and the form's own
  // encoding) plus the text: a single file somewhat over the limit still arrives, and
  // compose refuses it on the page that keeps what was typed.
  return static_cast<std::size_t>(cfg.attachment_max_bytes) * 4 + 2 * 1024 * 1024;
}

namespace {

void log_error(const Program& program, std::string_view what) {
  // stderr of a CGI program goes to the web server's error log.
  std::cerr << "webmailkey " << program.name << ": " << what << std::endl;
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

std::string upper(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return s;
}

// When the database cannot be reached: a 503 that says whether anything may have been
// done, and gives a POST's kept fields back in a form that sends them again.
// during: the failure came while the program's handler ran (it may have done part of
// its work outside the database, such as handing a message to the MTA). unknown: the
// connection was lost at COMMIT, so the change may have been saved.
std::string database_unavailable(bool during, bool unknown = false) {
  std::string said =
      unknown  ? "The database stopped answering just as this request was being completed, so "
                 "it cannot be said whether it was. Look before you do it again once the "
                 "service is back (for a message: look in Sent)."
      : during ? "The database stopped answering in the middle of this request, so it was not "
                 "completed; what it had begun in the database was undone. If you were sending "
                 "a message, look in Sent once the service is back before you send it again."
               : "The database cannot be reached at the moment, so nothing was done: nothing was "
                 "sent, saved or changed.";
  return said +
         " The service recovers by itself when the database is back: try again in a "
         "minute.";
}

// said: what is down and what that means for this request.
Response unavailable_response(const Program& program, const Request* request,
                              const std::string& said) {
  Page p;
  p.name = "error";
  p.title = "Service Unavailable";
  Html kept;
  if (request && request->is_post() && !program.kept_when_unavailable.empty()) {
    Html fields;
    for (const KeptField& f : program.kept_when_unavailable) {
      if (f.shown == KeptField::Shown::hidden) {
        for (const std::string& v : request->fields(f.name))
          fields += fill(R"(<input type="hidden" name="{{name}}" value="{{value}}">)",
                         {{"name", f.name}, {"value", v}});
        continue;
      }
      std::string value = request->field(f.name).value_or("");
      fields += f.shown == KeptField::Shown::line
                    ? fill(R"(<label for="kept-{{name}}">{{label}}</label>
<input id="kept-{{name}}" name="{{name}}" type="text" value="{{value}}">
)",
                           {{"name", f.name}, {"label", f.label}, {"value", value}})
                    : fill(R"(<label for="kept-{{name}}">{{label}}</label>
<textarea id="kept-{{name}}" name="{{name}}" rows="12">
{{value}}</textarea>
)",
                           {{"name", f.name}, {"label", f.label}, {"value", value}});
    }
    bool had_files = false;
    for (const UploadedFile& f : request->files())
      had_files = had_files || !f.filename.empty() || !f.data.empty();
    kept =
        fill(R"(<h2>What you typed is kept</h2>
<p>{{files}}Send it again from here once the service is back.</p>
<form method="post" action="{{action}}" enctype="multipart/form-data" class="stacked kept-form">
{{fields}}<div class="actions"><button type="submit">Try again</button></div>
</form>)",
             {{"files", had_files ? "The attached files were not kept: attach them again. " : ""},
              {"action", request->path()},
              {"fields", fields}});
  }
  p.main = fill(R"(<h1>503 Service Unavailable</h1>
<p class="error-message" data-error="unavailable">{{message}}</p>
{{kept}})",
                {{"message", said}, {"kept", kept}});
  Response r = page_response(503, p);
  r.set_header("Retry-After", "30");
  return r;
}

// The config file named by the request (lighttpd's setenv), else by the process
// environment (a FastCGI worker's bin-environment), else the default.
std::string config_path_of(const RequestSource& source) {
  if (auto p = source.env(config::kConfigEnv); p && !p->empty())
    return *p;
  return config::resolve_path(std::nullopt);
}

// request: where the parsed request goes, for the 503 page. during: set when the
// handler is called.
Response handle_unguarded(const Program& program, const RequestSource& source,
                          const Handler& handler, std::optional<app::App>& kept,
                          const util::Clock& clock, std::optional<Request>& request, bool& during) {
  std::string config_path = config_path_of(source);
  // The config first: the checks before the session need it, not the database. A
  // worker keeps its App (config and connection) while requests name the same file.
  const bool keep = kept && kept->config.source == config_path && kept->clock == &clock;
  if (!keep)
    kept.reset();
  std::optional<config::Config> loaded;
  if (!keep) {
    auto read = config::load(config_path);
    if (!read) {
      log_error(program, "cannot open the service: " + read.error().message);
      return error_response(503,
                            "The service is not available: its configuration or database could "
                            "not be opened. The administrator finds the reason in the web "
                            "server's error log.");
    }
    loaded.emplace(std::move(read).value());
  }
  const config::Config& cfg = keep ? kept->config : *loaded;

  // Plain HTTP is refused before the body (which may hold a password) is read.
  bool https = lower(source.env("HTTPS").value_or("")) == "on";
  if (!https && !cfg.allow_insecure_http) {
    return error_response(403, "This service only answers over HTTPS. Use the https:// address.");
  }

  std::string method = upper(source.env("REQUEST_METHOD").value_or("GET"));
  if (std::find(program.methods.begin(), program.methods.end(), method) == program.methods.end()) {
    Response r = error_response(405, "This address does not take " + method + " requests.");
    std::string allow;
    for (auto m : program.methods)
      allow += (allow.empty() ? "" : ", ") + std::string(m);
    r.set_header("Allow", allow);
    return r;
  }

  RequestLimits limits;
  limits.max_body_bytes = max_request_bytes(cfg);
  SecretNames secrets = program.secrets;
  // The session, grant and mail cookies are credentials: they never reach cgicc. The
  // browser sends them with every request, whichever program it is for.
  for (auto name : {kSessionCookie, kGrantCookie, kMailCookie}) {
    if (std::find(secrets.cookies.begin(), secrets.cookies.end(), name) == secrets.cookies.end())
      secrets.cookies.push_back(name);
  }
  // A body past the programs' limit gets this page, not the web server's bare 413: the
  // servers' own limits sit above it (examples/, scripts/serve). Below it, compose
  // refuses a too-large file itself and keeps what was typed.
  if (auto cl = source.env("CONTENT_LENGTH");
      cl && cl->size() < 20 && std::strtoull(cl->c_str(), nullptr, 10) > limits.max_body_bytes) {
    // Read the body to its end unseen: a server that streams it to the program (Apache's
    // mod_cgid) drops the connection, answer included, if the program stops reading.
    std::uint64_t left = std::strtoull(cl->c_str(), nullptr, 10);
    std::vector<std::uint8_t> sink(64 * 1024);
    while (left > 0) {
      std::size_t n = left < sink.size() ? static_cast<std::size_t>(left) : sink.size();
      if (!source.read_body({sink.data(), n}))
        break;
      left -= n;
    }
    return error_response(413, "That was too much to send at once: at most " +
                                   format_size(cfg.attachment_max_bytes) +
                                   " per attached file. Go back, attach less, and send again.");
  }
  auto parsed = Request::parse(source, secrets, limits);
  if (!parsed) {
    int status = parsed.code() == Errc::unsupported ? 415 : 400;
    return error_response(status, "The request could not be read: " + parsed.error().message);
  }
  request.emplace(std::move(parsed).value());

  request->use_trusted_proxies(cfg.trusted_proxies);

  if (request->is_post() && !same_origin(*request)) {
    return error_response(403,
                          "This form was sent from another site, so it was refused. Open the "
                          "page here and send it again.");
  }

  // Now the database: opened, or (a worker's) checked and connected again if the
  // server closed the connection since the last request. Unreachable: the 503 page,
  // with a form's fields given back, since the request is parsed and from our site.
  if (keep) {
    if (auto alive = kept->db.revive(); !alive) {
      log_error(program, alive.error().message);
      return unavailable_response(program, &*request, database_unavailable(false));
    }
  } else {
    auto opened = app::open_with(std::move(*loaded), clock);
    if (!opened) {
      log_error(program, "cannot open the service: " + opened.error().message);
      if (opened.code() == Errc::unavailable)
        return unavailable_response(program, &*request, database_unavailable(false));
      return error_response(503,
                            "The service is not available: its configuration or database could "
                            "not be opened. The administrator finds the reason in the web "
                            "server's error log.");
    }
    kept.emplace(std::move(opened).value());
  }
  app::App* app = &*kept;

  Context ctx{*app, *request, std::nullopt, std::nullopt};
  auto token = request->take_secret_cookie(kSessionCookie);
  if (token && !token->empty()) {
    session::SessionStore sessions(app->db, *app->clock, app->config);
    auto resumed = sessions.resume(token->view());
    if (resumed) {
      ctx.session = std::move(resumed).value();
      if (auto mail = request->take_secret_cookie(kMailCookie); mail && !mail->empty())
        sessions.open_mail_password(*ctx.session, mail->view());
    } else
      ctx.session_error = resumed.code();
  }

  if (program.access == Access::session) {
    if (!ctx.session) {
      // The login page says why (cgi/login.cc): timed out, account switched off, or a
      // session the server no longer knows (an admin ended it, or it was purged).
      std::string target = "/login";
      if (ctx.session_error)
        target += *ctx.session_error == Errc::expired    ? "?ended=expired"
                  : *ctx.session_error == Errc::disabled ? "?ended=disabled"
                                                         : "?ended=gone";
      Response r = Response::redirect(target);
      if (token)
        r.add_cookie(SetCookie::deletion(kSessionCookie));
      return r;
    }
    if (request->is_post()) {
      auto csrf = request->field("csrf");
      if (!csrf || !session::SessionStore::csrf_matches(*ctx.session, *csrf)) {
        return error_response(403,
                              "This form is out of date or did not come from this site, so it "
                              "was refused. Reload the page and try again.",
                              ctx.viewer());
      }
    }
  }

  during = true;
  return handler(ctx);
}

}  // namespace

Response handle(const Program& program, const RequestSource& source, const Handler& handler,
                const util::Clock& clock) {
  std::optional<app::App> app;
  return handle(program, source, handler, app, clock);
}

Response handle(const Program& program, const RequestSource& source, const Handler& handler,
                std::optional<app::App>& kept, const util::Clock& clock) {
  std::optional<Request> request;
  bool during = false;
  try {
    return handle_unguarded(program, source, handler, kept, clock, request, during);
  } catch (const store::StoreUnavailable& e) {
    // The connection is bad now; the next request's revive() connects again.
    log_error(program, e.what());
    // Before the handler, only the session was read: a form that passed the origin
    // check gets its fields back. Never a cross-site POST: same_origin() came first.
    bool checked = request && (!request->is_post() || same_origin(*request));
    const bool unknown = dynamic_cast<const store::StoreOutcomeUnknown*>(&e) != nullptr;
    return unavailable_response(program, checked ? &*request : nullptr,
                                database_unavailable(during, unknown));
  } catch (const ServiceUnavailable& e) {
    log_error(program, e.detail());
    bool checked = request && (!request->is_post() || same_origin(*request));
    return unavailable_response(program, checked ? &*request : nullptr, e.what());
  } catch (const std::exception& e) {
    log_error(program, std::string("unexpected error: ") + e.what());
  } catch (...) {
    log_error(program, "unexpected error of unknown type");
  }
  return error_response(500,
                        "Something went wrong on the server. Nothing was changed by this "
                        "request; the error has been logged.");
}

int run(const Program& program, const Handler& handler) {
  // No core dumps: a dump could hold a password, a passphrase or an unlocked key.
  util::disable_core_dumps();
  // A client that goes away makes write() fail instead of killing us mid-transaction.
  std::signal(SIGPIPE, SIG_IGN);
  if (started_as_fastcgi())
    return serve_fastcgi(program, handler);
  try {
    Response r = handle(program, RequestSource::process(), handler);
    return r.write_to_stdout() ? 0 : 1;
  } catch (const std::exception& e) {
    log_error(program, std::string("unexpected error while answering: ") + e.what());
  } catch (...) {
    log_error(program, "unexpected error of unknown type while answering");
  }
  return 1;
}

std::optional<Viewer> Context::viewer() const {
  if (!session)
    return std::nullopt;
  return Viewer{session->login, session->csrf_token};
}

Page Context::page(std::string name, std::string title, Nav nav) {
  Page p;
  p.name = std::move(name);
  p.title = std::move(title);
  p.viewer = viewer();
  p.nav = nav;
  if (session) {
    session::SessionStore sessions(app.db, *app.clock, app.config);
    if (auto notice = sessions.take_notice(session->id))
      p.notice = Notice{Notice::Kind::info, *notice};
    // Every page says which keys are unlocked and for how long; Lock comes back here,
    // or where the handler says (return_path).
    std::string back = return_path.value_or("/inbox");
    if (!return_path && !request.is_post()) {
      back = request.path();
      if (auto query = request.env("QUERY_STRING"); query && !query->empty())
        back += "?" + *query;
    }
    p.key_banner = key_banner(*this, back);
  }
  return p;
}

const session::Session& Context::live_session() const {
  if (!session)
    throw std::logic_error("this program needs a live session");
  return *session;
}

bool same_origin(const Request& request) {
  auto site = request.env("HTTP_SEC_FETCH_SITE");
  if (site && *site != "same-origin")
    return false;
  auto origin = request.env("HTTP_ORIGIN");
  // Our pages send `Referrer-Policy: no-referrer`, under which browsers serialise the
  // Origin of a form POST as "null" (Fetch, "serializing a request origin"). Then only
  // Sec-Fetch-Site tells where the form came from: accepted when it says same-origin
  // (a sandboxed frame's opaque origin makes it cross-site), refused when absent.
  if (origin && *origin == "null")
    return site.has_value();
  if (origin) {
    auto host = request.env("HTTP_HOST");
    if (!host || host->empty())
      return false;
    // A server may pass the host without its port (Debian's nginx fastcgi_params sets
    // HTTP_HOST to $host): then the port the request came to completes it.
    std::string authority = *host;
    const char* default_port = request.https() ? "443" : "80";
    if (auto port = request.env("SERVER_PORT"); authority.find(':') == std::string::npos &&
                                                authority.front() != '[' && port &&
                                                !port->empty() && *port != default_port)
      authority += ":" + *port;
    std::string expected = std::string(request.https() ? "https://" : "http://") + authority;
    if (lower(*origin) != lower(expected))
      return false;
  }
  return true;
}

bool tokens_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty())
    return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace wmk::cgi

#include "cgi/common/guard.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "core/app/app.h"
#include "core/auth/users.h"
#include "core/session/session.h"
#include "core/setup/init.h"
#include "core/store/db.h"
#include "core/util/fs.h"
#include "tests/unit/test_util.h"

namespace wmk::cgi {

namespace {

class CgiGuard : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = dir_.path() + "/webmailkey.conf";
    write_config(false);
    ASSERT_TRUE(setup::init(config_, std::nullopt).ok());
  }

  void write_config(bool allow_http) {
    std::string text = "data_dir = " + dir_.path() + "/data\n";
    if (allow_http)
      text += "allow_insecure_http = true\n";
    ASSERT_TRUE(util::write_file_atomic(config_, text).ok());
  }

  std::map<std::string, std::string> env(std::string method = "GET", bool https = true) {
    std::map<std::string, std::string> e{{"REQUEST_METHOD", method},
                                         {"WEBMAILKEY_CONFIG", config_},
                                         {"HTTP_HOST", "mail.example.org"},
                                         {"REMOTE_ADDR", "127.0.0.1"}};
    if (https)
      e["HTTPS"] = "on";
    if (method == "POST") {
      e["CONTENT_TYPE"] = "application/x-www-form-urlencoded";
      e["CONTENT_LENGTH"] = "0";
    }
    return e;
  }

  Response call(const std::map<std::string, std::string>& e, Access access = Access::anonymous,
                std::vector<std::string_view> methods = {"GET", "POST"},
                const std::string& body = "") {
    called_ = false;
    seen_login_.clear();
    Program p{.name = "test", .methods = methods, .access = access, .secrets = {}};
    auto env = e;
    if (env["REQUEST_METHOD"] == "POST")
      env["CONTENT_LENGTH"] = std::to_string(body.size());
    return handle(
        p, RequestSource::fixed(env, body),
        [this](Context& ctx) {
          called_ = true;
          if (ctx.session)
            seen_login_ = ctx.session->login;
          return Response::page(200, Html("<p>ok</p>"));
        },
        clock_);
  }

  // A user and a live session; returns the session cookie token.
  std::string login(session::Session* out = nullptr) {
    auto a = app::open(config_, clock_);
    EXPECT_TRUE(a.ok());
    auth::UserStore users(a->db, clock_);
    auto u = users.add("alice", "alice@example.org", "", util::SecretBuffer::copy_of("pw"),
                       crypto::KdfParams{8, 1, 1});
    EXPECT_TRUE(u.ok());
    session::SessionStore sessions(a->db, clock_, a->config);
    auto ns = sessions.create(u->id, "127.0.0.1", "UA");
    EXPECT_TRUE(ns.ok());
    if (out)
      *out = ns->session;
    return std::string(ns->token.view());
  }

  util::ManualClock clock_{1'700'000'000};
  std::string seen_login_;

  test::TempDir dir_;
  std::string config_;
  bool called_ = false;
};

}  // namespace

TEST_F(CgiGuard, RunsTheHandlerOverHttps) {
  Response r = call(env());
  EXPECT_EQ(r.status(), 200);
  EXPECT_TRUE(called_);
}

TEST_F(CgiGuard, RefusesPlainHttpUnlessTheConfigAllowsIt) {
  Response r = call(env("GET", false));
  EXPECT_EQ(r.status(), 403);
  EXPECT_FALSE(called_);
  EXPECT_NE(r.body().find("data-page=\"error\""), std::string::npos);
  write_config(true);
  EXPECT_EQ(call(env("GET", false)).status(), 200);
  EXPECT_TRUE(called_);
}

TEST_F(CgiGuard, RefusesOtherMethodsWithAllow) {
  Response r = call(env("DELETE"));
  EXPECT_EQ(r.status(), 405);
  EXPECT_EQ(r.header("Allow"), "GET, POST");
  EXPECT_FALSE(called_);
}

TEST_F(CgiGuard, RefusesCrossSitePosts) {
  auto e = env("POST");
  e["HTTP_ORIGIN"] = "https://evil.example";
  EXPECT_EQ(call(e).status(), 403);
  EXPECT_FALSE(called_);
  e["HTTP_ORIGIN"] = "https://mail.example.org";
  e["HTTP_SEC_FETCH_SITE"] = "cross-site";
  EXPECT_EQ(call(e).status(), 403);
  e["HTTP_SEC_FETCH_SITE"] = "same-site";
  EXPECT_EQ(call(e).status(), 403);
  // A sandboxed frame's opaque origin: "null", and cross-site.
  e["HTTP_ORIGIN"] = "null";
  e["HTTP_SEC_FETCH_SITE"] = "cross-site";
  EXPECT_EQ(call(e).status(), 403);
  // "null" with nothing else to tell where the form came from.
  e.erase("HTTP_SEC_FETCH_SITE");
  EXPECT_EQ(call(e).status(), 403);
  EXPECT_FALSE(called_);
  e["HTTP_ORIGIN"] = "https://mail.example.org";
  e["HTTP_SEC_FETCH_SITE"] = "same-origin";
  EXPECT_EQ(call(e).status(), 200);
  EXPECT_TRUE(called_);
}

// Regression: under our Referrer-Policy no-referrer, Chromium posts our own forms with
// `Origin: null` and `Sec-Fetch-Site: same-origin`; refusing that refused every login.
TEST_F(CgiGuard, AcceptsOriginNullFromOwnPagesUnderNoReferrer) {
  auto e = env("POST");
  e["HTTP_ORIGIN"] = "null";
  e["HTTP_SEC_FETCH_SITE"] = "same-origin";
  EXPECT_EQ(call(e).status(), 200);
  EXPECT_TRUE(called_);
}

TEST_F(CgiGuard, SessionProgramsSendVisitorsToLogin) {
  Response r = call(env(), Access::session);
  EXPECT_EQ(r.status(), 303);
  EXPECT_EQ(r.header("Location"), "/login");
  EXPECT_FALSE(called_);
  Response post = call(env("POST"), Access::session);
  EXPECT_EQ(post.status(), 303);
  EXPECT_FALSE(called_);
  auto e = env();
  e["HTTP_COOKIE"] = "__Host-wmk-session=forged";
  // A session the server does not know: the login page says it has ended.
  EXPECT_EQ(call(e, Access::session).header("Location"), "/login?ended=gone");
  EXPECT_FALSE(called_);
}

TEST_F(CgiGuard, ResumesTheSessionFromItsCookie) {
  std::string token = login();
  auto e = env();
  e["HTTP_COOKIE"] = "other=1; __Host-wmk-session=" + token;
  Response r = call(e, Access::session);
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(seen_login_, "alice");
}

TEST_F(CgiGuard, IdleSessionEndsWithNoticeAndClearedCookie) {
  std::string token = login();
  clock_.advance(std::chrono::seconds(1801));  // default session_idle_timeout 1800
  auto e = env();
  e["HTTP_COOKIE"] = "__Host-wmk-session=" + token;
  Response r = call(e, Access::session);
  EXPECT_EQ(r.status(), 303);
  EXPECT_EQ(r.header("Location"), "/login?ended=expired");
  EXPECT_NE(r.serialize().find("Set-Cookie: __Host-wmk-session=; "), std::string::npos);
  EXPECT_FALSE(called_);
}

TEST_F(CgiGuard, SessionPostsNeedTheSessionsCsrfToken) {
  session::Session s;
  std::string token = login(&s);
  auto e = env("POST");
  e["HTTP_COOKIE"] = "__Host-wmk-session=" + token;
  EXPECT_EQ(call(e, Access::session, {"POST"}, "").status(), 403);
  EXPECT_FALSE(called_);
  EXPECT_EQ(call(e, Access::session, {"POST"}, "csrf=wrong").status(), 403);
  EXPECT_FALSE(called_);
  // The token in the query string does not count.
  auto q = e;
  q["QUERY_STRING"] = "csrf=" + s.csrf_token;
  EXPECT_EQ(call(q, Access::session, {"POST"}, "").status(), 403);
  EXPECT_FALSE(called_);
  EXPECT_EQ(call(e, Access::session, {"POST"}, "csrf=" + s.csrf_token).status(), 200);
  EXPECT_TRUE(called_);
}

TEST_F(CgiGuard, ExceptionsBecomeA500WithoutDetails) {
  Program p{.name = "test", .methods = {"GET"}, .access = Access::anonymous, .secrets = {}};
  Response r = handle(p, RequestSource::fixed(env(), ""), [](Context&) -> Response {
    throw std::runtime_error("database exploded at /secret/path");
  });
  EXPECT_EQ(r.status(), 500);
  EXPECT_NE(r.body().find("data-page=\"error\""), std::string::npos);
  EXPECT_EQ(r.body().find("/secret/path"), std::string::npos);
}

// A database lost in the middle of a request (store::StoreUnavailable, here thrown by
// the handler as the PostgreSQL engine throws it): the 503 page, not a 500, without the
// connection details; a POST's kept fields come back in a form, escaped.
TEST_F(CgiGuard, ADatabaseLostMidRequestIsA503ThatGivesTheFormBack) {
  Program p{.name = "test",
            .methods = {"GET", "POST"},
            .access = Access::anonymous,
            .secrets = {.fields = {"password"}, .cookies = {}},
            .kept_when_unavailable = {{"csrf"},
                                      {"subject", KeptField::Shown::line, "Subject"},
                                      {"body", KeptField::Shown::text, "Message"}}};
  auto lost = [](Context&) -> Response {
    throw store::StoreUnavailable(
        "the database at dbname=secretdb host=/secret/socket is unreachable: gone");
  };
  Response get = handle(p, RequestSource::fixed(env(), ""), lost, clock_);
  EXPECT_EQ(get.status(), 503);
  EXPECT_NE(get.body().find("data-error=\"unavailable\""), std::string::npos);
  EXPECT_NE(get.body().find("was not completed"), std::string::npos);
  EXPECT_EQ(get.body().find("secretdb"), std::string::npos);
  EXPECT_EQ(get.body().find("/secret/socket"), std::string::npos);
  EXPECT_EQ(get.body().find("<form method=\"post\" action=\"/test\""), std::string::npos);

  auto e = env("POST");
  e["HTTP_ORIGIN"] = "https://mail.example.org";
  e["REQUEST_URI"] = "/test";
  const std::string body =
      "csrf=tok&subject=%3Cb%3EHi%3C%2Fb%3E&body=line+one%0D%0A%3Cscript%3E&password=hunter2";
  e["CONTENT_LENGTH"] = std::to_string(body.size());
  Response post = handle(p, RequestSource::fixed(e, body), lost, clock_);
  EXPECT_EQ(post.status(), 503);
  const std::string& html = post.body();
  EXPECT_NE(html.find("action=\"/test\""), std::string::npos) << html;
  EXPECT_NE(html.find("name=\"csrf\" value=\"tok\""), std::string::npos) << html;
  EXPECT_NE(html.find("value=\"&lt;b&gt;Hi&lt;/b&gt;\""), std::string::npos) << html;
  EXPECT_NE(html.find("line one"), std::string::npos) << html;
  EXPECT_NE(html.find("&lt;script&gt;</textarea>"), std::string::npos) << html;
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("hunter2"), std::string::npos);
  EXPECT_EQ(html.find("secretdb"), std::string::npos);
}

// Lost at COMMIT: the page does not claim the request was undone, since it may have
// been saved.
TEST_F(CgiGuard, ADatabaseLostAtCommitSaysItIsNotKnownWhetherTheRequestWasDone) {
  Program p{.name = "test",
            .methods = {"GET"},
            .access = Access::anonymous,
            .secrets = {.fields = {}, .cookies = {}},
            .kept_when_unavailable = {}};
  auto lost = [](Context&) -> Response {
    throw store::StoreOutcomeUnknown("the database at dbname=secretdb is unreachable: gone");
  };
  Response r = handle(p, RequestSource::fixed(env(), ""), lost, clock_);
  EXPECT_EQ(r.status(), 503);
  EXPECT_NE(r.body().find("cannot be said whether it was"), std::string::npos) << r.body();
  EXPECT_EQ(r.body().find("was undone"), std::string::npos) << r.body();
  EXPECT_EQ(r.body().find("secretdb"), std::string::npos);
}

TEST_F(CgiGuard, MissingConfigIsA503WithoutDetails) {
  auto e = env();
  e["WEBMAILKEY_CONFIG"] = dir_.path() + "/nope.conf";
  Response r = call(e);
  EXPECT_EQ(r.status(), 503);
  EXPECT_EQ(r.body().find("nope.conf"), std::string::npos);
  EXPECT_FALSE(called_);
}

TEST(CgiTokens, EqualOnlyWhenSameNonEmpty) {
  EXPECT_TRUE(tokens_equal("abc", "abc"));
  EXPECT_FALSE(tokens_equal("abc", "abd"));
  EXPECT_FALSE(tokens_equal("abc", "ab"));
  EXPECT_FALSE(tokens_equal("", ""));
}

}  // namespace wmk::cgi

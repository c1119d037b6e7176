#include "cgi/common/guard.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "core/app/app.h"
#include "core/util/fs.h"
#include "tests/unit/test_util.h"

namespace wmk::cgi {

namespace {

class CgiGuard : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = dir_.path() + "/webmailkey.conf";
    write_config(false);
    ASSERT_TRUE(app::init(config_, std::nullopt).ok());
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
                std::vector<std::string_view> methods = {"GET", "POST"}) {
    called_ = false;
    Program p{.name = "test", .methods = methods, .access = access, .secrets = {}};
    return handle(p, RequestSource::fixed(e, ""), [this](Context&) {
      called_ = true;
      return Response::page(200, Html("<p>ok</p>"));
    });
  }

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
  e["HTTP_ORIGIN"] = "null";
  e["HTTP_SEC_FETCH_SITE"] = "same-origin";
  EXPECT_EQ(call(e).status(), 403);
  e["HTTP_ORIGIN"] = "https://mail.example.org";
  EXPECT_EQ(call(e).status(), 200);
  EXPECT_TRUE(called_);
}

TEST_F(CgiGuard, SessionProgramsSendVisitorsToLogin) {
  Response r = call(env(), Access::session);
  EXPECT_EQ(r.status(), 303);
  EXPECT_EQ(r.header("Location"), "/login");
  EXPECT_FALSE(called_);
  EXPECT_EQ(call(env("POST"), Access::session).status(), 403);
  EXPECT_FALSE(called_);
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

#include "cgi/common/request.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace wmk::cgi {

namespace {

std::map<std::string, std::string> post_env(
    const std::string& body, const std::string& type = "application/x-www-form-urlencoded") {
  return {{"REQUEST_METHOD", "POST"},
          {"CONTENT_TYPE", type},
          {"CONTENT_LENGTH", std::to_string(body.size())},
          {"REQUEST_URI", "/unlock?id=q1"},
          {"QUERY_STRING", "id=q1"},
          {"HTTPS", "on"},
          {"REMOTE_ADDR", "192.0.2.7"},
          {"HTTP_USER_AGENT", "Test/1.0"}};
}

}  // namespace

TEST(CgiRequest, GetReadsQueryFieldsCookiesAndConnection) {
  auto r = Request::parse(RequestSource::fixed({{"REQUEST_METHOD", "GET"},
                                                {"QUERY_STRING", "folder=Sent&page=2&x=a+b%26c"},
                                                {"REQUEST_URI", "/inbox?folder=Sent&page=2"},
                                                {"HTTP_COOKIE", "a=1; __Host-wmk-session=s3cr"},
                                                {"REMOTE_ADDR", "203.0.113.5"},
                                                {"HTTP_USER_AGENT", "UA"},
                                                {"HTTPS", "on"}},
                                               ""));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->method(), "GET");
  EXPECT_EQ(r->path(), "/inbox");
  EXPECT_EQ(r->field("folder"), "Sent");
  EXPECT_EQ(r->field("page"), "2");
  EXPECT_EQ(r->field("x"), "a b&c");
  EXPECT_EQ(r->field("nope"), std::nullopt);
  EXPECT_EQ(r->cookie("a"), "1");
  EXPECT_EQ(r->cookie("__Host-wmk-session"), "s3cr");
  EXPECT_EQ(r->client_addr(), "203.0.113.5");
  EXPECT_EQ(r->user_agent(), "UA");
  EXPECT_TRUE(r->https());
}

TEST(CgiRequest, HttpsNeedsTheServersFlag) {
  auto r = Request::parse(RequestSource::fixed({{"REQUEST_METHOD", "GET"}}, ""));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->https());
}

TEST(CgiRequest, PostFieldsComeFromTheBodyNotTheQuery) {
  std::string body = "csrf=tok&id=b1&id=b2";
  auto r = Request::parse(RequestSource::fixed(post_env(body), body));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->is_post());
  EXPECT_EQ(r->field("csrf"), "tok");
  EXPECT_EQ(r->field("id"), "b1");
  EXPECT_EQ(r->fields("id"), (std::vector<std::string>{"b1", "b2"}));
  EXPECT_EQ(r->query("id"), "q1");
  // A token in the URL does not count as a form field.
  std::string body2 = "a=1";
  auto env = post_env(body2);
  env["QUERY_STRING"] = "csrf=fromurl";
  auto r2 = Request::parse(RequestSource::fixed(env, body2));
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->field("csrf"), std::nullopt);
}

TEST(CgiRequest, SecretFieldIsDecodedIntoSecretBufferAndHiddenFromOtherAccessors) {
  std::string body = "user=alice&pass%77ord=p%40ss+w%C3%B6rd%26&csrf=t";
  auto r = Request::parse(RequestSource::fixed(post_env(body), body),
                          SecretNames{.fields = {"password"}, .cookies = {}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->field("user"), "alice");
  EXPECT_EQ(r->field("csrf"), "t");
  EXPECT_EQ(r->field("password"), std::nullopt);
  auto secret = r->take_secret("password");
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(secret->view(), "p@ss w\xC3\xB6rd&");
  EXPECT_FALSE(r->take_secret("password").has_value()) << "taken once";
  EXPECT_FALSE(r->take_secret("user").has_value()) << "not declared secret";
}

TEST(CgiRequest, SecretFieldsRefuseMultipartBodies) {
  std::string body =
      "--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nx\r\n--b--\r\n";
  auto r =
      Request::parse(RequestSource::fixed(post_env(body, "multipart/form-data; boundary=b"), body),
                     SecretNames{.fields = {"password"}, .cookies = {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::unsupported);
}

TEST(CgiRequest, SecretCookieIsTakenOutOfTheCookieHeader) {
  auto env = std::map<std::string, std::string>{
      {"REQUEST_METHOD", "GET"},
      {"HTTP_COOKIE", "__Host-wmk-session=sess; __Host-wmk-grant=GRANTSECRET; z=9"}};
  auto r = Request::parse(RequestSource::fixed(env, ""),
                          SecretNames{.fields = {}, .cookies = {"__Host-wmk-grant"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cookie("__Host-wmk-session"), "sess");
  EXPECT_EQ(r->cookie("z"), "9");
  EXPECT_EQ(r->cookie("__Host-wmk-grant"), std::nullopt);
  EXPECT_EQ(r->env("HTTP_COOKIE")->find("GRANTSECRET"), std::string::npos);
  auto g = r->take_secret_cookie("__Host-wmk-grant");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->view(), "GRANTSECRET");
}

TEST(CgiRequest, MultipartUploadsAreParsed) {
  std::string body =
      "------WebKitFormBoundaryX\r\n"
      "Content-Disposition: form-data; name=\"subject\"\r\n\r\n"
      "Hello\r\n"
      "------WebKitFormBoundaryX\r\n"
      "Content-Disposition: form-data; name=\"files\"; filename=\"C:\\\\tmp\\\\a.bin\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n"
      "\x01\x02\x03\r\n"
      "------WebKitFormBoundaryX--\r\n";
  auto r = Request::parse(RequestSource::fixed(
      post_env(body, "multipart/form-data; boundary=----WebKitFormBoundaryX"), body));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->field("subject"), "Hello");
  ASSERT_EQ(r->files().size(), 1u);
  EXPECT_EQ(r->files()[0].field, "files");
  EXPECT_EQ(r->files()[0].content_type, "application/octet-stream");
  EXPECT_EQ(r->files()[0].data, "\x01\x02\x03");
}

TEST(CgiRequest, RefusesOversizedAndShortBodies) {
  std::string body = "a=1";
  RequestLimits small;
  small.max_body_bytes = 2;
  auto big = Request::parse(RequestSource::fixed(post_env(body), body), {}, small);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.code(), Errc::invalid_argument);
  auto env = post_env(body);
  env["CONTENT_LENGTH"] = "10";
  auto shorter = Request::parse(RequestSource::fixed(env, body));
  ASSERT_FALSE(shorter.ok());
  EXPECT_EQ(shorter.code(), Errc::io);
  env["CONTENT_LENGTH"] = "ten";
  EXPECT_EQ(Request::parse(RequestSource::fixed(env, body)).code(), Errc::invalid_argument);
}

TEST(CgiRequest, ParseUrlencodedHandlesEdgeCases) {
  auto p = parse_urlencoded("a=1&&b&c=%zz&d=%4&e=%41%42+");
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0], (std::pair<std::string, std::string>{"a", "1"}));
  EXPECT_EQ(p[1], (std::pair<std::string, std::string>{"b", ""}));
  EXPECT_EQ(p[2].second, "%zz");
  EXPECT_EQ(p[3].second, "%4");
  EXPECT_EQ(p[4].second, "AB ");
}

}  // namespace wmk::cgi

namespace wmk::cgi {

// Regression: the secret cookie must not stay readable in the process environment.
TEST(CgiRequest, ProcessSourceWipesTheCookieVariableItTook) {
  ::setenv("REQUEST_METHOD", "GET", 1);
  ::setenv("HTTP_COOKIE", "a=1; __Host-wmk-session=TOKENVALUE", 1);
  auto r = Request::parse(RequestSource::process(),
                          SecretNames{.fields = {}, .cookies = {"__Host-wmk-session"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::string(std::getenv("HTTP_COOKIE")).find("TOKENVALUE"), std::string::npos);
  EXPECT_EQ(r->cookie("a"), "1");
  EXPECT_EQ(r->take_secret_cookie("__Host-wmk-session")->view(), "TOKENVALUE");
  ::unsetenv("HTTP_COOKIE");
  ::unsetenv("REQUEST_METHOD");
}

}  // namespace wmk::cgi

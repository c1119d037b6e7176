#include "cgi/common/response.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace wmk::cgi {

TEST(CgiResponse, EveryResponseCarriesTheSecurityHeaders) {
  std::vector<Response> all;
  all.push_back(Response(200));
  all.push_back(Response::redirect("/inbox"));
  all.push_back(Response::download("x", "application/pdf", "a.pdf"));
  for (const auto& r : all) {
    std::string out = r.serialize();
    EXPECT_NE(out.find("Content-Security-Policy: default-src 'none'; style-src 'self'; img-src "
                       "'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
              std::string::npos);
    EXPECT_NE(out.find("Strict-Transport-Security: max-age=31536000\r\n"), std::string::npos);
    EXPECT_NE(out.find("Referrer-Policy: no-referrer\r\n"), std::string::npos);
    EXPECT_NE(out.find("X-Content-Type-Options: nosniff\r\n"), std::string::npos);
    EXPECT_NE(out.find("X-Frame-Options: DENY\r\n"), std::string::npos);
    EXPECT_NE(out.find("Cache-Control: no-store\r\n"), std::string::npos);
  }
}

TEST(CgiResponse, SerializesStatusHeadersAndBodyInCgiForm) {
  Response r = Response::page(401, Html("<p>no</p>"));
  r.extend_csp("frame-src 'self'");
  std::string out = r.serialize();
  EXPECT_EQ(out.rfind("Status: 401 Unauthorized\r\n", 0), 0u);
  EXPECT_NE(out.find("Content-Type: text/html; charset=utf-8\r\n"), std::string::npos);
  EXPECT_NE(out.find("base-uri 'none'; frame-src 'self'\r\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 13), "\r\n\r\n<p>no</p>");
}

TEST(CgiResponse, RedirectIsSeeOtherToALocalPathOnly) {
  Response r = Response::redirect("/login");
  EXPECT_EQ(r.status(), 303);
  EXPECT_EQ(r.header("location"), "/login");
  EXPECT_THROW(Response::redirect("https://evil.example/"), std::invalid_argument);
  EXPECT_THROW(Response::redirect("//evil.example/"), std::invalid_argument);
  EXPECT_THROW(Response::redirect("/\\evil.example/"), std::invalid_argument);
}

TEST(CgiResponse, HeaderInjectionIsABug) {
  Response r;
  EXPECT_THROW(r.set_header("X-A", "v\r\nSet-Cookie: x=y"), std::invalid_argument);
  EXPECT_THROW(r.set_header("X-A\n", "v"), std::invalid_argument);
  EXPECT_THROW(r.set_header("X:A", "v"), std::invalid_argument);
}

TEST(CgiCookie, HostPrefixedSecureHttpOnlyStrictRootPath) {
  Response r;
  r.add_cookie(SetCookie::session("__Host-wmk-session", "abc_DEF-123"));
  r.add_cookie(SetCookie::deletion("__Host-wmk-grant"));
  r.add_cookie(SetCookie::persistent("__Host-x", "v", std::chrono::seconds(60)));
  std::string out = r.serialize();
  EXPECT_NE(out.find("Set-Cookie: __Host-wmk-session=abc_DEF-123; Secure; HttpOnly; "
                     "SameSite=Strict; Path=/\r\n"),
            std::string::npos);
  EXPECT_NE(out.find("Set-Cookie: __Host-wmk-grant=; Secure; HttpOnly; SameSite=Strict; "
                     "Path=/; Max-Age=0\r\n"),
            std::string::npos);
  EXPECT_NE(out.find("__Host-x=v; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=60\r\n"),
            std::string::npos);
  EXPECT_EQ(out.find("Domain"), std::string::npos);
}

TEST(CgiCookie, RefusesNamesWithoutHostPrefixAndUnsafeValues) {
  EXPECT_THROW(SetCookie::session("session", "x"), std::invalid_argument);
  EXPECT_THROW(SetCookie::session("__Secure-x", "x"), std::invalid_argument);
  EXPECT_THROW(SetCookie::session("__Host-", "x"), std::invalid_argument);
  EXPECT_THROW(SetCookie::session("__Host-x", "a;b"), std::invalid_argument);
  EXPECT_THROW(SetCookie::session("__Host-x", "a b"), std::invalid_argument);
  EXPECT_THROW(SetCookie::session("__Host-x=y", "a"), std::invalid_argument);
}

TEST(CgiResponse, DownloadIsAnAttachmentWithASafeFilename) {
  Response r = Response::download("PDF", "application/pdf", "../../etc/pa\"ss;wd\r\n.pdf");
  EXPECT_EQ(r.header("Content-Type"), "application/pdf");
  auto cd = r.header("Content-Disposition");
  ASSERT_TRUE(cd);
  EXPECT_EQ(cd->rfind("attachment; ", 0), 0u);
  EXPECT_EQ(cd->find('\r'), std::string::npos);
  EXPECT_EQ(cd->find(".."), std::string::npos);
  EXPECT_EQ(*cd, "attachment; filename=\"pa_ss_wd__.pdf\"; filename*=UTF-8''pa_ss_wd__.pdf");
  EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
  EXPECT_NE(r.header("Content-Security-Policy")->find("; sandbox"), std::string::npos);
}

TEST(CgiResponse, SafeFilenameKeepsUnicodeAndFallsBack) {
  EXPECT_EQ(safe_filename("Bericht Grüße.txt"), "Bericht Grüße.txt");
  EXPECT_EQ(content_disposition_attachment("Grüße.txt"),
            "attachment; filename=\"Gr__e.txt\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe.txt");
  EXPECT_EQ(safe_filename(""), "attachment");
  EXPECT_EQ(safe_filename("..."), "attachment");
  EXPECT_EQ(safe_filename(".htaccess"), "htaccess");
  EXPECT_EQ(safe_filename("C:\\Users\\x\\evil.exe"), "evil.exe");
  EXPECT_LE(safe_filename(std::string(500, 'a')).size(), 200u);
}

}  // namespace wmk::cgi

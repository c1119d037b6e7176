#include "cgi/common/html.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "cgi/common/layout.h"

namespace wmk::cgi {

TEST(CgiHtml, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(escape(R"(<script>alert("x" & 'y')</script>)"),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;");
  EXPECT_EQ(text("a < b").str(), "a &lt; b");
}

TEST(CgiHtml, KeepsValidUtf8AndReplacesInvalidBytesAndControls) {
  EXPECT_EQ(escape("Grüße — 日本 😀"), "Grüße — 日本 😀");
  // Lone continuation byte, overlong '<' (0xC0 0xBC), truncated sequence, NUL, ESC.
  EXPECT_EQ(escape("a\x80"
                   "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(escape("\xC0\xBC"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(escape("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(escape(std::string("x\0y", 3)), "x\xEF\xBF\xBDy");
  EXPECT_EQ(escape("\x1b[31m"), "\xEF\xBF\xBD[31m");
  EXPECT_EQ(escape("tab\tnl\n"), "tab\tnl\n");
  // UTF-16 surrogates encoded in UTF-8 are invalid.
  EXPECT_EQ(escape("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(CgiHtml, FillEscapesTextSlotsAndInsertsHtmlSlots) {
  Html bold("<b>trusted</b>");
  Html out = fill(R"(<p title="{{t}}">{{body}} {{b}}</p>)",
                  {{"t", "\" onmouseover=\"x"}, {"body", "<img src=x>"}, {"b", bold}});
  EXPECT_EQ(out.str(),
            "<p title=\"&quot; onmouseover=&quot;x\">&lt;img src=x&gt; <b>trusted</b></p>");
}

TEST(CgiHtml, FillRefusesMistakesInTheTemplate) {
  EXPECT_THROW(fill("<p>{{a}}</p>", {}), std::logic_error);                   // missing
  EXPECT_THROW(fill("<p></p>", {{"a", "x"}}), std::logic_error);              // unused
  EXPECT_THROW(fill("<a href={{u}}>x</a>", {{"u", "y"}}), std::logic_error);  // unquoted
  EXPECT_THROW(fill("<p>{{a</p>", {{"a", "x"}}), std::logic_error);           // unclosed
  EXPECT_THROW(fill("{{a}}", {{"a", "x"}, {"a", "y"}}), std::logic_error);    // twice
}

TEST(CgiHtml, UrlPercentEncodesQueryValues) {
  EXPECT_EQ(url("/message", {{"id", "17.M1:2,S"}, {"folder", "a&b=c d"}}),
            "/message?id=17.M1%3A2%2CS&folder=a%26b%3Dc%20d");
  EXPECT_EQ(url("/inbox"), "/inbox");
}

TEST(CgiHtml, AttrAndCsrfFieldEscapeValues) {
  EXPECT_EQ(attr("value", "a\"b").str(), " value=\"a&quot;b\"");
  EXPECT_EQ(csrf_field("t<k").str(), R"(<input type="hidden" name="csrf" value="t&lt;k">)");
}

TEST(CgiLayout, PageCarriesDataPageViewportStylesheetAndEscapedUser) {
  Page p;
  p.name = "inbox";
  p.title = "Inbox <1>";
  p.viewer = Viewer{"<evil>", "tok"};
  p.nav = Nav::inbox;
  p.notice = Notice{Notice::Kind::error, "bad & wrong"};
  p.main = Html("<h1>Inbox</h1>");
  std::string s = render(p).str();
  EXPECT_EQ(s.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(s.find(R"(<body data-page="inbox">)"), std::string::npos);
  EXPECT_NE(s.find(R"(<meta name="viewport" content="width=device-width,initial-scale=1">)"),
            std::string::npos);
  EXPECT_NE(s.find(R"(<link rel="stylesheet" href="/static/style.css">)"), std::string::npos);
  EXPECT_NE(s.find("<title>Inbox &lt;1&gt; — webmailkey</title>"), std::string::npos);
  EXPECT_NE(s.find("&lt;evil&gt;"), std::string::npos);
  EXPECT_EQ(s.find("<evil>"), std::string::npos);
  EXPECT_NE(s.find(R"(<form method="post" action="/logout")"), std::string::npos);
  EXPECT_NE(s.find(R"(name="csrf" value="tok")"), std::string::npos);
  EXPECT_NE(s.find(R"(<a href="/inbox" aria-current="page">Inbox</a>)"), std::string::npos);
  EXPECT_NE(s.find("bad &amp; wrong"), std::string::npos);
  EXPECT_NE(s.find("role=\"alert\""), std::string::npos);
}

TEST(CgiLayout, LoggedOutPageHasNoNavigationOrLogout) {
  std::string s = render(login_page("tok", "al\"ice")).str();
  EXPECT_NE(s.find(R"(data-page="login")"), std::string::npos);
  EXPECT_EQ(s.find("/logout"), std::string::npos);
  EXPECT_NE(s.find(R"(value="al&quot;ice")"), std::string::npos);
  EXPECT_NE(s.find(R"(type="password")"), std::string::npos);
}

TEST(CgiLayout, OnlyPagesWithTheKeyBannerLoadTheBannerScript) {
  Page p;
  p.name = "inbox";
  p.title = "Inbox";
  p.main = Html("<h1>Inbox</h1>");
  Response plain = page_response(200, p);
  EXPECT_EQ(plain.body().find("<script"), std::string::npos);
  EXPECT_EQ(plain.header("Content-Security-Policy")->find("script-src"), std::string::npos);
  p.key_banner = Html("Key unlocked");
  Response banner = page_response(200, p);
  EXPECT_NE(banner.body().find(R"(<script src="/static/banner.js" defer></script>)"),
            std::string::npos);
  auto csp = *banner.header("Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_EQ(csp.rfind("default-src 'none'", 0), 0u) << csp;
}

TEST(CgiLayout, ErrorResponseHasStatusAndErrorPage) {
  Response r = error_response(404, "No such <message>.");
  EXPECT_EQ(r.status(), 404);
  EXPECT_NE(r.body().find(R"(data-page="error")"), std::string::npos);
  EXPECT_NE(r.body().find("404 Not Found"), std::string::npos);
  EXPECT_NE(r.body().find("No such &lt;message&gt;."), std::string::npos);
}

}  // namespace wmk::cgi

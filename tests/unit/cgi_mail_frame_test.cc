#include "cgi/common/mail_frame.h"

#include <gtest/gtest.h>

#include <string>

#include "core/mail/sanitize.h"

namespace wmk::cgi {

namespace {

// The value of attribute name in the first tag of markup, with the five references
// escape() makes turned back (what a browser's attribute parser does).
std::string attribute(const std::string& markup, const std::string& name) {
  auto start = markup.find(" " + name + "=\"");
  if (start == std::string::npos)
    return "<missing>";
  start += name.size() + 3;
  auto end = markup.find('"', start);
  std::string raw = markup.substr(start, end - start);
  std::string out;
  for (std::size_t i = 0; i < raw.size();) {
    if (raw.compare(i, 4, "&lt;") == 0) {
      out += '<';
      i += 4;
    } else if (raw.compare(i, 4, "&gt;") == 0) {
      out += '>';
      i += 4;
    } else if (raw.compare(i, 6, "&quot;") == 0) {
      out += '"';
      i += 6;
    } else if (raw.compare(i, 5, "&#39;") == 0) {
      out += '\'';
      i += 5;
    } else if (raw.compare(i, 5, "&amp;") == 0) {
      out += '&';
      i += 5;
    } else {
      out += raw[i++];
    }
  }
  return out;
}

const char* kHostile =
    R"x(<p onclick="alert(1)">Hi <b>there</b> &amp; "you"</p><script>alert(2)</script>)x"
    R"x(<img src="https://evil.example/x.gif"><a href="https://example.org/?a=1&b=2">link</a>)x"
    R"x(<iframe srcdoc="<script>alert(3)</script>"></iframe>)x";

}  // namespace

TEST(CgiMailFrame, IsASandboxedFrameWithoutScriptsSameOriginOrForms) {
  std::string out = html_mail_frame(kHostile).str();
  EXPECT_EQ(out.rfind("<iframe ", 0), 0u) << out;
  std::string sandbox = attribute(out, "sandbox");
  EXPECT_EQ(sandbox, "allow-popups allow-popups-to-escape-sandbox");
  for (const char* bad : {"allow-scripts", "allow-same-origin", "allow-forms", "allow-top"})
    EXPECT_EQ(sandbox.find(bad), std::string::npos) << bad;
  EXPECT_EQ(attribute(out, "referrerpolicy"), "no-referrer");
  EXPECT_NE(attribute(out, "title"), "<missing>");
}

TEST(CgiMailFrame, SrcdocIsExactlyTheSanitizedDocumentEscapedAsAnAttribute) {
  std::string out = html_mail_frame(kHostile).str();
  // Nothing of the mail appears as markup of the page: only inside the quoted value.
  auto open_end = out.find('>');
  EXPECT_EQ(open_end, out.find("></iframe>"));
  EXPECT_EQ(out.substr(open_end), "></iframe>");
  std::string doc = attribute(out, "srcdoc");
  std::string body = mail::sanitize_html(kHostile);
  EXPECT_NE(doc.find("<body>" + body + "</body>"), std::string::npos) << doc;
  EXPECT_EQ(doc.find("<script"), std::string::npos);
  EXPECT_EQ(doc.find("onclick"), std::string::npos);
  EXPECT_EQ(doc.find("evil.example"), std::string::npos);
  EXPECT_NE(doc.find("https://example.org/?a=1&amp;b=2"), std::string::npos) << doc;
  EXPECT_NE(doc.find(R"(<link rel="stylesheet" href="/static/mail.css">)"), std::string::npos);
}

TEST(CgiMailFrame, AsTextIsEscapedPlainText) {
  std::string out = html_mail_as_text(kHostile).str();
  EXPECT_EQ(out.rfind("<pre class=\"body\">", 0), 0u) << out;
  EXPECT_EQ(out.find("<p "), std::string::npos);
  EXPECT_EQ(out.find("<b>"), std::string::npos);
  EXPECT_EQ(out.find("<script"), std::string::npos);
  EXPECT_NE(out.find("Hi there &amp; &quot;you&quot;"), std::string::npos) << out;
  EXPECT_EQ(out.find("alert"), std::string::npos) << out;
}

}  // namespace wmk::cgi

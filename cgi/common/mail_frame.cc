#include "cgi/common/mail_frame.h"

#include <string>

#include "core/mail/sanitize.h"

namespace wmk::cgi {

Html html_mail_frame(std::string_view html_source) {
  // The sanitizer's output goes in unchanged; the whole document is then escaped as an
  // attribute value, which the browser's srcdoc parser turns back into exactly it.
  std::string document =
      "<!doctype html><html><head><meta charset=\"utf-8\">"
      "<link rel=\"stylesheet\" href=\"/static/mail.css\"></head><body>" +
      mail::sanitize_html(html_source) + "</body></html>";
  return fill(
      R"(<iframe class="mail-body" title="Message content" sandbox="{{sandbox}}" referrerpolicy="no-referrer" srcdoc="{{doc}}"></iframe>)",
      {{"sandbox", kMailFrameSandbox}, {"doc", document}});
}

Html html_mail_as_text(std::string_view html_source) {
  return fill(R"(<pre class="body">{{text}}</pre>)", {{"text", mail::html_to_text(html_source)}});
}

}  // namespace wmk::cgi

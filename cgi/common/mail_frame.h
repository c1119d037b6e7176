#pragma once
// The body of an HTML mail as a page shows it: the sanitizer's output (core/mail/
// sanitize.h) as the document of a sandboxed <iframe srcdoc>. The sandbox has neither
// allow-scripts nor allow-same-origin nor allow-forms: nothing in the mail can run a
// script, reach this origin's cookies or DOM, submit a form, or navigate the page; its
// links may only open a new tab. The frame also inherits the page's
// Content-Security-Policy (default-src 'none'), so nothing it names is fetched but our
// own stylesheet. Indicators (encrypted, signed) are drawn by the page, outside it.

#include <string_view>

#include "cgi/common/html.h"

namespace wmk::cgi {

// The sandbox tokens of the mail frame: links open in a new tab, nothing else.
inline constexpr std::string_view kMailFrameSandbox = "allow-popups allow-popups-to-escape-sandbox";

// An <iframe class="mail-body" sandbox=... srcdoc="..."> holding html_source
// sanitized (mail::sanitize_html), as a whole document with /static/mail.css. Never
// fails; HTML with nothing showable gives an empty frame.
Html html_mail_frame(std::string_view html_source);

// html_source as plain text (mail::html_to_text) in <pre class="body">: the "show as
// text" view.
Html html_mail_as_text(std::string_view html_source);

}  // namespace wmk::cgi

#pragma once
// HTML mail made safe to show, or turned into plain text.
//
// Both functions parse the HTML with gumbo (a real HTML5 parser, building the tree the
// HTML5 parsing algorithm defines) and walk that tree. Nothing from the source text is ever
// copied to the output: elements and attributes come from fixed allow-lists, and every
// text and attribute value is escaped here. What is not allowed is dropped:
// scripts, styles, frames, forms, plugins, SVG/MathML (with their content), every
// event handler, `style`, `class` and `id`, every URL except `a href` with http, https
// or mailto, and every image (remote content is never loaded: an image becomes the
// text "[image]").
//
// sanitize_html must be the LAST step before output: pass its result straight to the
// page, which puts it in a sandboxed iframe (srcdoc) or in a separate response under a
// strict Content-Security-Policy. Do not edit, concatenate into other markup, or
// re-parse and re-serialize its output with anything else; do not run it on text
// that is later decoded (charset, transfer encoding) again.
//
// The parser runs in a child process under a CPU limit: gumbo 0.10.1 aborts on some
// inputs, and a message must not be able to kill or stall the page showing it. The
// child's output is accepted only if is_sanitized_html() holds for it; otherwise the
// result is the source as escaped text in a <pre> (and html_to_text gives the source).
//
// Resource limits (hostile mail is crafted to exhaust a parser): input past
// kMaxHtmlInputBytes is cut off; start tags that would nest deeper than
// kMaxHtmlNesting, tags past kMaxHtmlTags and attributes past kMaxHtmlAttributes in a
// tag are removed before parsing (text stays); the output nests at most
// kMaxHtmlOutputDepth elements.

#include <cstddef>
#include <string>
#include <string_view>

namespace wmk::mail {

inline constexpr std::size_t kMaxHtmlInputBytes = std::size_t{8} << 20;
inline constexpr int kMaxHtmlNesting = 256;
inline constexpr std::size_t kMaxHtmlTags = 200'000;
inline constexpr std::size_t kMaxHtmlAttributes = 64;  // per tag
inline constexpr int kMaxHtmlOutputDepth = 200;

// An HTML fragment (body content, no <html>/<head>/<body>) holding only allow-listed
// elements and attributes, every text and value escaped, valid UTF-8. Links get
// rel="noopener noreferrer" and target="_blank". Never fails: input that is not HTML
// comes out as escaped text, input with nothing showable as "", and input the parser
// fails on as "<pre>" + the escaped source + "</pre>". Forks once (about 1 ms).
std::string sanitize_html(std::string_view html);

// True if html has the form sanitize_html writes: only allow-listed elements and
// attributes, double-quoted escaped values, hrefs sanitize_html would keep, escaped
// text, valid UTF-8. A cheap check (no HTML parser) for callers that want to assert
// what they pass to the page.
bool is_sanitized_html(std::string_view html);

// The text of an HTML body for a plain-text view: valid UTF-8 with LF line ends, no
// control characters but LF and TAB; block elements start new lines, list items "- ",
// quotes "> ", links "text <url>" (only http, https and mailto URLs are shown), images
// "[image]". Never fails (the source, cleaned of control characters, if the parser
// fails). Forks once. The result is text: escape it when putting it into HTML.
std::string html_to_text(std::string_view html);

namespace detail {
// What the child of sanitize_html / html_to_text runs, in this process: no child, no
// CPU limit, no check of the output. For the fuzz target only, whose coverage does not
// cross a fork; never for mail.
std::string sanitize_html_in_process(std::string_view html);
std::string html_to_text_in_process(std::string_view html);
#ifdef WEBMAILKEY_FUZZING
// Fuzz builds only (CMake's WEBMAILKEY_FUZZ): from now on sanitize_html and
// html_to_text run the parse in this process, without the child, for the HTML for
// which in_process returns true (the mime target: every part but the CDATA that
// trips gumbo's assertion), so that a fuzz target that meets HTML in passing does not
// fork per input. Their checks of the output stay.
void set_in_process_for_fuzzing(bool (*in_process)(std::string_view html));
#endif
}  // namespace detail

}  // namespace wmk::mail

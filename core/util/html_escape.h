#pragma once
// Escaping text for HTML element content and double- or single-quoted attribute values.

#include <string>
#include <string_view>

namespace wmk::util {

// Appends the code point cp to out as UTF-8, with & < > " ' as character references.
// Escaping '<' and '>' in attribute values too keeps the output one meaning under
// every parser state (the mXSS lesson). Never fails.
void append_html_escaped(std::string& out, char32_t cp);

// raw with & < > " ' replaced by character references, invalid UTF-8 and control
// characters (other than tab, newline, carriage return) replaced by U+FFFD. Safe in
// element content and in quoted attribute values. Never fails.
std::string html_escape(std::string_view raw);

}  // namespace wmk::util

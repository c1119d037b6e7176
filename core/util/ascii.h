#pragma once
// ASCII-only text helpers for protocol tokens (header names, MIME types, schemes,
// addresses) that compare case-insensitively whatever the process locale.

#include <string>
#include <string_view>

namespace wmk::util {

// c with A-Z turned into a-z; any other byte unchanged. Never fails.
constexpr char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// s with A-Z turned into a-z; any other byte (UTF-8 included) unchanged. Never fails.
std::string ascii_lower(std::string_view s);

// s without its leading and trailing spaces and tabs (header and cookie blanks).
std::string_view trim_blanks(std::string_view s);

// s without its leading and trailing spaces, tabs, CRs and LFs (folded header values).
std::string_view trim_whitespace(std::string_view s);

}  // namespace wmk::util

#pragma once
// Reading and writing UTF-8 one code point at a time, invalid input made visible.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace wmk::util {

inline constexpr char32_t kReplacementChar = 0xfffd;

// The code point at s[i] (i < s.size()) and its length in bytes. An invalid, overlong
// or truncated sequence, a surrogate or a value above U+10FFFF counts as one byte and
// decodes to U+FFFD. Never fails.
std::pair<char32_t, std::size_t> next_code_point(std::string_view s, std::size_t i);

// True if s is valid UTF-8 (no overlong form, surrogate or value above U+10FFFF).
bool valid_utf8(std::string_view s);

// Appends cp (at most U+10FFFF) to out as UTF-8.
void append_utf8(std::string& out, char32_t cp);

}  // namespace wmk::util

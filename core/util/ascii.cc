#include "core/util/ascii.h"

namespace wmk::util {

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = ascii_lower(c);
  return out;
}

namespace {

template <class IsSpace>
std::string_view trim_if(std::string_view s, IsSpace is_space) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view trim_blanks(std::string_view s) {
  return trim_if(s, [](char c) { return c == ' ' || c == '\t'; });
}

std::string_view trim_whitespace(std::string_view s) {
  return trim_if(s, [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

}  // namespace wmk::util

#include "core/util/timefmt.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <optional>

namespace wmk::util {

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool to_int(std::string_view s, std::int64_t& out) {
  if (!all_digits(s))
    return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool is_leap(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

// Days from 1970-01-01 to y-m-d (proleptic Gregorian), without time zone lookups.
std::int64_t days_from_civil(std::int64_t y, std::int64_t m, std::int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::optional<std::int64_t> parse_iso(std::string_view s) {
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z'))
    s.remove_suffix(1);
  // YYYY-MM-DD
  if (s.size() < 10 || s[4] != '-' || s[7] != '-')
    return std::nullopt;
  std::int64_t y, mo, d, h = 0, mi = 0, se = 0;
  if (!to_int(s.substr(0, 4), y) || !to_int(s.substr(5, 2), mo) || !to_int(s.substr(8, 2), d))
    return std::nullopt;
  std::string_view rest = s.substr(10);
  if (!rest.empty()) {
    if (rest[0] != 'T' && rest[0] != 't' && rest[0] != ' ')
      return std::nullopt;
    rest.remove_prefix(1);
    if (rest.size() != 5 && rest.size() != 8)
      return std::nullopt;
    if (rest[2] != ':' || !to_int(rest.substr(0, 2), h) || !to_int(rest.substr(3, 2), mi))
      return std::nullopt;
    if (rest.size() == 8 && (rest[5] != ':' || !to_int(rest.substr(6, 2), se)))
      return std::nullopt;
  }
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || mo < 1 || mo > 12 || d < 1)
    return std::nullopt;
  if (d > kDays[mo - 1] + (mo == 2 && is_leap(y) ? 1 : 0))
    return std::nullopt;
  if (h > 23 || mi > 59 || se > 59)
    return std::nullopt;
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
}

}  // namespace

std::string format_utc(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::int64_t> parse_time_spec(std::string_view text, std::int64_t now) {
  std::int64_t n = 0;
  if (to_int(text, n))
    return n;
  if (text.size() >= 2) {
    const char unit = static_cast<char>(std::tolower(static_cast<unsigned char>(text.back())));
    std::int64_t mult = 0;
    switch (unit) {
      case 's':
        mult = 1;
        break;
      case 'm':
        mult = 60;
        break;
      case 'h':
        mult = 3600;
        break;
      case 'd':
        mult = 86400;
        break;
      case 'w':
        mult = 7 * 86400;
        break;
      default:
        break;
    }
    // Bounded to 100 years so the product cannot overflow.
    if (mult != 0 && to_int(text.substr(0, text.size() - 1), n) && n <= 36500L * 86400 / mult)
      return now - n * mult;
  }
  if (auto t = parse_iso(text))
    return *t;
  return make_error(Errc::invalid_argument,
                    "'" + std::string(text) +
                        "' is not a time: use Unix seconds (1714564800), a UTC date "
                        "(2024-05-01 or 2024-05-01T12:00:00) or a time ago (30m, 2h, 3d, 1w)");
}

}  // namespace wmk::util

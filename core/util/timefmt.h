#pragma once
// Timestamps for people: ISO 8601 in UTC out, and the time specs admins type in
// (`webmailkey audit --since`).

#include <cstdint>
#include <string>
#include <string_view>

#include "core/util/result.h"

namespace wmk::util {

// "2024-05-01T12:00:00Z" for Unix seconds t.
std::string format_utc(std::int64_t t);

// Unix seconds for one of: Unix seconds ("1714564800"); an ISO date in UTC
// ("2024-05-01", "2024-05-01T12:00", "2024-05-01T12:00:00", optional trailing "Z",
// ' ' accepted for 'T'); or a time ago relative to now: a number and a unit s, m, h,
// d or w ("90m", "2h", "3d"). Errc::invalid_argument saying which forms are accepted.
Result<std::int64_t> parse_time_spec(std::string_view text, std::int64_t now);

}  // namespace wmk::util

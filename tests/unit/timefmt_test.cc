#include "core/util/timefmt.h"

#include <gtest/gtest.h>

namespace wmk::util {

TEST(TimeFmt, FormatsUtc) {
  EXPECT_EQ(format_utc(0), "1970-01-01T00:00:00Z");
  // `date -u -d @1714564800` -> 2024-05-01 12:00:00 UTC
  EXPECT_EQ(format_utc(1714564800), "2024-05-01T12:00:00Z");
}

TEST(TimeFmt, ParsesUnixSeconds) {
  EXPECT_EQ(*parse_time_spec("1714564800", 5), 1714564800);
  EXPECT_EQ(*parse_time_spec("0", 5), 0);
}

TEST(TimeFmt, ParsesIsoDatesInUtc) {
  // Reference values from `date -u -d '2024-05-01 12:00:00' +%s` and friends.
  EXPECT_EQ(*parse_time_spec("2024-05-01", 0), 1714521600);
  EXPECT_EQ(*parse_time_spec("2024-05-01T12:00:00", 0), 1714564800);
  EXPECT_EQ(*parse_time_spec("2024-05-01T12:00:00Z", 0), 1714564800);
  EXPECT_EQ(*parse_time_spec("2024-05-01 12:00", 0), 1714564800);
  EXPECT_EQ(*parse_time_spec("2024-02-29", 0), 1709164800);
  EXPECT_EQ(*parse_time_spec("2000-03-01T00:00:01", 0), 951868801);
}

TEST(TimeFmt, ParsesRelative) {
  const std::int64_t now = 1'000'000;
  EXPECT_EQ(*parse_time_spec("30s", now), now - 30);
  EXPECT_EQ(*parse_time_spec("90m", now), now - 5400);
  EXPECT_EQ(*parse_time_spec("2h", now), now - 7200);
  EXPECT_EQ(*parse_time_spec("3d", now), now - 3 * 86400);
  EXPECT_EQ(*parse_time_spec("1w", now), now - 7 * 86400);
}

TEST(TimeFmt, RefusesOtherText) {
  for (const char* bad :
       {"", "yesterday", "2h30m", "-5", "2023-02-29", "2024-13-01", "2024-5-1", "2024-05-01T25:00",
        "2024-05-01T12", "h", "99999999999999999999d", "1.5h"}) {
    auto r = parse_time_spec(bad, 1000);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.code(), Errc::invalid_argument);
    }
  }
}

}  // namespace wmk::util

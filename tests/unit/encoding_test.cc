#include "core/util/encoding.h"

#include <gtest/gtest.h>

namespace wmk::util {

TEST(Encoding, HexDigitValueReadsBothCases) {
  EXPECT_EQ(hex_digit_value('0'), 0);
  EXPECT_EQ(hex_digit_value('9'), 9);
  EXPECT_EQ(hex_digit_value('a'), 10);
  EXPECT_EQ(hex_digit_value('F'), 15);
  EXPECT_FALSE(hex_digit_value('g'));
  EXPECT_FALSE(hex_digit_value('G'));
  EXPECT_FALSE(hex_digit_value('%'));
  EXPECT_FALSE(hex_digit_value('\0'));
}

TEST(Encoding, HexDecodeRejectsOddLengthAndNonHex) {
  // `printf '\x01\xab\xff' | xxd -p` -> 01abff
  EXPECT_EQ(hex_decode("01ABff"), (std::vector<std::uint8_t>{0x01, 0xab, 0xff}));
  EXPECT_FALSE(hex_decode("abc"));
  EXPECT_FALSE(hex_decode("zz"));
}

}  // namespace wmk::util

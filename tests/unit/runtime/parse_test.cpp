// runtime/parse.hpp: the strict number and port parser behind every flag
// (issue 18 item 5: "12abc" and "1e3" were accepted, "99999" became a port).

#include <mayfly/runtime/parse.hpp>

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

namespace {

struct number_case {
  const char* text;
  uint64_t min;
  uint64_t max;
  bool ok;
  uint64_t value;
};

TEST(Parse, UintAcceptsOnlyDigitsInRange) {
  const number_case cases[] = {
    {"0", 0, 10, true, 0},
    {"10", 0, 10, true, 10},
    {"007", 0, 10, true, 7},
    {"18446744073709551615", 0, UINT64_MAX, true, UINT64_MAX},
    {"11", 0, 10, false, 0},
    {"0", 1, 10, false, 0},
    {"", 0, 10, false, 0},
    {"12abc", 0, 100, false, 0},
    {"1e3", 0, 10000, false, 0},
    {"-1", 0, 10, false, 0},
    {"+1", 0, 10, false, 0},
    {" 1", 0, 10, false, 0},
    {"1 ", 0, 10, false, 0},
    {"0x10", 0, 100, false, 0},
    {"1.0", 0, 10, false, 0},
    {"abc", 0, 10, false, 0},
    {"18446744073709551616", 0, UINT64_MAX, false, 0},
  };
  for (auto& c : cases) {
    auto got = mayfly::parse_uint(c.text, c.min, c.max);
    EXPECT_EQ(static_cast<bool>(got), c.ok) << "'" << c.text << "'";
    if (got && c.ok) {
      EXPECT_EQ(*got, c.value) << "'" << c.text << "'";
    }
  }
}

TEST(Parse, PortIsZeroTo65535) {
  const std::pair<const char*, int> cases[] = {
    {"0", 0},       {"53", 53},      {"65535", 65535}, {"65536", -1},
    {"99999", -1},  {"abc", -1},     {"-1", -1},       {"", -1},
    {"80x", -1},    {"1e3", -1},
  };
  for (auto& [text, want] : cases) {
    auto got = mayfly::parse_port(text);
    if (want < 0) {
      EXPECT_FALSE(got) << "'" << text << "'";
    } else {
      ASSERT_TRUE(got) << "'" << text << "'";
      EXPECT_EQ(*got, want);
    }
  }
}

TEST(Parse, ErrorsNameTheValue) {
  auto bad = mayfly::parse_uint("12abc", 0, 100);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, mayfly::errc::invalid_config);
  EXPECT_EQ(bad.error().message(), "'12abc': not a whole decimal number");
  auto big = mayfly::parse_uint("101", 0, 100);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().message(), "'101': number out of range");
  auto port = mayfly::parse_port("99999");
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().message(),
            "'99999': not a port number (0..65535)");
}

} // namespace

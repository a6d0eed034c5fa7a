#include <mayfly/runtime/result.hpp>

#include <set>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include <mayfly/runtime/errc.hpp>

using mayfly::errc;
using mayfly::error_info;
using mayfly::result;

TEST(Errc, EveryCodeHasADistinctName) {
  std::set<std::string_view> names;
  for (int i = 1; i <= static_cast<int>(errc::malformed); ++i) {
    auto name = mayfly::to_string(static_cast<errc>(i));
    EXPECT_NE(name, "unknown") << i;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(errc::malformed));
  EXPECT_EQ(mayfly::to_string(errc::pool_exhausted), "pool_exhausted");
  EXPECT_EQ(mayfly::to_string(static_cast<errc>(0)), "unknown");
  EXPECT_EQ(static_cast<int>(errc::pool_exhausted), 1); // 0 is "no error"
}

TEST(Result, HoldsAValue) {
  result<std::string> r{std::string{"value"}};
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "value");
  EXPECT_EQ(r->size(), 5u);
  auto moved = *std::move(r);
  EXPECT_EQ(moved, "value");
}

TEST(Result, HoldsAnError) {
  result<int> r{errc::pool_exhausted, "no slot"};
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::pool_exhausted);
  EXPECT_STREQ(r.error().what, "no slot");
  EXPECT_EQ(r.error().sys_errno, 0);
  EXPECT_EQ(r.error().message(), "no slot");
  result<int> sys{errc::system_error, "bind failed", 98};
  EXPECT_EQ(sys.error().sys_errno, 98);
}

TEST(Result, ErrorInfoMessageNamesTheSubject) {
  error_info e{errc::invalid_config, "value out of range", 0,
               "buffers.standard_capacity"};
  EXPECT_EQ(e.message(), "buffers.standard_capacity: value out of range");
  result<int> r{e};
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "buffers.standard_capacity");
}

TEST(ResultDeathTest, DereferencingAnErrorAborts) {
  result<int> r{errc::timeout, "late"};
  EXPECT_DEATH((void) *r, "assertion failed");
  result<int> ok{1};
  EXPECT_DEATH((void) ok.error(), "assertion failed");
}

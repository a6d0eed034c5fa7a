#include "runtime/slice.hpp"

#include <gtest/gtest.h>

TEST(Slice, CopyOfHoldsBytes) {
  auto s = mayfly::slice::copy_of("hello");
  EXPECT_EQ(s, "hello");
}

#include <mayfly/runtime/result.hpp>

#include <cerrno>
#include <memory>
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
  EXPECT_DEATH((void) *r, "used the value of a failed result: late");
  result<int> ok{1};
  EXPECT_DEATH((void) ok.error(), "assertion failed");
}

TEST(Result, MessageCarriesTheErrnoText) {
  error_info e{errc::system_error, "bind() failed", EADDRINUSE,
               "127.0.0.1:9000"};
  EXPECT_EQ(e.message(),
            "127.0.0.1:9000: bind() failed: Address already in use");
  error_info bare{errc::system_error, "socket() failed", EMFILE};
  EXPECT_EQ(bare.message(), "socket() failed: Too many open files");
  error_info subject_only{errc::invalid_config, "", 0, "--port: 'x' is bad"};
  EXPECT_EQ(subject_only.message(), "--port: 'x' is bad");
}

TEST(Result, ArrowReachesThroughPointers) {
  struct thing {
    int n = 7;
  };
  thing t;
  result<thing*> raw{&t};
  EXPECT_EQ(raw->n, 7); // not (*raw)->n
  result<std::unique_ptr<thing>> owned{std::make_unique<thing>()};
  EXPECT_EQ(owned->n, 7); // not (*owned)->n
  owned.value().reset();  // the unique_ptr itself
  EXPECT_EQ(owned.value(), nullptr);
  result<std::string> plain{std::string{"abc"}};
  EXPECT_EQ(plain->size(), 3u);
  const result<std::string>& cref = plain;
  EXPECT_EQ(cref.value(), "abc");
}

#include <mayfly/runtime/log.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

using mayfly::rate_limited_log;

// One hour: two calls in a row always fall into the same interval.
constexpr int64_t kHourMs = 3600 * 1000;

TEST(RateLimitedLog, PrintsTheFirstLineAndSuppressesTheRest) {
  rate_limited_log log{kHourMs};
  EXPECT_TRUE(log.log("first %d", 1));
  EXPECT_EQ(log.suppressed(), 0u);
  EXPECT_FALSE(log.log("second"));
  EXPECT_FALSE(log.log("third %s", "x"));
  EXPECT_EQ(log.suppressed(), 2u);
}

TEST(RateLimitedLog, ZeroIntervalPrintsEveryLine) {
  rate_limited_log log{0};
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(log.log("line %d", i));
  EXPECT_EQ(log.suppressed(), 0u);
}

TEST(RateLimitedLog, LongLinesAreTruncatedNotOverflowed) {
  rate_limited_log log{0};
  std::string huge(4000, 'z');
  EXPECT_TRUE(log.log("%s", huge.c_str()));
}

TEST(RateLimitedLog, OneLineWinsAcrossThreads) {
  rate_limited_log log{kHourMs};
  constexpr int kThreads = 4;
  constexpr int kCalls = 100;
  std::atomic<int> printed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i)
        if (log.log("storm"))
          printed.fetch_add(1);
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(printed.load(), 1);
  // Not exact: the winner resets the count after its CAS, so suppressions
  // that land in between may go uncounted.
  EXPECT_LE(log.suppressed(), uint64_t{kThreads * kCalls - 1});
}

TEST(LogSink, CapturesLinesAndCanBeRemoved) {
  std::vector<std::string> lines;
  mayfly::log_sink sink{[](void* ctx, const char* line) {
                          static_cast<std::vector<std::string>*>(ctx)
                            ->push_back(line);
                        },
                        &lines};
  mayfly::set_log_sink(&sink);
  mayfly::log_line("stall: %s %d", "x", 3);
  rate_limited_log log{0};
  EXPECT_TRUE(log.log("limited %d", 1));
  mayfly::set_log_sink(nullptr);
  mayfly::log_line("to stderr, not captured");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "stall: x 3");
  EXPECT_EQ(lines[1], "limited 1");
}

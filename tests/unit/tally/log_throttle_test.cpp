// examples/tally/log_throttle.hpp: `throttled_count` says a log line is due
// for the first event and then every kLogEvery-th, counts every event
// exactly once, also when two threads record at the same time.

#include "examples/tally/log_throttle.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

namespace {

using tally::throttled_count;

TEST(ThrottledCount, FirstEventThenEveryThousandthIsDue) {
  throttled_count count;
  EXPECT_EQ(count.total(), 0u);
  std::vector<uint64_t> due;
  for (uint64_t i = 1; i <= 3 * throttled_count::kLogEvery; ++i)
    if (auto n = count.record(); n != 0)
      due.push_back(n);
  EXPECT_EQ(due, (std::vector<uint64_t>{1, 1000, 2000, 3000}));
  EXPECT_EQ(count.total(), 3 * throttled_count::kLogEvery);
}

TEST(ThrottledCount, EventsBetweenTheDueOnesAreCountedButNotDue) {
  throttled_count count;
  EXPECT_EQ(count.record(), 1u);
  EXPECT_EQ(count.record(), 0u); // the second
  EXPECT_EQ(count.total(), 2u);
}

TEST(ThrottledCount, TwoThreadsCountEveryEventOnce) {
  constexpr uint64_t kPerThread = 50 * throttled_count::kLogEvery;
  throttled_count count;
  // Each thread keeps the numbers that were due for it: together they must
  // be 1 and every multiple of kLogEvery, each exactly once.
  std::vector<uint64_t> due[2];
  std::vector<std::thread> threads;
  for (auto& mine : due)
    threads.emplace_back([&count, &mine] {
      for (uint64_t i = 0; i < kPerThread; ++i)
        if (auto n = count.record(); n != 0)
          mine.push_back(n);
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(count.total(), 2 * kPerThread);
  std::vector<bool> seen(2 * kPerThread + 1, false);
  for (auto& mine : due)
    for (auto n : mine) {
      ASSERT_LE(n, 2 * kPerThread);
      EXPECT_FALSE(seen[n]) << n << " due twice";
      seen[n] = true;
    }
  EXPECT_TRUE(seen[1]);
  for (uint64_t n = throttled_count::kLogEvery; n <= 2 * kPerThread;
       n += throttled_count::kLogEvery)
    EXPECT_TRUE(seen[n]) << n << " never due";
  EXPECT_EQ(due[0].size() + due[1].size(), 1 + 2 * kPerThread
                                                 / throttled_count::kLogEvery);
}

} // namespace

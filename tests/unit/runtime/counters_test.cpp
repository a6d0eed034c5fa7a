#include <mayfly/runtime/counters.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <latch>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <mayfly/runtime/heap.hpp>

using mayfly::log2_histogram;
using mayfly::sharded_counters;

// -- log2_histogram -----------------------------------------------------------

TEST(Log2Histogram, EmptyReportsZero) {
  log2_histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.quantile(0.0), 0u);
  EXPECT_EQ(h.quantile(0.5), 0u);
  EXPECT_EQ(h.quantile(1.0), 0u);
}

TEST(Log2Histogram, QuantilesAreBucketUpperBounds) {
  log2_histogram h;
  for (uint64_t v = 1; v <= 1000; ++v)
    h.record(v);
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_EQ(h.max(), 1000u);
  // The 500th value (500) lies in [256, 511].
  EXPECT_EQ(h.quantile(0.5), 511u);
  // The 990th value (990) lies in [512, 1023]: capped at the max.
  EXPECT_EQ(h.quantile(0.99), 1000u);
  EXPECT_EQ(h.quantile(1.0), 1000u);
  EXPECT_EQ(h.quantile(0.0), 1u);    // the smallest value's bucket
  EXPECT_EQ(h.quantile(0.0015), 3u); // the 2nd value (2) lies in [2, 3]
  // Out-of-range q is clamped.
  EXPECT_EQ(h.quantile(-1.0), h.quantile(0.0));
  EXPECT_EQ(h.quantile(7.0), h.quantile(1.0));
}

TEST(Log2Histogram, ZeroHasItsOwnBucket) {
  log2_histogram h;
  h.record(0);
  h.record(0);
  h.record(8);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.quantile(0.5), 0u);
  EXPECT_EQ(h.quantile(1.0), 8u);
  EXPECT_EQ(h.max(), 8u);
}

TEST(Log2Histogram, WithinAFactorOfTwoOfTheExactQuantile) {
  log2_histogram h;
  std::vector<uint64_t> values;
  uint64_t x = 12345;
  for (int i = 0; i < 5000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull; // LCG
    auto v = (x >> 33) % 1000000 + 1;
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) {
    auto rank = static_cast<size_t>(std::ceil(q * values.size()));
    auto exact = values[std::max<size_t>(rank, 1) - 1];
    auto approx = h.quantile(q);
    EXPECT_GE(approx, exact) << q;
    EXPECT_LE(approx, 2 * exact) << q;
  }
  EXPECT_EQ(h.max(), values.back());
}

TEST(Log2Histogram, HugeValuesReportTheMax) {
  // Values past the last bucket's range share it; the quantile must still
  // be an upper bound of what was recorded (the max, at most).
  log2_histogram h;
  h.record(uint64_t{1} << 50);
  EXPECT_EQ(h.max(), uint64_t{1} << 50);
  EXPECT_EQ(h.quantile(1.0), uint64_t{1} << 50);
  EXPECT_EQ(h.quantile(0.5), uint64_t{1} << 50);
  h.record(~uint64_t{0});
  EXPECT_EQ(h.quantile(1.0), ~uint64_t{0});
  EXPECT_EQ(h.count(), 2u);
}

TEST(Log2Histogram, ConcurrentRecordsAreAllCounted) {
  log2_histogram h;
  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&h, t] {
      for (uint64_t i = 1; i <= kPerThread; ++i)
        h.record(i + static_cast<uint64_t>(t));
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(h.count(), kThreads * kPerThread);
  EXPECT_EQ(h.max(), kPerThread + kThreads - 1);
}

// -- sharded_counters ---------------------------------------------------------

TEST(ShardedCounters, SumAcrossThreads) {
  sharded_counters<3> c;
  constexpr int kThreads = 8; // more than one shard each, fewer than kShards
  constexpr int kAdds = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&c] {
      for (int i = 0; i < kAdds; ++i) {
        c.add(0);
        c.add(2, 3);
      }
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(c.sum(0), int64_t{kThreads} * kAdds);
  EXPECT_EQ(c.sum(1), 0);
  EXPECT_EQ(c.sum(2), int64_t{kThreads} * kAdds * 3);
}

TEST(ShardedCounters, GaugesBalanceAcrossThreads) {
  // Added on one thread, subtracted on others: the sum is still exact.
  sharded_counters<1> c;
  c.add(0, 1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&c] {
      for (int i = 0; i < 250; ++i)
        c.add(0, -1);
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(c.sum(0), 0);
}

TEST(ShardedCounters, ConcurrentThreadsGetDistinctIndices) {
  constexpr int kThreads = 4;
  std::vector<uint32_t> ids(kThreads);
  std::latch all_alive{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      ids[t] = mayfly::detail::this_thread_index();
      EXPECT_EQ(mayfly::detail::this_thread_index(), ids[t]); // stable
      all_alive.arrive_and_wait(); // no thread exits before all have one
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(std::set<uint32_t>(ids.begin(), ids.end()).size(), 4u);
  EXPECT_EQ(
    std::count(ids.begin(), ids.end(), mayfly::detail::this_thread_index()), 0);
}

// -- heap ---------------------------------------------------------------------

TEST(Heap, AllocationsAreCounted) {
  auto allocs = mayfly::heap_allocations();
  auto* p = mayfly::detail::heap_alloc(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(mayfly::heap_allocations(), allocs + 1);
  EXPECT_EQ(mayfly::heap_blocks_live(), 1);
  auto* q = mayfly::detail::heap_alloc(10, 4096);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q) % 4096, 0u);
  EXPECT_EQ(mayfly::heap_blocks_live(), 2);
  mayfly::detail::heap_free(p);
  mayfly::detail::heap_free(q);
  mayfly::detail::heap_free(nullptr); // ignored, not counted
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
  EXPECT_EQ(mayfly::heap_allocations(), allocs + 2);
}

TEST(Heap, FreeOnAnotherThreadBalances) {
  auto* p = mayfly::detail::heap_alloc(64);
  ASSERT_NE(p, nullptr);
  std::thread other{[p] { mayfly::detail::heap_free(p); }};
  other.join();
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
}

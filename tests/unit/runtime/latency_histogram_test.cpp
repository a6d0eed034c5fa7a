// latency_histogram: Prometheus `le` bucket semantics on the fixed bounds,
// count and sum, the JSON shape, and concurrent recording.

#include <mayfly/runtime/latency_histogram.hpp>

#include <thread>
#include <vector>

#include <gtest/gtest.h>

using mayfly::kLatencyBoundsUs;
using mayfly::latency_histogram;

TEST(LatencyHistogram, EmptyHasNothing) {
  latency_histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.sum_ns(), 0u);
  for (size_t b = 0; b < latency_histogram::kBuckets; ++b)
    EXPECT_EQ(h.bucket(b), 0u);
}

TEST(LatencyHistogram, ABoundBelongsToItsOwnBucket) {
  latency_histogram h;
  for (size_t i = 0; i < kLatencyBoundsUs.size(); ++i) {
    h.record(int64_t{kLatencyBoundsUs[i]} * 1000);     // exactly the bound
    h.record(int64_t{kLatencyBoundsUs[i]} * 1000 + 1); // just above it
  }
  EXPECT_EQ(h.bucket(0), 1u); // 1 µs
  for (size_t i = 1; i < kLatencyBoundsUs.size(); ++i)
    EXPECT_EQ(h.bucket(i), 2u) << "bucket " << i; // above the last, the bound
  EXPECT_EQ(h.bucket(latency_histogram::kBuckets - 1), 1u); // 100 ms + 1 ns
  EXPECT_EQ(h.count(), 2 * kLatencyBoundsUs.size());
}

TEST(LatencyHistogram, ZeroAndNegativeGoToTheFirstBucket) {
  latency_histogram h;
  h.record(0);
  h.record(-5); // a clock that went backwards between two threads
  EXPECT_EQ(h.bucket(0), 2u);
  EXPECT_EQ(h.sum_ns(), 0u);
}

TEST(LatencyHistogram, HugeValuesGoToInf) {
  latency_histogram h;
  h.record(int64_t{3600} * 1000000000);
  EXPECT_EQ(h.bucket(latency_histogram::kBuckets - 1), 1u);
  EXPECT_EQ(h.sum_ns(), uint64_t{3600} * 1000000000);
}

TEST(LatencyHistogram, JsonHasBoundsCountsCountAndSum) {
  latency_histogram h;
  h.record(1500);
  h.record(2500);
  auto j = h.to_json();
  ASSERT_EQ(j["bounds_us"].size(), kLatencyBoundsUs.size());
  EXPECT_EQ(j["bounds_us"][0], 1);
  EXPECT_EQ(j["bounds_us"].back(), 100000);
  ASSERT_EQ(j["counts"].size(), kLatencyBoundsUs.size() + 1);
  EXPECT_EQ(j["counts"][1], 1); // 1.5 µs: (1, 2]
  EXPECT_EQ(j["counts"][2], 1); // 2.5 µs: (2, 5]
  EXPECT_EQ(j["count"], 2);
  EXPECT_DOUBLE_EQ(j["sum_us"].get<double>(), 4.0);
}

TEST(LatencyHistogram, ThreadsCountEveryValue) {
  latency_histogram h;
  constexpr int kThreads = 4, kValues = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&h] {
      for (int i = 0; i < kValues; ++i)
        h.record(i);
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(h.count(), uint64_t{kThreads} * kValues);
  EXPECT_EQ(h.sum_ns(), uint64_t{kThreads} * (kValues - 1) * kValues / 2);
}

#include <mayfly/runtime/bounded_queue.hpp>

#include <atomic>
#include <cstdint>
#include <latch>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/runtime/test_util.hpp"

using mayfly::bounded_queue;
using mayfly::slice;
using mayfly::test::frozen;
using mayfly::test::make_buffer_pool;
using mayfly::test::retry;

TEST(BoundedQueue, CapacityRoundsUpToAPowerOfTwo) {
  EXPECT_EQ(bounded_queue<int>{0}.capacity(), 2u);
  EXPECT_EQ(bounded_queue<int>{1}.capacity(), 2u);
  EXPECT_EQ(bounded_queue<int>{2}.capacity(), 2u);
  EXPECT_EQ(bounded_queue<int>{3}.capacity(), 4u);
  EXPECT_EQ(bounded_queue<int>{64}.capacity(), 64u);
  EXPECT_EQ(bounded_queue<int>{65}.capacity(), 128u);
}

TEST(BoundedQueue, FifoUntilFullThenRefuses) {
  bounded_queue<int> q{4};
  EXPECT_TRUE(q.empty());
  int out = -1;
  EXPECT_FALSE(q.try_pop(out));
  EXPECT_EQ(out, -1);
  for (int i = 0; i < 4; ++i) {
    int x = i;
    EXPECT_TRUE(q.try_push(x));
  }
  EXPECT_FALSE(q.empty());
  int extra = 99;
  EXPECT_FALSE(q.try_push(extra));
  EXPECT_EQ(extra, 99);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(q.try_pop(out));
    EXPECT_EQ(out, i);
  }
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.try_pop(out));
}

TEST(BoundedQueue, WrapsAroundManyTimes) {
  bounded_queue<uint64_t> q{8};
  uint64_t next_in = 0;
  uint64_t next_out = 0;
  for (int round = 0; round < 1000; ++round) {
    for (int k = 0; k < 5; ++k) {
      auto x = next_in;
      ASSERT_TRUE(q.try_push(x));
      ++next_in;
    }
    for (int k = 0; k < 5; ++k) {
      uint64_t out = 0;
      ASSERT_TRUE(q.try_pop(out));
      ASSERT_EQ(out, next_out++);
    }
  }
  EXPECT_TRUE(q.empty());
}

TEST(BoundedQueue, RefusedSliceIsUntouchedAndPoppedSlicesAreNotRetained) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto s = frozen(*pool, "reply");
  bounded_queue<slice> q{2};
  auto a = s;
  auto b = s;
  auto c = s;
  ASSERT_TRUE(q.try_push(a));
  ASSERT_TRUE(q.try_push(b));
  EXPECT_FALSE(a.has_owner()); // moved in
  EXPECT_FALSE(q.try_push(c));
  EXPECT_EQ(c, "reply"); // refused: still ours
  EXPECT_EQ(s.use_count(), 4u);
  slice out;
  ASSERT_TRUE(q.try_pop(out));
  EXPECT_EQ(out, "reply");
  out.reset();
  // The cell let go of its slice when it was popped.
  EXPECT_EQ(s.use_count(), 3u);
}

TEST(BoundedQueue, DestructionReleasesQueuedSlices) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  {
    bounded_queue<slice> q{8};
    for (int i = 0; i < 2; ++i) {
      auto s = frozen(*pool, "queued");
      ASSERT_TRUE(q.try_push(s));
    }
    EXPECT_EQ(pool->slots().in_use(), 2);
  }
  EXPECT_EQ(pool->slots().in_use(), 0);
}

TEST(BoundedQueue, ManyProducersOneConsumerDeliverEverythingOnce) {
  constexpr int kProducers = 4;
  constexpr uint32_t kPerProducer = 5000;
  bounded_queue<uint32_t> q{64};
  std::latch start{kProducers + 1};
  std::vector<std::thread> producers;
  std::atomic<int> stuck{0};
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      start.arrive_and_wait();
      for (uint32_t i = 0; i < kPerProducer; ++i) {
        uint32_t x = (static_cast<uint32_t>(p) << 24) | i;
        if (!retry([&] { return q.try_push(x); })) {
          stuck.fetch_add(1);
          return;
        }
      }
    });
  start.arrive_and_wait();
  std::vector<uint32_t> next(kProducers, 0);
  int out_of_order = 0;
  for (uint64_t n = 0; n < uint64_t{kProducers} * kPerProducer; ++n) {
    uint32_t x = 0;
    if (!retry([&] { return q.try_pop(x); })) {
      stuck.fetch_add(1);
      break;
    }
    auto p = x >> 24;
    auto i = x & 0xffffff;
    if (p >= kProducers || next[p] != i)
      ++out_of_order;
    else
      ++next[p];
  }
  for (auto& th : producers)
    th.join();
  EXPECT_EQ(stuck.load(), 0);
  EXPECT_EQ(out_of_order, 0); // per-producer FIFO, nothing lost or doubled
  for (int p = 0; p < kProducers; ++p)
    EXPECT_EQ(next[p], kPerProducer);
  EXPECT_TRUE(q.empty());
}

TEST(BoundedQueue, SlicesCrossThreadsThroughTheQueue) {
  constexpr int kProducers = 3;
  constexpr int kPerProducer = 2000;
  auto pool = make_buffer_pool(512, 64);
  ASSERT_TRUE(pool);
  bounded_queue<slice> q{32};
  std::vector<std::thread> producers;
  std::atomic<int> failures{0};
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&] {
      for (int i = 0; i < kPerProducer; ++i) {
        auto s = frozen(*pool, "payload");
        // On failure (no slot, or the consumer gone) push an empty slice
        // anyway, so that the consumer's count stays right.
        if (!s.has_owner())
          failures.fetch_add(1);
        if (!retry([&] { return q.try_push(s); })) {
          failures.fetch_add(1);
          return;
        }
      }
    });
  for (int n = 0; n < kProducers * kPerProducer; ++n) {
    slice s;
    if (!retry([&] { return q.try_pop(s); })) {
      failures.fetch_add(1);
      break;
    }
    if (s != "payload" || !s.pooled())
      failures.fetch_add(1);
  }
  for (auto& th : producers)
    th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(pool->slots().in_use(), 0);
  EXPECT_EQ(pool->slots().count(mayfly::slot_pool::acquisitions),
            kProducers * kPerProducer);
}

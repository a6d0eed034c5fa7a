#include <mayfly/runtime/slot_pool.hpp>

#include <cstdint>
#include <cstring>
#include <latch>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/runtime/test_util.hpp"

using mayfly::errc;
using mayfly::slot_pool;
using mayfly::test::make_slot_pool;
using mayfly::test::pool_options;

namespace {

constexpr uint32_t kNoSlot = slot_pool::kNoSlot;

// Acquires until the pool says no; returns the slots taken.
std::vector<uint32_t> drain(slot_pool& pool) {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i <= pool.capacity(); ++i) {
    auto s = pool.acquire();
    if (s == kNoSlot)
      break;
    out.push_back(s);
  }
  return out;
}

void release_all(slot_pool& pool, const std::vector<uint32_t>& slots) {
  for (auto s : slots)
    pool.release(s);
}

} // namespace

TEST(SlotPool, MakeRejectsInvalidOptions) {
  auto opts = pool_options(4);
  opts.slot_size = 0;
  auto zero_size = slot_pool::make(opts);
  ASSERT_FALSE(zero_size);
  EXPECT_EQ(zero_size.error().code, errc::invalid_config);

  opts = pool_options(0);
  auto zero_capacity = slot_pool::make(opts);
  ASSERT_FALSE(zero_capacity);
  EXPECT_EQ(zero_capacity.error().code, errc::invalid_config);

  opts = pool_options(kNoSlot);
  auto too_many = slot_pool::make(opts);
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().code, errc::invalid_config);

  opts = pool_options(8, size_t{1} << 62); // 2^65 bytes: overflows size_t
  auto overflow = slot_pool::make(opts);
  ASSERT_FALSE(overflow);
  EXPECT_EQ(overflow.error().code, errc::invalid_config);
  EXPECT_STRNE(overflow.error().what, "");
}

TEST(SlotPool, MakeReportsOutOfMemoryWhenTheKernelRefuses) {
  // 2^40 * 2^20 bytes = 1 EiB: no kernel maps that.
  auto opts = pool_options(uint32_t{1} << 20, size_t{1} << 40);
  auto res = slot_pool::make(opts);
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, errc::out_of_memory);
  EXPECT_NE(res.error().sys_errno, 0);
}

TEST(SlotPool, RoundsSlotSizeUpToCacheLines) {
  auto pool = make_slot_pool(4, 100);
  ASSERT_TRUE(pool);
  EXPECT_EQ(pool->slot_size(), 128u);
  EXPECT_EQ(pool->capacity(), 4u);
  EXPECT_EQ(pool->name(), "test");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(pool->data(0)) % 4096, 0u);
  EXPECT_EQ(pool->data(1) - pool->data(0), 128);
  EXPECT_GE(pool->region_bytes(), 4u * 128u);
  EXPECT_EQ(pool->region_bytes() % 4096, 0u);
  EXPECT_STREQ(pool->page_kind(), "none"); // small region: no huge pages
}

TEST(SlotPool, HugePageRegionReportsItsPageKind) {
  auto opts = pool_options(1024, 2048); // exactly 2 MiB
  opts.huge_pages = true;
  opts.prefault = true;
  auto res = slot_pool::make(opts);
  ASSERT_TRUE(res);
  auto& pool = **res;
  std::string kind = pool.page_kind();
  EXPECT_TRUE(kind == "hugetlb" || kind == "thp" || kind == "none") << kind;
  EXPECT_EQ(pool.region_bytes() % (size_t{2} << 20), 0u);
  auto s = pool.acquire();
  ASSERT_NE(s, kNoSlot);
  std::memset(pool.data(s), 0xab, pool.slot_size());
  pool.release(s);
}

TEST(SlotPool, UidsAreUniqueAndIncreasing) {
  auto a = make_slot_pool(1);
  auto b = make_slot_pool(1);
  ASSERT_TRUE(a && b);
  EXPECT_LT(a->uid(), b->uid());
}

TEST(SlotPool, AcquireHandsOutSlotZeroFirstAndDistinctSlots) {
  auto pool = make_slot_pool(4);
  ASSERT_TRUE(pool);
  auto slots = drain(*pool);
  ASSERT_EQ(slots.size(), 4u);
  EXPECT_EQ(slots[0], 0u);
  EXPECT_EQ(std::set<uint32_t>(slots.begin(), slots.end()).size(), 4u);
  for (auto s : slots)
    EXPECT_LT(s, 4u);
  EXPECT_EQ(pool->in_use(), 4);
  release_all(*pool, slots);
  EXPECT_EQ(pool->in_use(), 0);
  EXPECT_EQ(pool->count(slot_pool::acquisitions), 4);
  EXPECT_EQ(pool->count(slot_pool::releases), 4);
}

TEST(SlotPool, SlotsAreDisjointAndWritable) {
  auto pool = make_slot_pool(4, 64);
  ASSERT_TRUE(pool);
  auto slots = drain(*pool);
  ASSERT_EQ(slots.size(), 4u);
  for (auto s : slots)
    std::memset(pool->data(s), static_cast<int>(s + 1), pool->slot_size());
  for (auto s : slots)
    for (size_t i = 0; i < pool->slot_size(); ++i)
      ASSERT_EQ(static_cast<int>(pool->data(s)[i]), static_cast<int>(s + 1));
  release_all(*pool, slots);
}

TEST(SlotPool, ExhaustionReturnsNoSlotAndIsCounted) {
  auto pool = make_slot_pool(2);
  ASSERT_TRUE(pool);
  auto a = pool->acquire();
  auto b = pool->acquire();
  ASSERT_NE(a, kNoSlot);
  ASSERT_NE(b, kNoSlot);
  EXPECT_EQ(pool->acquire(), kNoSlot);
  EXPECT_EQ(pool->acquire(), kNoSlot);
  EXPECT_EQ(pool->count(slot_pool::exhausted), 2);
  EXPECT_EQ(pool->count(slot_pool::acquisitions), 2); // failures not counted
  EXPECT_EQ(pool->in_use(), 2);
  pool->release(a);
  auto c = pool->acquire();
  EXPECT_EQ(c, a); // the freed slot comes back
  pool->release(b);
  pool->release(c);
  EXPECT_EQ(pool->in_use(), 0);
}

TEST(SlotPool, SmallPoolsDoNotCache) {
  auto small = make_slot_pool(63);
  auto large = make_slot_pool(64);
  auto larger = make_slot_pool(4096, 64);
  ASSERT_TRUE(small && large && larger);
  EXPECT_EQ(small->thread_cache_limit(), 0u);
  EXPECT_GT(large->thread_cache_limit(), 0u);
  EXPECT_LE(large->thread_cache_limit(), 64u / 4);
  EXPECT_GT(larger->thread_cache_limit(), 0u);
  EXPECT_LE(larger->thread_cache_limit(), 64u);
}

TEST(SlotPool, SmallPoolExhaustsExactlyAtCapacityAcrossThreads) {
  // Without a thread cache, slots released on another thread (which then
  // stays alive) are immediately available to everyone.
  auto pool = make_slot_pool(8);
  ASSERT_TRUE(pool);
  std::latch released{1};
  std::latch done{1};
  std::thread other{[&] {
    auto slots = drain(*pool);
    EXPECT_EQ(slots.size(), 8u);
    release_all(*pool, slots);
    released.count_down();
    done.wait();
  }};
  released.wait();
  auto slots = drain(*pool);
  EXPECT_EQ(slots.size(), 8u);
  EXPECT_EQ(pool->acquire(), kNoSlot);
  release_all(*pool, slots);
  done.count_down();
  other.join();
  EXPECT_EQ(pool->in_use(), 0);
  EXPECT_EQ(pool->count(slot_pool::refills), 0); // no cache, no refills
}

TEST(SlotPool, PeakIsExactWithoutCaching) {
  auto pool = make_slot_pool(8);
  ASSERT_TRUE(pool);
  EXPECT_EQ(pool->peak(), 0u);
  auto a = pool->acquire();
  auto b = pool->acquire();
  auto c = pool->acquire();
  pool->release(a);
  pool->release(b);
  auto d = pool->acquire();
  EXPECT_EQ(pool->peak(), 3u);
  EXPECT_EQ(pool->in_use(), 2);
  pool->release(c);
  pool->release(d);
  EXPECT_EQ(pool->peak(), 3u);
}

TEST(SlotPool, LargePoolSingleThreadGetsEverySlot) {
  auto pool = make_slot_pool(256, 64);
  ASSERT_TRUE(pool);
  ASSERT_GT(pool->thread_cache_limit(), 0u);
  auto slots = drain(*pool);
  EXPECT_EQ(slots.size(), 256u);
  EXPECT_EQ(std::set<uint32_t>(slots.begin(), slots.end()).size(), 256u);
  EXPECT_EQ(pool->count(slot_pool::exhausted), 1);
  EXPECT_GT(pool->count(slot_pool::refills), 0); // batches, not one by one
  EXPECT_LT(pool->count(slot_pool::refills), 256);
  release_all(*pool, slots);
  EXPECT_EQ(pool->in_use(), 0);
  // Released slots parked in this thread's cache are still this thread's.
  slots = drain(*pool);
  EXPECT_EQ(slots.size(), 256u);
  release_all(*pool, slots);
}

TEST(SlotPool, LargePoolIsBoundedByCapacityWhileOtherThreadsCache) {
  constexpr int kThreads = 4;
  auto pool = make_slot_pool(256, 64);
  ASSERT_TRUE(pool);
  auto limit = pool->thread_cache_limit();
  ASSERT_GT(limit, 0u);
  std::latch parked{kThreads};
  std::latch done{1};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      // Leave up to `limit` slots in this thread's cache.
      std::vector<uint32_t> mine;
      for (uint32_t i = 0; i < limit; ++i)
        if (auto s = pool->acquire(); s != kNoSlot)
          mine.push_back(s);
      EXPECT_EQ(mine.size(), limit);
      release_all(*pool, mine);
      parked.count_down();
      done.wait();
    });
  parked.wait();
  EXPECT_EQ(pool->in_use(), 0);
  auto slots = drain(*pool);
  // Never more than the capacity; at most `limit` per other thread missing.
  EXPECT_LE(slots.size(), 256u);
  EXPECT_GE(slots.size(), 256u - kThreads * limit);
  EXPECT_EQ(std::set<uint32_t>(slots.begin(), slots.end()).size(),
            slots.size());
  release_all(*pool, slots);
  done.count_down();
  for (auto& t : threads)
    t.join();
  // Exiting threads hand their cached slots back: all 256 are reachable.
  slots = drain(*pool);
  EXPECT_EQ(slots.size(), 256u);
  release_all(*pool, slots);
  EXPECT_EQ(pool->in_use(), 0);
}

TEST(SlotPool, AtMost32PoolsCacheAtOnce) {
  // Each caching pool owns one entry of every thread's cache; a pool created
  // while 32 caching pools are alive goes uncached, and so exhausts exactly.
  constexpr size_t kCachedPools = 32; // slot_pool.hpp
  std::vector<std::unique_ptr<slot_pool>> pools;
  for (size_t i = 0; i < kCachedPools; ++i) {
    pools.push_back(make_slot_pool(64, 64));
    ASSERT_TRUE(pools.back());
    EXPECT_GT(pools.back()->thread_cache_limit(), 0u) << i;
  }
  auto uncached = make_slot_pool(64, 64);
  ASSERT_TRUE(uncached);
  EXPECT_EQ(uncached->thread_cache_limit(), 0u);
  // Uncached: slots released on a thread that stays alive are available.
  std::latch released{1};
  std::latch done{1};
  std::thread other{[&] {
    auto slots = drain(*uncached);
    release_all(*uncached, slots);
    released.count_down();
    done.wait();
  }};
  released.wait();
  auto slots = drain(*uncached);
  EXPECT_EQ(slots.size(), 64u);
  release_all(*uncached, slots);
  done.count_down();
  other.join();
  // Destroying a caching pool frees its entry for the next pool.
  pools.pop_back();
  auto next = make_slot_pool(64, 64);
  ASSERT_TRUE(next);
  EXPECT_GT(next->thread_cache_limit(), 0u);
}

TEST(SlotPool, SlotOfMapsPointersToSlots) {
  auto pool = make_slot_pool(4, 128);
  ASSERT_TRUE(pool);
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(pool->slot_of(pool->data(i)), i);
    EXPECT_EQ(pool->slot_of(pool->data(i) + 127), i);
  }
  EXPECT_EQ(pool->slot_of(pool->data(3) + 128), kNoSlot); // one past the end
  EXPECT_EQ(pool->slot_of(pool->data(0) - 1), kNoSlot);
  int local = 0;
  EXPECT_EQ(pool->slot_of(&local), kNoSlot);
  EXPECT_EQ(pool->slot_of(nullptr), kNoSlot);
}

TEST(SlotPool, CrossThreadReleasesAreCounted) {
  auto pool = make_slot_pool(4);
  ASSERT_TRUE(pool);
  auto a = pool->acquire();
  auto b = pool->acquire();
  std::thread other{[&] { pool->release(a); }};
  other.join();
  pool->release(b);
  EXPECT_EQ(pool->count(slot_pool::cross_thread_releases), 1);
  EXPECT_EQ(pool->count(slot_pool::releases), 2);
  EXPECT_EQ(pool->in_use(), 0);
}

TEST(SlotPool, CrossThreadReleaseIntoACachingPoolComesBack) {
  auto pool = make_slot_pool(64, 64);
  ASSERT_TRUE(pool);
  auto slots = drain(*pool);
  ASSERT_EQ(slots.size(), 64u);
  std::thread other{[&] { release_all(*pool, slots); }};
  other.join(); // its cache is flushed at exit
  EXPECT_EQ(pool->count(slot_pool::cross_thread_releases), 64);
  EXPECT_EQ(pool->in_use(), 0);
  slots = drain(*pool);
  EXPECT_EQ(slots.size(), 64u);
  release_all(*pool, slots);
}

TEST(SlotPool, PoolDestroyedWhileAnotherThreadCachesItsSlots) {
  // The thread's cache entry for a dead pool must be dropped, not flushed
  // into freed memory, and must not be mistaken for a new pool's entry.
  auto pool = make_slot_pool(64, 64);
  ASSERT_TRUE(pool);
  std::latch cached{1};
  std::latch destroyed{1};
  std::latch checked{1};
  std::vector<uint32_t> seen;
  std::unique_ptr<slot_pool> second;
  std::thread user{[&] {
    pool->release(pool->acquire()); // parks slots in this thread's cache
    cached.count_down();
    destroyed.wait();
    if (second) {
      seen = drain(*second); // a new pool, possibly at the same address
      release_all(*second, seen);
    }
    checked.count_down();
  }};
  cached.wait();
  pool.reset();
  second = make_slot_pool(64, 64);
  destroyed.count_down();
  checked.wait();
  user.join();
  ASSERT_TRUE(second);
  EXPECT_EQ(seen.size(), 64u);
  EXPECT_EQ(std::set<uint32_t>(seen.begin(), seen.end()).size(), seen.size());
  EXPECT_EQ(second->in_use(), 0);
  auto again = drain(*second);
  EXPECT_EQ(again.size(), 64u);
  release_all(*second, again);
}

TEST(SlotPool, ReleaseDuringThreadExitIsNotLost) {
  // A thread-local object constructed before the thread first touched a
  // pool (a per-thread writer, say) is destroyed after the thread's slot
  // cache: the slot it releases then must still reach the pool.
  auto pool = mayfly::test::make_buffer_pool(64, 64); // caching
  ASSERT_TRUE(pool);
  ASSERT_GT(pool->slots().thread_cache_limit(), 0u);
  auto s = mayfly::test::frozen(*pool, "last reference");
  std::latch holding{1};
  std::latch dropped{1};
  std::thread t{[&] {
    thread_local mayfly::slice kept; // constructed first, destroyed last
    kept = s;
    pool->try_acquire(); // the thread's first use of the cache
    holding.count_down();
    dropped.wait();
  }}; // `kept` holds the last reference when the thread exits
  holding.wait();
  s.reset();
  dropped.count_down();
  t.join();
  EXPECT_EQ(pool->slots().in_use(), 0);
  std::vector<mayfly::mutable_buffer> all;
  for (int i = 0; i < 65; ++i)
    if (auto buf = pool->try_acquire())
      all.push_back(std::move(buf));
  EXPECT_EQ(all.size(), 64u); // no slot lost in a dead cache
}

TEST(SlotPoolDeathTest, DestroyedWithSlotsOutstandingAborts) {
  EXPECT_DEATH(
    {
      auto pool = make_slot_pool(2);
      (void) pool->acquire();
      pool.reset();
    },
    "slots outstanding");
}

#include <mayfly/runtime/buffer_pool.hpp>

#include <cstdint>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/runtime/test_util.hpp"

using mayfly::buffer_pool;
using mayfly::buffer_pools;
using mayfly::dedicated_binaries;
using mayfly::errc;
using mayfly::mutable_buffer;
using mayfly::slice;
using mayfly::slot_pool;
using mayfly::test::frozen;
using mayfly::test::make_buffer_pool;
using mayfly::test::make_pools;
using mayfly::test::pool_options;
using mayfly::test::small_pools_config;

// -- buffer_pool --------------------------------------------------------------

TEST(BufferPool, MakeFailsLikeSlotPool) {
  auto zero = buffer_pool::make(pool_options(4, 0));
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, errc::invalid_config);
  auto empty = buffer_pool::make(pool_options(0));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, errc::invalid_config);
  auto huge = buffer_pool::make(pool_options(1, size_t{1} << 32));
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, errc::invalid_config);
}

TEST(BufferPool, MakeRejectsASlotSizeThatRoundsPast32Bits) {
  // Slot sizes are rounded up to 64 bytes; a binary's capacity is 32 bits.
  // UINT32_MAX - 1 rounds up to 2^32, which would wrap to a capacity of 0.
  auto res = buffer_pool::make(pool_options(1, UINT32_MAX - 1));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, errc::invalid_config);
}

TEST(BufferPool, AcquireUntilExhausted) {
  auto pool = make_buffer_pool(3);
  ASSERT_TRUE(pool);
  std::vector<mutable_buffer> held;
  for (int i = 0; i < 3; ++i) {
    auto res = pool->acquire();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->capacity(), pool->slot_size());
    held.push_back(std::move(*res));
  }
  auto fail = pool->acquire();
  ASSERT_FALSE(fail);
  EXPECT_EQ(fail.error().code, errc::pool_exhausted);
  EXPECT_FALSE(pool->try_acquire());
  EXPECT_EQ(pool->slots().count(slot_pool::exhausted), 2);
  held.pop_back();
  EXPECT_TRUE(pool->acquire());
  held.clear();
  EXPECT_EQ(pool->slots().in_use(), 0);
}

TEST(BufferPool, SlotReturnsWhenTheLastSliceDrops) {
  auto pool = make_buffer_pool(1);
  ASSERT_TRUE(pool);
  auto a = frozen(*pool, "payload");
  auto b = a.sub(1, 3);
  auto c = b;
  a.reset();
  b.reset();
  EXPECT_FALSE(pool->try_acquire()); // still pinned by c
  c.reset();
  EXPECT_EQ(pool->slots().in_use(), 0);
  EXPECT_TRUE(pool->try_acquire());
}

TEST(BufferPool, CensusCountsLiveBinariesByReferences) {
  auto pool = make_buffer_pool(8, 128);
  ASSERT_TRUE(pool);
  auto empty = pool->census();
  EXPECT_EQ(empty.live, 0u);
  EXPECT_EQ(empty.oldest_slot, slot_pool::kNoSlot);
  EXPECT_EQ(empty.oldest_age_ns, 0);

  // Binaries with 1, 2, 4, 5 and 9 references: one per bucket.
  std::vector<std::vector<slice>> refs;
  for (size_t n : {1, 2, 4, 5, 9}) {
    auto s = frozen(*pool, "0123456789");
    ASSERT_TRUE(s.has_owner());
    std::vector<slice> copies(n - 1, s);
    copies.push_back(std::move(s));
    refs.push_back(std::move(copies));
  }
  auto writable = pool->try_acquire(); // held, nothing frozen: no binary
  ASSERT_TRUE(writable);
  auto c = pool->census();
  EXPECT_EQ(c.live, 5u);
  EXPECT_EQ(c.writable, 1u);
  EXPECT_EQ(c.live_bytes, 50u);
  EXPECT_EQ(c.pinned_bytes, 5u * 128u);
  EXPECT_EQ(c.refs[0], 1u);
  EXPECT_EQ(c.refs[1], 1u);
  EXPECT_EQ(c.refs[2], 1u);
  EXPECT_EQ(c.refs[3], 1u);
  EXPECT_EQ(c.refs[4], 1u);
  EXPECT_EQ(c.oldest_slot, 0u); // slot 0 was acquired first
  EXPECT_GE(c.oldest_age_ns, 0);
  refs.clear();
  writable = mutable_buffer{};
  auto after = pool->census();
  EXPECT_EQ(after.live, 0u);
  EXPECT_EQ(after.writable, 0u);
  EXPECT_EQ(after.live_bytes, 0u);
  EXPECT_EQ(after.refs[0] + after.refs[4], 0u);
}

TEST(BufferPool, CensusReportsTheOldestHolder) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto old_one = frozen(*pool, "old");
  auto young = frozen(*pool, "young");
  old_one.mark_holder(42);
  young.mark_holder(7);
  auto c = pool->census();
  EXPECT_EQ(c.oldest_slot, pool->slots().slot_of(old_one.data()));
  EXPECT_EQ(c.oldest_holder, 42u);
  // The mark is per binary: any slice of it may set it.
  auto part = old_one.sub(1);
  part.mark_holder(43);
  EXPECT_EQ(pool->census().oldest_holder, 43u);
  // A re-acquired slot starts without a holder and without frozen bytes.
  old_one.reset();
  part.reset();
  young.reset();
  auto again = pool->try_acquire();
  ASSERT_TRUE(again);
  auto fresh = pool->census();
  EXPECT_EQ(fresh.live, 0u);
  EXPECT_EQ(fresh.writable, 1u);
  auto born = std::move(again).freeze(0); // an empty datagram is a binary
  fresh = pool->census();
  EXPECT_EQ(fresh.live, 1u);
  EXPECT_EQ(fresh.oldest_holder, 0u);
  EXPECT_EQ(fresh.live_bytes, 0u);
}

// An idle receive loop holds slots ready for datagrams: they must not look
// like old, pinned binaries. A binary's age counts from its first freeze.
TEST(BufferPool, CensusAgesBinariesFromTheirFirstFreeze) {
  auto pool = make_buffer_pool(4, 128);
  ASSERT_TRUE(pool);
  auto waiting = pool->try_acquire();
  ASSERT_TRUE(waiting);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  auto c = pool->census();
  EXPECT_EQ(c.live, 0u);
  EXPECT_EQ(c.pinned_bytes, 0u);
  EXPECT_EQ(c.oldest_age_ns, 0);
  EXPECT_EQ(c.oldest_slot, slot_pool::kNoSlot);
  auto ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
  };
  auto before_freeze = ns();
  auto first = waiting.split_to(3); // born here
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  auto second = waiting.split_to(3); // not reborn by later freezes
  c = pool->census();
  auto since_freeze = ns() - before_freeze;
  EXPECT_EQ(c.live, 1u);
  EXPECT_EQ(c.writable, 0u);
  EXPECT_GE(c.oldest_age_ns, 30'000'000);       // from the first freeze...
  EXPECT_LE(c.oldest_age_ns, since_freeze);     // ...not from the acquire
}

TEST(BufferPool, StatsJsonHasEveryField) {
  auto pool = make_buffer_pool(4, 256);
  ASSERT_TRUE(pool);
  auto a = frozen(*pool, "abcd");
  auto b = a;
  a.mark_holder(9);
  std::vector<mutable_buffer> rest;
  for (int i = 0; i < 3; ++i)
    rest.push_back(pool->try_acquire());
  EXPECT_FALSE(pool->try_acquire());
  auto j = pool->stats();
  EXPECT_EQ(j["slot_size"], 256);
  EXPECT_EQ(j["capacity"], 4);
  EXPECT_EQ(j["in_use"], 4);
  EXPECT_EQ(j["peak"], 4);
  EXPECT_EQ(j["acquisitions"], 4);
  EXPECT_EQ(j["releases"], 0);
  EXPECT_EQ(j["exhausted"], 1);
  EXPECT_EQ(j["cross_thread_releases"], 0);
  EXPECT_EQ(j["refills"], 0);
  EXPECT_EQ(j["thread_cache_limit"], 0);
  EXPECT_EQ(j["region_bytes"], pool->slots().region_bytes());
  EXPECT_EQ(j["pages"], "none");
  auto& bin = j["binaries"];
  EXPECT_EQ(bin["live"], 1); // the three `rest` are writable, not binaries
  EXPECT_EQ(bin["writable"], 3);
  EXPECT_EQ(bin["live_bytes"], 4);
  EXPECT_EQ(bin["pinned_bytes"], 256);
  EXPECT_EQ(bin["refs"]["1"], 0);
  EXPECT_EQ(bin["refs"]["2"], 1);
  EXPECT_EQ(bin["refs"]["3-4"], 0);
  EXPECT_EQ(bin["refs"]["5-8"], 0);
  EXPECT_EQ(bin["refs"]["9+"], 0);
  EXPECT_TRUE(bin["oldest_age_ms"].is_number());
  EXPECT_GE(bin["oldest_age_ms"].get<double>(), 0.0);
  EXPECT_EQ(bin["oldest_holder"], 9);
  rest.clear();
  a.reset();
  b.reset();
  auto after = pool->stats();
  EXPECT_EQ(after["in_use"], 0);
  EXPECT_EQ(after["releases"], 4);
  EXPECT_EQ(after["binaries"]["live"], 0);
}

// -- buffer_pools -------------------------------------------------------------

TEST(BufferPools, MakeValidatesTheClasses) {
  auto cfg = small_pools_config();
  cfg.jumbo_slot_size = cfg.standard_slot_size;
  auto same = buffer_pools::make(cfg);
  ASSERT_FALSE(same);
  EXPECT_EQ(same.error().code, errc::invalid_config);

  cfg = small_pools_config();
  cfg.standard_capacity = 0;
  auto no_standard = buffer_pools::make(cfg);
  ASSERT_FALSE(no_standard);
  EXPECT_EQ(no_standard.error().code, errc::invalid_config);
}

TEST(BufferPools, ClassSelectionBySize) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  ASSERT_NE(pools->jumbo(), nullptr);
  auto& std_slots = pools->standard().slots();
  auto& jumbo_slots = pools->jumbo()->slots();
  auto dedicated_before = dedicated_binaries::allocations();

  for (size_t n : {size_t{0}, size_t{1}, size_t{256}}) {
    auto buf = pools->acquire(n);
    ASSERT_TRUE(buf) << n;
    EXPECT_TRUE(buf->pooled());
    EXPECT_EQ(buf->capacity(), 256u) << n;
    EXPECT_EQ(std_slots.in_use(), 1) << n;
  }
  for (size_t n : {size_t{257}, size_t{1024}}) {
    auto buf = pools->acquire(n);
    ASSERT_TRUE(buf) << n;
    EXPECT_TRUE(buf->pooled());
    EXPECT_EQ(buf->capacity(), 1024u) << n;
    EXPECT_EQ(jumbo_slots.in_use(), 1) << n;
    EXPECT_EQ(std_slots.in_use(), 0) << n;
  }
  {
    auto buf = pools->acquire(1025);
    ASSERT_TRUE(buf);
    EXPECT_FALSE(buf->pooled());
    EXPECT_GE(buf->capacity(), 1025u);
    EXPECT_EQ(jumbo_slots.in_use(), 0);
    EXPECT_EQ(dedicated_binaries::allocations(), dedicated_before + 1);
    EXPECT_EQ(pools->outstanding(), 1);
  }
  EXPECT_EQ(pools->outstanding(), 0);
  EXPECT_EQ(std_slots.count(slot_pool::acquisitions), 3);
  EXPECT_EQ(jumbo_slots.count(slot_pool::acquisitions), 2);
}

TEST(BufferPools, WithoutJumboLargeBuffersAreDedicated) {
  auto cfg = small_pools_config();
  cfg.jumbo_capacity = 0;
  auto pools = make_pools(cfg);
  ASSERT_TRUE(pools);
  EXPECT_EQ(pools->jumbo(), nullptr);
  auto buf = pools->acquire(257);
  ASSERT_TRUE(buf);
  EXPECT_FALSE(buf->pooled());
  EXPECT_EQ(dedicated_binaries::live(), 1);
  EXPECT_FALSE(pools->stats().contains("jumbo"));
}

TEST(BufferPools, ExhaustedStandardNeverFallsBack) {
  auto pools = make_pools(small_pools_config(2, 2));
  ASSERT_TRUE(pools);
  auto a = pools->acquire(10);
  auto b = pools->acquire(10);
  ASSERT_TRUE(a && b);
  auto dedicated_before = dedicated_binaries::allocations();
  auto c = pools->acquire(10);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, errc::pool_exhausted);
  EXPECT_EQ(pools->jumbo()->slots().in_use(), 0);
  EXPECT_EQ(pools->jumbo()->slots().count(slot_pool::acquisitions), 0);
  EXPECT_EQ(dedicated_binaries::allocations(), dedicated_before);
  EXPECT_EQ(pools->standard().slots().count(slot_pool::exhausted), 1);
}

TEST(BufferPools, ExhaustedJumboNeverFallsBack) {
  auto pools = make_pools(small_pools_config(2, 1));
  ASSERT_TRUE(pools);
  auto a = pools->acquire(500);
  ASSERT_TRUE(a);
  auto dedicated_before = dedicated_binaries::allocations();
  auto b = pools->acquire(500);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, errc::pool_exhausted);
  EXPECT_EQ(dedicated_binaries::allocations(), dedicated_before);
  EXPECT_EQ(pools->standard().slots().in_use(), 0);
  EXPECT_EQ(pools->jumbo()->slots().count(slot_pool::exhausted), 1);
}

TEST(BufferPools, OutstandingCountsEveryClass) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  EXPECT_EQ(pools->outstanding(), 0);
  auto s = pools->acquire(1);
  auto j = pools->acquire(300);
  auto d = pools->acquire(5000);
  ASSERT_TRUE(s && j && d);
  EXPECT_EQ(pools->outstanding(), 3);
  auto frozen_j = std::move(*j).freeze(3);
  EXPECT_EQ(pools->outstanding(), 3);
  frozen_j.reset();
  EXPECT_EQ(pools->outstanding(), 2);
}

TEST(BufferPools, StatsJsonHasEveryClass) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto d = pools->acquire(4096);
  ASSERT_TRUE(d);
  auto s = frozen(pools->standard(), "x");
  auto j = pools->stats();
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["standard"]["slot_size"], 256);
  EXPECT_EQ(j["standard"]["in_use"], 1);
  EXPECT_EQ(j["jumbo"]["slot_size"], 1024);
  EXPECT_EQ(j["jumbo"]["in_use"], 0);
  EXPECT_EQ(j["dedicated"]["live"], 1);
  EXPECT_EQ(j["dedicated"]["live_bytes"], 4096);
  EXPECT_GE(j["dedicated"]["allocations"].get<int64_t>(), 1);
}

TEST(BufferPools, DefaultConfigurationWorks) {
  // The defaults map 16 MiB + 8 MiB; skip prefaulting to stay quick.
  mayfly::buffer_pools_config cfg;
  cfg.prefault = false;
  auto pools = buffer_pools::make(cfg);
  ASSERT_TRUE(pools);
  EXPECT_EQ((*pools)->standard().slot_size(), 2048u);
  EXPECT_EQ((*pools)->standard().slots().capacity(), 8192u);
  ASSERT_NE((*pools)->jumbo(), nullptr);
  EXPECT_EQ((*pools)->jumbo()->slot_size(), 65536u);
  auto buf = (*pools)->acquire(1500);
  ASSERT_TRUE(buf);
  EXPECT_EQ(buf->capacity(), 2048u);
}

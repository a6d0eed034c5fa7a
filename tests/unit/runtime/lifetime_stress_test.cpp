// Lifetimes across threads: slices, binaries, arenas and writers shared or
// handed between threads, with bounded loop counts and no sleeps. Every test
// ends with all pool balances at zero (and the balance listener checks the
// process-wide counters).

#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <latch>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/send_packer.hpp>
#include "tests/unit/runtime/test_util.hpp"

using mayfly::arena;
using mayfly::slice;
using mayfly::slot_pool;
using mayfly::test::blocking_ring;
using mayfly::test::frozen;
using mayfly::test::make_arena_pool;
using mayfly::test::make_buffer_pool;
using mayfly::test::make_pools;
using mayfly::test::small_arena_config;
using mayfly::test::small_pools_config;

using namespace std::literals;

TEST(Lifetimes, CopiesOfOneSliceReleasedConcurrently) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  constexpr size_t kCopies = 64;
  constexpr auto kPayload = "shared payload bytes"sv;
  auto pool = make_buffer_pool(256, 256); // thread caches on
  ASSERT_TRUE(pool);
  std::vector<std::vector<slice>> copies(kThreads);
  std::barrier sync{kThreads + 1};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        sync.arrive_and_wait(); // copies are ready
        for (auto& c : copies[t]) {
          auto sub = c.sub(7, 14);
          auto again = sub;
          if (again != "payload"sv || c != kPayload)
            bad.fetch_add(1);
          c.reset();
        }
        sync.arrive_and_wait(); // all copies dropped
      }
    });
  for (int r = 0; r < kRounds; ++r) {
    // No ASSERT in this loop: the workers wait at the barrier.
    auto s = frozen(*pool, kPayload);
    EXPECT_TRUE(s.has_owner());
    for (auto& mine : copies)
      mine.assign(kCopies, s);
    EXPECT_EQ(s.use_count(), 1 + kThreads * kCopies);
    // Even rounds: this thread keeps a reference, so the binary must survive
    // the storm. Odd rounds: it lets go first, so whichever thread drops the
    // last copy returns the slot.
    bool keep = r % 2 == 0;
    if (!keep)
      s.reset();
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    if (keep) {
      EXPECT_EQ(s.use_count(), 1u);
      EXPECT_EQ(s, kPayload);
      EXPECT_EQ(pool->slots().in_use(), 1);
      s.reset();
    }
    EXPECT_EQ(pool->slots().in_use(), 0);
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(pool->slots().in_use(), 0);
  EXPECT_EQ(pool->slots().count(slot_pool::acquisitions), kRounds);
  EXPECT_GT(pool->slots().count(slot_pool::cross_thread_releases), 0);
}

TEST(Lifetimes, AcquireOnOneThreadReleaseOnOthers) {
  constexpr int kConsumers = 4;
  constexpr uint32_t kBinaries = 2000;
  auto pool = make_buffer_pool(512, 256);
  ASSERT_TRUE(pool);
  std::vector<std::unique_ptr<blocking_ring<slice, 32>>> rings;
  for (int c = 0; c < kConsumers; ++c)
    rings.push_back(std::make_unique<blocking_ring<slice, 32>>());
  std::atomic<int> bad{0};
  std::atomic<uint32_t> exhausted{0};
  std::thread producer{[&] {
    for (uint32_t i = 0; i < kBinaries; ++i) {
      auto buf = pool->try_acquire();
      if (!buf) {
        exhausted.fetch_add(1);
        // Keep the consumers' counts right: send empty slices.
        for (auto& ring : rings)
          ring->push(slice{});
        continue;
      }
      // Four 4-byte records, each carrying the sequence number.
      for (int c = 0; c < kConsumers; ++c)
        std::memcpy(buf.data() + 4 * c, &i, 4);
      auto whole = std::move(buf).freeze(4 * kConsumers);
      for (int c = 0; c + 1 < kConsumers; ++c)
        rings[c]->push(whole.split_to(4));
      rings[kConsumers - 1]->push(std::move(whole)); // keep no reference
    }
  }};
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c)
    consumers.emplace_back([&, c] {
      for (uint32_t i = 0; i < kBinaries; ++i) {
        auto s = rings[c]->pop();
        uint32_t seq = ~0u;
        if (s.size() == 4)
          std::memcpy(&seq, s.data(), 4);
        if (seq != i || !s.pooled())
          bad.fetch_add(1);
        auto copy = s; // a copy made and dropped here, too
        s.reset();
      }
    });
  producer.join();
  for (auto& th : consumers)
    th.join();
  EXPECT_EQ(exhausted.load(), 0u);
  EXPECT_EQ(bad.load(), 0);
  auto& slots = pool->slots();
  EXPECT_EQ(slots.in_use(), 0);
  EXPECT_EQ(slots.count(slot_pool::acquisitions), kBinaries);
  EXPECT_EQ(slots.count(slot_pool::releases), kBinaries);
  // Every binary was released by a consumer, never by the producer.
  EXPECT_EQ(slots.count(slot_pool::cross_thread_releases), kBinaries);
  EXPECT_EQ(pool->census().live, 0u);
}

TEST(Lifetimes, SlicesForwardedAlongAChainOfThreads) {
  // A handler forwards a sub-slice to an aggregator on another thread,
  // which detaches a copy and drops the original (the tally pattern).
  constexpr uint32_t kMessages = 1500;
  auto pool = make_buffer_pool(128, 256);
  ASSERT_TRUE(pool);
  blocking_ring<slice, 16> to_handler;
  blocking_ring<slice, 16> to_aggregator;
  std::atomic<int> bad{0};
  std::atomic<int64_t> detached_bytes{0};
  const std::string_view keys[] = {"key0", "key1", "key2", "key3", "key4",
                                   "key5", "key6", "key7", "key8", "key9"};
  std::thread receiver{[&] {
    for (uint32_t i = 0; i < kMessages; ++i) {
      std::string text = "NAME=";
      text += keys[i % 10];
      auto s = frozen(*pool, text);
      to_handler.push(std::move(s));
    }
  }};
  std::thread handler{[&] {
    for (uint32_t i = 0; i < kMessages; ++i) {
      auto s = to_handler.pop();
      auto text = s.view();
      auto eq = text.find('=');
      if (eq == std::string_view::npos) {
        bad.fetch_add(1);
        to_aggregator.push(slice{});
        continue;
      }
      to_aggregator.push(s.slice_ref(text.substr(eq + 1)));
    }
  }};
  std::thread aggregator{[&] {
    std::vector<slice> kept; // detached keys, unpinned
    kept.reserve(kMessages);
    for (uint32_t i = 0; i < kMessages; ++i) {
      auto key = to_aggregator.pop();
      if (key.view() != keys[i % 10])
        bad.fetch_add(1);
      if (i % 100 == 0) {
        kept.push_back(key.detach());
        detached_bytes.fetch_add(static_cast<int64_t>(key.size()));
      }
    }
    for (auto& k : kept)
      if (k.pooled() || k.view().substr(0, 3) != "key")
        bad.fetch_add(1);
  }};
  receiver.join();
  handler.join();
  aggregator.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(detached_bytes.load(), 15 * 4);
  EXPECT_EQ(pool->slots().in_use(), 0);
  EXPECT_EQ(pool->slots().count(slot_pool::acquisitions), kMessages);
}

TEST(Lifetimes, CensusWhileBinariesComeAndGo) {
  constexpr int kWorkers = 3;
  constexpr int kIterations = 2000;
  auto pools = make_pools(small_pools_config(128, 8));
  ASSERT_TRUE(pools);
  std::atomic<int> failures{0};
  std::latch start{kWorkers + 1};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w)
    workers.emplace_back([&, w] {
      start.arrive_and_wait();
      for (int i = 0; i < kIterations; ++i) {
        auto buf = pools->acquire(w == 0 && i % 10 == 0 ? 600 : 100);
        if (!buf) {
          failures.fetch_add(1);
          continue;
        }
        std::memset(buf->data(), 'x', 100);
        auto s = std::move(*buf).freeze(100);
        auto c = s.sub(10, 20);
        c.mark_holder(static_cast<uint32_t>(w + 1));
      }
    });
  start.arrive_and_wait();
  for (int i = 0; i < 200; ++i) {
    auto j = pools->stats();
    auto live = j["standard"]["binaries"]["live"].get<uint64_t>();
    if (live > 128)
      failures.fetch_add(1);
  }
  for (auto& th : workers)
    th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(pools->outstanding(), 0);
  EXPECT_EQ(pools->standard().census().live, 0u);
  EXPECT_EQ(pools->jumbo()->census().live, 0u);
}

TEST(Lifetimes, ArenasOnManyThreadsShareOnePool) {
  constexpr int kThreads = 4;
  constexpr int kIterations = 300;
  auto apool = make_arena_pool(small_arena_config(128, 4096, 1 << 20));
  auto bpool = make_buffer_pool(8);
  ASSERT_TRUE(apool && bpool);
  auto shared = frozen(*bpool, "kept in arenas");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        arena a{*apool};
        if (!a.leased()) {
          failures.fetch_add(1);
          continue;
        }
        for (int k = 0; k < 100; ++k)
          a.allocate_bytes(64); // two overflow blocks
        a.make<slice>(shared);
        auto* v = a.make<std::pmr::vector<int>>(&a);
        for (int k = 0; k < 100; ++k)
          v->push_back(k);
        if ((*v)[99] != 99)
          failures.fetch_add(1);
      }
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(shared.use_count(), 1u);
  EXPECT_EQ(apool->blocks_in_use(), 0);
  EXPECT_EQ(apool->leases_out(), 0);
  EXPECT_EQ(apool->count(mayfly::arena_pool::leases), kThreads * kIterations);
  EXPECT_EQ(apool->count(mayfly::arena_pool::heap_blocks), 0);
}

TEST(Lifetimes, PackersOnManyThreadsShareThePools) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 300;
  auto pools = make_pools(small_pools_config(256, 16));
  ASSERT_TRUE(pools);
  auto reply = frozen(pools->standard(), "shared zero-copy reply");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      mayfly::send_packer packer{*pools};
      std::string big(700, 'j');
      for (int r = 0; r < kRounds; ++r) {
        // What a sending thread queues: packed copies and a shared slice.
        slice queued[4] = {packer.pack("abc"),
                           packer.pack(std::string(200, 'b')), reply,
                           packer.pack(big)};
        for (auto& q : queued)
          if (!q.has_owner())
            failures.fetch_add(1);
      }
      packer.release();
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(reply.use_count(), 1u);
  reply.reset();
  EXPECT_EQ(pools->outstanding(), 0);
}

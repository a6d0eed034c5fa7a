#include <mayfly/runtime/arena.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <mayfly/runtime/heap.hpp>
#include "tests/unit/runtime/test_util.hpp"

using mayfly::arena;
using mayfly::arena_pool;
using mayfly::errc;
using mayfly::slice;
using mayfly::slot_pool;
using mayfly::test::frozen;
using mayfly::test::make_arena_pool;
using mayfly::test::make_buffer_pool;
using mayfly::test::small_arena_config;

namespace {

bool aligned(const void* p, size_t a) {
  return reinterpret_cast<uintptr_t>(p) % a == 0;
}

// Records its id into `log` when destroyed.
struct tracker {
  tracker(std::vector<int>* into, int tag) : log(into), id(tag) {
  }
  std::vector<int>* log;
  int id;
  ~tracker() {
    log->push_back(id);
  }
};

struct throws_on_construction {
  throws_on_construction() {
    throw std::runtime_error{"no"};
  }
  ~throws_on_construction() = default;
  std::string s;
};

} // namespace

// -- arena_pool ---------------------------------------------------------------

TEST(ArenaPool, MakeValidatesTheConfiguration) {
  auto cfg = small_arena_config();
  cfg.block_size = 100;
  auto tiny = arena_pool::make(cfg);
  ASSERT_FALSE(tiny);
  EXPECT_EQ(tiny.error().code, errc::invalid_config);

  cfg = small_arena_config();
  cfg.max_arena_bytes = cfg.block_size - 65; // less than one payload
  auto low_limit = arena_pool::make(cfg);
  ASSERT_FALSE(low_limit);
  EXPECT_EQ(low_limit.error().code, errc::invalid_config);

  cfg = small_arena_config(0);
  auto no_blocks = arena_pool::make(cfg);
  ASSERT_FALSE(no_blocks);
  EXPECT_EQ(no_blocks.error().code, errc::invalid_config);

  cfg = small_arena_config();
  cfg.max_arena_bytes = cfg.block_size - 64; // exactly one payload: fine
  EXPECT_TRUE(arena_pool::make(cfg));
}

TEST(ArenaPool, StatsJsonHasEveryField) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  {
    arena a{*pool};
    a.allocate_bytes(3000);
    a.allocate_bytes(3000);  // chains a second block
    a.allocate_bytes(10000); // larger than a block: a heap chunk
  }
  auto j = pool->stats();
  EXPECT_EQ(j["block_size"], 4096);
  EXPECT_EQ(j["capacity"], 8);
  EXPECT_EQ(j["blocks_in_use"], 0);
  EXPECT_EQ(j["blocks_peak"], 2);
  EXPECT_EQ(j["leases_out"], 0);
  EXPECT_EQ(j["leases"], 1);
  EXPECT_EQ(j["lease_failures"], 0);
  EXPECT_EQ(j["resets"], 1);
  EXPECT_EQ(j["overflow_blocks"], 1);
  EXPECT_EQ(j["heap_blocks"], 0);
  EXPECT_EQ(j["oversize_allocs"], 1);
  EXPECT_EQ(j["limit_failures"], 0);
  EXPECT_EQ(j["cleanups"], 0);
  EXPECT_EQ(j["max_arena_bytes"], 65536);
  EXPECT_GE(j["bytes_used"]["max"].get<uint64_t>(), 16000u);
  EXPECT_GE(j["bytes_used"]["p50"].get<uint64_t>(), 1u);
  EXPECT_LE(j["bytes_used"]["p99"].get<uint64_t>(),
            j["bytes_used"]["max"].get<uint64_t>());
}

// -- arena basics -------------------------------------------------------------

TEST(Arena, DefaultOwnsNothing) {
  arena a;
  EXPECT_FALSE(a.leased());
  EXPECT_EQ(a.try_allocate(1), nullptr);
  EXPECT_EQ(a.try_allocate(0), nullptr);
  EXPECT_THROW(a.allocate_bytes(8), std::bad_alloc);
  EXPECT_THROW(a.make<int>(1), std::bad_alloc);
  a.reset();
  EXPECT_EQ(a.blocks(), 0u);
  EXPECT_EQ(a.bytes_used(), 0u);
}

TEST(Arena, LeaseTakesOneBlockAndGivesItBack) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  {
    arena a{*pool};
    ASSERT_TRUE(a.leased());
    EXPECT_EQ(a.blocks(), 1u);
    EXPECT_EQ(a.overflow_blocks(), 0u);
    EXPECT_EQ(pool->blocks_in_use(), 1);
    EXPECT_EQ(pool->leases_out(), 1);
    auto* p = a.try_allocate(100);
    ASSERT_NE(p, nullptr);
    EXPECT_NE(pool->blocks().slot_of(p), slot_pool::kNoSlot);
    EXPECT_EQ(a.bytes_used(), 100u);
  }
  EXPECT_EQ(pool->blocks_in_use(), 0);
  EXPECT_EQ(pool->leases_out(), 0);
  EXPECT_EQ(pool->count(arena_pool::leases), 1);
  EXPECT_EQ(pool->count(arena_pool::returns), 1);
  EXPECT_EQ(pool->count(arena_pool::resets), 1); // the final one
}

TEST(Arena, AlignmentIsHonoured) {
  auto pool = make_arena_pool(small_arena_config(4, 16384));
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  for (size_t align : {1, 2, 4, 8, 16, 64, 4096}) {
    a.allocate_bytes(1, 1); // misalign the bump pointer
    auto* p = a.try_allocate(24, align);
    ASSERT_NE(p, nullptr) << align;
    EXPECT_TRUE(aligned(p, align)) << align;
    EXPECT_NE(pool->blocks().slot_of(p), slot_pool::kNoSlot) << align;
    std::memset(p, 0xee, 24);
  }
  auto* dflt = a.try_allocate(8);
  EXPECT_TRUE(aligned(dflt, alignof(std::max_align_t)));
  EXPECT_EQ(pool->count(arena_pool::oversize_allocs), 0);
}

TEST(Arena, AlignmentIsHonouredInNewAndHeapBlocks) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  a.allocate_bytes(4000, 1);
  auto* in_new_block = a.try_allocate(100, 256); // does not fit: new block
  ASSERT_NE(in_new_block, nullptr);
  EXPECT_TRUE(aligned(in_new_block, 256));
  EXPECT_EQ(a.overflow_blocks(), 1u);
  std::memset(in_new_block, 1, 100);
  auto* big = a.try_allocate(5000, 4096); // larger than a block: heap chunk
  ASSERT_NE(big, nullptr);
  EXPECT_TRUE(aligned(big, 4096));
  EXPECT_EQ(pool->blocks().slot_of(big), slot_pool::kNoSlot);
  std::memset(big, 2, 5000);
  EXPECT_EQ(pool->count(arena_pool::oversize_allocs), 1);
}

TEST(Arena, OverflowChainsABlockAndIsCounted) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  auto* first = a.allocate_bytes(3000);
  auto* second = a.allocate_bytes(3000); // 6000 > 4032 payload
  EXPECT_NE(pool->blocks().slot_of(first), pool->blocks().slot_of(second));
  EXPECT_NE(pool->blocks().slot_of(second), slot_pool::kNoSlot);
  EXPECT_EQ(a.blocks(), 2u);
  EXPECT_EQ(a.overflow_blocks(), 1u);
  EXPECT_EQ(pool->count(arena_pool::overflow_blocks), 1);
  EXPECT_EQ(pool->count(arena_pool::heap_blocks), 0);
  EXPECT_EQ(pool->blocks_in_use(), 2);
  EXPECT_GE(a.bytes_used(), 6000u);
  EXPECT_LE(a.bytes_used(), 6000u + 16u);
  std::memset(first, 1, 3000);
  std::memset(second, 2, 3000);
}

TEST(Arena, OversizeRequestGoesToAHeapChunk) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  auto* small = a.allocate_bytes(64);
  auto heap_before = mayfly::heap_allocations();
  auto* big = a.allocate_bytes(10000);
  EXPECT_EQ(pool->blocks().slot_of(big), slot_pool::kNoSlot);
  EXPECT_EQ(pool->count(arena_pool::oversize_allocs), 1);
  EXPECT_EQ(mayfly::heap_allocations(), heap_before + 1);
  EXPECT_EQ(mayfly::heap_blocks_live(), 1);
  EXPECT_EQ(a.blocks(), 1u); // the current block is still the first one
  std::memset(big, 3, 10000);
  // Small requests keep bumping in the current block.
  auto* after = a.allocate_bytes(64);
  EXPECT_EQ(pool->blocks().slot_of(after), pool->blocks().slot_of(small));
  EXPECT_GE(a.bytes_used(), 10128u);
  a.reset();
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
}

TEST(Arena, EmptyPoolOverflowsIntoTheHeap) {
  auto pool = make_arena_pool(small_arena_config(1));
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  a.allocate_bytes(3000);
  auto* p = a.allocate_bytes(3000);
  EXPECT_EQ(pool->blocks().slot_of(p), slot_pool::kNoSlot);
  EXPECT_EQ(pool->count(arena_pool::heap_blocks), 1);
  EXPECT_EQ(pool->count(arena_pool::overflow_blocks), 0);
  EXPECT_EQ(a.blocks(), 2u);
  EXPECT_EQ(mayfly::heap_blocks_live(), 1);
  std::memset(p, 4, 3000);
  a.reset();
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
  EXPECT_EQ(pool->blocks_in_use(), 1);
}

// -- the per-arena limit ------------------------------------------------------

TEST(Arena, LimitRefusesAllocations) {
  auto pool = make_arena_pool(small_arena_config(8, 4096, 8192));
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  EXPECT_EQ(a.try_allocate(9000), nullptr);
  EXPECT_EQ(pool->count(arena_pool::limit_failures), 1);
  EXPECT_THROW(a.allocate_bytes(9000), std::bad_alloc);
  struct big {
    char bytes[9000];
  };
  EXPECT_THROW(a.make<big>(), std::bad_alloc);
  EXPECT_THROW(a.make_array<uint64_t>(2000), std::bad_alloc);
  EXPECT_EQ(pool->count(arena_pool::limit_failures), 4);
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
  // Within the limit everything still works.
  EXPECT_NE(a.try_allocate(4000), nullptr);
  EXPECT_NE(a.try_allocate(4000), nullptr);
  EXPECT_EQ(a.try_allocate(1000), nullptr);
  a.reset(); // a reset gives the whole budget back
  EXPECT_NE(a.try_allocate(8000), nullptr);
}

TEST(Arena, NeverHandsOutMoreThanTheLimit) {
  // "Most bytes one arena may hand out before allocation fails": the limit
  // holds for the fast path too, not only when a block is chained.
  constexpr size_t kLimit = 10000;
  auto pool = make_arena_pool(small_arena_config(8, 4096, kLimit));
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  size_t served = 0;
  for (size_t i = 0; i < kLimit / 100 + 10; ++i) {
    if (a.try_allocate(100, 1) == nullptr)
      break;
    served += 100;
  }
  EXPECT_LE(served, kLimit);
  EXPECT_LE(a.bytes_used(), kLimit);
  EXPECT_GT(served, kLimit - 4096); // the limit, not the pool, stopped it
  EXPECT_GE(pool->count(arena_pool::limit_failures), 1);
}

TEST(Arena, NeverHandsOutMoreThanTheLimitAfterAHeapChunk) {
  constexpr size_t kLimit = 10000;
  auto pool = make_arena_pool(small_arena_config(8, 4096, kLimit));
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  ASSERT_NE(a.try_allocate(100, 1), nullptr);
  ASSERT_NE(a.try_allocate(8000, 1), nullptr); // heap chunk: 8100 used
  size_t served = 8100;
  for (size_t i = 0; i < kLimit / 100 + 10; ++i) {
    if (a.try_allocate(100, 1) == nullptr)
      break;
    served += 100;
  }
  EXPECT_LE(served, kLimit);
  EXPECT_LE(a.bytes_used(), kLimit);
}

TEST(Arena, HugeRequestsFailInsteadOfWrapping) {
  // Sizes near SIZE_MAX (an underflowed length from a hostile datagram)
  // must fail, not wrap the bump pointer around.
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  a.allocate_bytes(16);
  for (size_t align : {1, 16, 4096}) {
    EXPECT_EQ(a.try_allocate(SIZE_MAX, align), nullptr) << align;
    EXPECT_EQ(a.try_allocate(SIZE_MAX - 8, align), nullptr) << align;
    EXPECT_EQ(a.try_allocate(SIZE_MAX - 5000, align), nullptr) << align;
  }
  EXPECT_THROW(a.make_array<char>(SIZE_MAX - 8), std::bad_alloc);
  EXPECT_THROW(a.make_array<uint64_t>(SIZE_MAX / 8), std::bad_alloc);
  EXPECT_THROW(a.make_array<uint64_t>(SIZE_MAX / 4), std::bad_alloc);
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
  EXPECT_EQ(a.bytes_used(), 16u);
  EXPECT_EQ(a.blocks(), 1u);
  auto* p = a.try_allocate(16);
  ASSERT_NE(p, nullptr);
  EXPECT_NE(pool->blocks().slot_of(p), slot_pool::kNoSlot);
  EXPECT_EQ(a.bytes_used(), 32u);
}

// -- reset and cleanups -------------------------------------------------------

TEST(Arena, ResetRunsCleanupsLifoExactlyOnce) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  std::vector<int> log;
  {
    arena a{*pool};
    ASSERT_TRUE(a.leased());
    a.make<tracker>(&log, 1);
    a.make<tracker>(&log, 2);
    a.make<tracker>(&log, 3);
    EXPECT_TRUE(log.empty());
    a.reset();
    EXPECT_EQ(log, (std::vector<int>{3, 2, 1}));
    EXPECT_EQ(pool->count(arena_pool::cleanups), 3);
    a.reset();
    EXPECT_EQ(log.size(), 3u);
    a.make<tracker>(&log, 4);
  } // destruction runs pending cleanups too
  EXPECT_EQ(log, (std::vector<int>{3, 2, 1, 4}));
  EXPECT_EQ(pool->count(arena_pool::cleanups), 4);
}

TEST(Arena, TriviallyDestructibleObjectsNeedNoCleanup) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  auto* x = a.make<int>(42);
  EXPECT_EQ(*x, 42);
  struct point {
    double x, y;
  };
  auto* p = a.make<point>(point{1.5, 2.5});
  EXPECT_EQ(p->y, 2.5);
  a.reset();
  EXPECT_EQ(pool->count(arena_pool::cleanups), 0);
}

TEST(Arena, ThrowingConstructorRegistersNoCleanup) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  EXPECT_THROW(a.make<throws_on_construction>(), std::runtime_error);
  a.reset();
  EXPECT_EQ(pool->count(arena_pool::cleanups), 0);
}

TEST(Arena, ResetKeepsTheFirstBlockAndReturnsTheRest) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  auto* first = a.allocate_bytes(3000);
  a.allocate_bytes(3000);
  a.allocate_bytes(3000);
  a.allocate_bytes(20000); // heap chunk
  EXPECT_EQ(a.blocks(), 3u);
  EXPECT_EQ(pool->blocks_in_use(), 3);
  EXPECT_EQ(mayfly::heap_blocks_live(), 1);
  a.reset();
  EXPECT_EQ(a.blocks(), 1u);
  EXPECT_EQ(a.bytes_used(), 0u);
  EXPECT_EQ(pool->blocks_in_use(), 1);
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
  EXPECT_EQ(a.allocate_bytes(3000), first); // bumping restarts at the front
  EXPECT_EQ(a.overflow_blocks(), 2u);       // over the arena's life
}

TEST(Arena, HighWaterIsRecordedAtReset) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  a.allocate_bytes(1000, 1);
  EXPECT_EQ(a.high_water(), 1000u);
  a.reset();
  a.allocate_bytes(10, 1);
  EXPECT_EQ(a.high_water(), 1000u);
  EXPECT_EQ(pool->high_water().count(), 1u);
  EXPECT_EQ(pool->high_water().max(), 1000u);
}

TEST(Arena, CopyAndMakeArray) {
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  std::string source = "decoded field";
  auto v = a.copy(source);
  EXPECT_EQ(v, "decoded field");
  EXPECT_NE(v.data(), source.data());
  EXPECT_NE(pool->blocks().slot_of(v.data()), slot_pool::kNoSlot);
  EXPECT_TRUE(a.copy("").empty());
  auto* arr = a.make_array<uint64_t>(10);
  EXPECT_TRUE(aligned(arr, alignof(uint64_t)));
  for (int i = 0; i < 10; ++i)
    arr[i] = static_cast<uint64_t>(i);
  EXPECT_EQ(arr[9], 9u);
}

// -- slices and pmr containers in an arena ------------------------------------

TEST(Arena, NoRefcountLeaksThroughAnArena) {
  auto buffers = make_buffer_pool(2);
  auto pool = make_arena_pool();
  ASSERT_TRUE(buffers && pool);
  auto s = frozen(*buffers, "request payload");
  {
    arena a{*pool};
    ASSERT_TRUE(a.leased());
    auto* kept = a.make<slice>(s);
    EXPECT_EQ(s.use_count(), 2u);
    for (size_t i = 0; i < 50; ++i)
      a.make<slice>(s.sub(i % s.size(), s.size()));
    EXPECT_EQ(s.use_count(), 52u);
    EXPECT_EQ(*kept, "request payload");
    a.reset();
    EXPECT_EQ(s.use_count(), 1u);
    a.make<slice>(s.sub(0, 7)); // released when the arena dies
    EXPECT_EQ(s.use_count(), 2u);
  }
  EXPECT_EQ(s.use_count(), 1u);
  s.reset();
  EXPECT_EQ(buffers->slots().in_use(), 0);
}

TEST(Arena, PmrContainersAllocateFromTheArena) {
  auto pool = make_arena_pool(small_arena_config(8, 16384));
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  std::pmr::vector<int> v{&a};
  for (int i = 0; i < 1000; ++i)
    v.push_back(i);
  EXPECT_EQ(v[999], 999);
  EXPECT_NE(pool->blocks().slot_of(v.data()), slot_pool::kNoSlot);
  EXPECT_GE(a.bytes_used(), 1000 * sizeof(int));
  std::pmr::string str{&a};
  str.assign(200, 'z'); // past the small-string buffer
  EXPECT_NE(pool->blocks().slot_of(str.data()), slot_pool::kNoSlot);
  EXPECT_TRUE(a.is_equal(a));
  arena other{*pool};
  EXPECT_FALSE(a.is_equal(other));
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
}

TEST(Arena, PmrContainersMadeInTheArenaAreDestroyedAtReset) {
  auto pool = make_arena_pool(small_arena_config(8, 16384));
  auto buffers = make_buffer_pool(2);
  ASSERT_TRUE(pool && buffers);
  auto s = frozen(*buffers, "abc");
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  auto* v = a.make<std::pmr::vector<slice>>(&a);
  v->reserve(16);
  for (int i = 0; i < 16; ++i)
    v->push_back(s);
  EXPECT_EQ(s.use_count(), 17u);
  EXPECT_NE(pool->blocks().slot_of(v->data()), slot_pool::kNoSlot);
  a.reset(); // the vector's destructor runs: its slices are released
  EXPECT_EQ(s.use_count(), 1u);
}

TEST(Arena, PmrAllocationPastTheLimitThrows) {
  auto pool = make_arena_pool(small_arena_config(8, 4096, 8192));
  ASSERT_TRUE(pool);
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  std::pmr::vector<char> v{&a};
  EXPECT_THROW(v.reserve(9000), std::bad_alloc);
  EXPECT_NO_THROW(v.reserve(4000));
}

// -- leasing and threads ------------------------------------------------------

TEST(Arena, LeaseFailsWhenThePoolIsExhausted) {
  auto pool = make_arena_pool(small_arena_config(2));
  ASSERT_TRUE(pool);
  arena a{*pool};
  arena b{*pool};
  ASSERT_TRUE(a.leased() && b.leased());
  {
    arena c{*pool};
    EXPECT_FALSE(c.leased());
    EXPECT_EQ(c.blocks(), 0u);
    EXPECT_EQ(c.try_allocate(8), nullptr);
    EXPECT_THROW(c.allocate_bytes(8), std::bad_alloc);
    EXPECT_EQ(pool->count(arena_pool::lease_failures), 1);
    EXPECT_EQ(pool->leases_out(), 2);
  }
  EXPECT_EQ(pool->count(arena_pool::returns), 0);
  EXPECT_EQ(pool->leases_out(), 2);
  EXPECT_EQ(pool->blocks_in_use(), 2);
}

TEST(Arena, DestroyedOnAnotherThread) {
  auto pool = make_arena_pool(); // 8 blocks: no thread cache
  auto buffers = make_buffer_pool(2);
  ASSERT_TRUE(pool && buffers);
  auto s = frozen(*buffers, "xyz");
  auto a = std::make_unique<arena>(*pool);
  ASSERT_TRUE(a->leased());
  a->allocate_bytes(3000);
  a->allocate_bytes(3000); // an overflow block
  a->make<slice>(s);
  EXPECT_EQ(pool->blocks_in_use(), 2);
  std::thread other{[moved = std::move(a)]() mutable { moved.reset(); }};
  other.join();
  EXPECT_EQ(pool->blocks_in_use(), 0);
  EXPECT_EQ(pool->blocks().count(slot_pool::cross_thread_releases), 2);
  EXPECT_EQ(pool->count(arena_pool::returns), 1);
  EXPECT_EQ(s.use_count(), 1u);
}

TEST(Arena, MigratesBetweenThreads) {
  // Created on one thread, used on a second, destroyed on a third: an arena
  // keeps no thread-local state.
  auto pool = make_arena_pool();
  ASSERT_TRUE(pool);
  std::unique_ptr<arena> a;
  std::thread creator{[&] { a = std::make_unique<arena>(*pool); }};
  creator.join();
  ASSERT_TRUE(a && a->leased());
  std::vector<int> log;
  std::thread user{[&] {
    for (int i = 0; i < 100; ++i)
      a->allocate_bytes(100);
    a->make<tracker>(&log, 7);
  }};
  user.join();
  EXPECT_GE(a->blocks(), 3u);
  std::thread destroyer{[&] { a.reset(); }};
  destroyer.join();
  EXPECT_EQ(log, std::vector<int>{7});
  EXPECT_EQ(pool->blocks_in_use(), 0);
  EXPECT_EQ(pool->leases_out(), 0);
}

// -- arena_lease and release
// ----------------------------------------------------

TEST(ArenaLease, LeaseThenBuildTheArena) {
  auto pool = make_arena_pool(small_arena_config(2));
  ASSERT_TRUE(pool);
  auto lease = pool->lease();
  ASSERT_TRUE(lease);
  EXPECT_EQ(pool->blocks_in_use(), 1);
  EXPECT_EQ(pool->leases_out(), 1);
  {
    arena a{std::move(lease)};
    EXPECT_FALSE(lease); // NOLINT(bugprone-use-after-move)
    ASSERT_TRUE(a.leased());
    EXPECT_EQ(a.blocks(), 1u);
    EXPECT_NE(a.try_allocate(64), nullptr);
    EXPECT_EQ(pool->blocks_in_use(), 1); // the leased block, not another
  }
  EXPECT_EQ(pool->blocks_in_use(), 0);
  EXPECT_EQ(pool->leases_out(), 0);
  EXPECT_EQ(pool->count(arena_pool::leases), 1);
  EXPECT_EQ(pool->count(arena_pool::returns), 1);
}

TEST(ArenaLease, UnusedLeaseReturnsItsBlock) {
  auto pool = make_arena_pool(small_arena_config(1));
  ASSERT_TRUE(pool);
  {
    auto lease = pool->lease();
    ASSERT_TRUE(lease);
    EXPECT_FALSE(pool->lease()); // the only block is taken
    EXPECT_EQ(pool->count(arena_pool::lease_failures), 1);
  }
  EXPECT_EQ(pool->blocks_in_use(), 0);
  EXPECT_EQ(pool->leases_out(), 0);
  EXPECT_EQ(pool->count(arena_pool::returns), 1);
  EXPECT_TRUE(pool->lease()); // and it can be leased again
}

TEST(ArenaLease, MoveAssignmentReturnsTheOverwrittenBlock) {
  auto pool = make_arena_pool(small_arena_config(2));
  ASSERT_TRUE(pool);
  auto a = pool->lease();
  auto b = pool->lease();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(pool->blocks_in_use(), 2);
  a = std::move(b);
  EXPECT_TRUE(a);
  EXPECT_FALSE(b); // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(pool->blocks_in_use(), 1);
  mayfly::arena_lease c{std::move(a)};
  EXPECT_TRUE(c);
  EXPECT_FALSE(a); // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(pool->blocks_in_use(), 1);
}

TEST(ArenaLease, EmptyLeaseMakesAnUnleasedArena) {
  auto pool = make_arena_pool(small_arena_config(1));
  ASSERT_TRUE(pool);
  auto held = pool->lease();
  arena a{pool->lease()}; // exhausted: empty lease
  EXPECT_FALSE(a.leased());
  EXPECT_EQ(a.try_allocate(8), nullptr);
  arena b{mayfly::arena_lease{}};
  EXPECT_FALSE(b.leased());
  EXPECT_EQ(b.try_allocate(8), nullptr);
  EXPECT_EQ(pool->leases_out(), 1);
}

TEST(Arena, ReleaseReturnsEverythingOnceAndDisablesTheArena) {
  auto pool = make_arena_pool();
  auto buffers = make_buffer_pool(2);
  ASSERT_TRUE(pool && buffers);
  auto s = frozen(*buffers, "held");
  std::vector<int> log;
  arena a{*pool};
  ASSERT_TRUE(a.leased());
  a.allocate_bytes(3000);
  a.allocate_bytes(3000);  // overflow block
  a.allocate_bytes(10000); // heap chunk
  a.make<slice>(s);
  a.make<tracker>(&log, 1);
  EXPECT_EQ(pool->blocks_in_use(), 2);
  mayfly::detail::release_arena(a); // what the runtime does at a handler's exit
  EXPECT_FALSE(a.leased());
  EXPECT_EQ(a.blocks(), 0u);
  EXPECT_EQ(a.bytes_used(), 0u);
  EXPECT_EQ(log, std::vector<int>{1});
  EXPECT_EQ(s.use_count(), 1u);
  EXPECT_EQ(pool->blocks_in_use(), 0);
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
  EXPECT_EQ(pool->leases_out(), 0);
  EXPECT_EQ(a.try_allocate(8), nullptr);
  EXPECT_THROW(a.allocate_bytes(8), std::bad_alloc);
  mayfly::detail::release_arena(a); // idempotent: nothing runs or returns twice
  EXPECT_EQ(log.size(), 1u);
  EXPECT_EQ(pool->count(arena_pool::returns), 1);
  EXPECT_EQ(pool->count(arena_pool::cleanups), 2);
}

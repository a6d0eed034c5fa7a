// The datagram path allocates nothing in steady state: after a warm-up
// iteration, N iterations of each stage make zero calls to malloc/operator
// new (tests/support/alloc_counter.hpp) and zero calls to mayfly's own
// counted heap (mayfly::heap_allocations()).
//
// The counter replaces malloc, which ASan and TSan own: under those
// sanitizers these tests skip. The release preset runs them.

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <new>
#include <string>
#include <string_view>
#include <thread>

#include <malloc.h>

#include <gtest/gtest.h>

#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/heap.hpp>
#include <mayfly/runtime/send_packer.hpp>
#include "tests/support/alloc_counter.hpp"
#include "tests/unit/runtime/test_util.hpp"

using mayfly::arena;
using mayfly::slice;
using mayfly::test::allocation_count;
using mayfly::test::blocking_ring;
using mayfly::test::counting_enabled;

using namespace std::literals;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#  define MAYFLY_TEST_SANITIZED 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#    define MAYFLY_TEST_SANITIZED 1
#  endif
#endif

#define SKIP_UNLESS_COUNTING()                                                 \
  do {                                                                         \
    if (!counting_enabled())                                                   \
      GTEST_SKIP() << "allocation counting is off in sanitizer builds (ASan/"  \
                      "TSan own malloc); the release preset runs this test";   \
  } while (false)

namespace {

constexpr int kIterations = 1000;

// Keeps the compiler from eliding an allocation whose result is unused.
void escape(void* p) {
  asm volatile("" : : "g"(p) : "memory");
}

struct snapshot {
  int64_t allocs = allocation_count();
  int64_t heap = mayfly::heap_allocations();
};

// -- the stages of the datagram path ------------------------------------------

// A received binary: acquire, write, freeze, copy, sub-slice, slice_ref,
// release.
struct binary_stage {
  std::unique_ptr<mayfly::buffer_pool> pool
    = mayfly::test::make_buffer_pool(256, 2048); // 256 slots: thread caches on

  bool run() {
    auto buf = pool->try_acquire();
    if (!buf)
      return false;
    constexpr auto text = "GET key=value;ttl=30"sv;
    std::memcpy(buf.data(), text.data(), text.size());
    auto s = std::move(buf).freeze(text.size());
    slice copies[4] = {s, s, s, s};
    auto sub = s.sub(4, 13);
    auto view = sub.view();
    auto value = sub.slice_ref(view.substr(view.find('=') + 1));
    auto head = copies[1].split_to(3);
    auto tail = copies[2].split_off(13);
    copies[3] = copies[0];
    copies[0].reset();
    return value == "value"sv && head == "GET"sv && tail == ";ttl=30"sv
           && s.use_count() == 8;
  }
};

// A slice forwarded to another thread through a preallocated ring.
struct forward_stage {
  std::unique_ptr<mayfly::buffer_pool> pool
    = mayfly::test::make_buffer_pool(256, 2048);
  blocking_ring<slice, 64> ring;
  blocking_ring<int, 4> acks;
  std::thread consumer;
  std::atomic<int> bad{0};

  // The consumer drops `n` slices per batch and acks each batch; a batch of
  // size 0 stops it.
  forward_stage() {
    consumer = std::thread{[this] {
      for (int batch = 0; batch < 1 + kIterations + 1; ++batch) {
        int n = static_cast<int>(ring.pop().size());
        if (n == 0)
          return;
        for (int i = 0; i < n; ++i) {
          auto s = ring.pop();
          if (s.size() != 16 || !s.pooled())
            bad.fetch_add(1);
        }
        acks.push(n);
      }
    }};
  }

  ~forward_stage() {
    ring.push(slice{}); // stop
    consumer.join();
  }

  bool run() {
    constexpr int kBatch = 8;
    auto buf = pool->try_acquire();
    if (!buf)
      return false;
    std::memset(buf.data(), 'f', kBatch + 16 * kBatch);
    auto all = std::move(buf).freeze(kBatch + 16 * kBatch);
    ring.push(all.split_to(kBatch)); // the batch header: its size is the count
    for (int i = 0; i + 1 < kBatch; ++i)
      ring.push(all.split_to(16));
    ring.push(std::move(all)); // the last 16 bytes: this thread keeps nothing
    return acks.pop() == kBatch;
  }
};

// A handler's arena: lease, allocate many, make<slice>, pmr containers,
// reset, destroy.
struct arena_stage {
  std::unique_ptr<mayfly::arena_pool> pool = mayfly::test::make_arena_pool(
    mayfly::test::small_arena_config(64, 4096, 1 << 20));
  std::unique_ptr<mayfly::buffer_pool> buffers
    = mayfly::test::make_buffer_pool(4);
  slice request = mayfly::test::frozen(*buffers, "request payload");

  bool run() {
    arena a{*pool};
    if (!a.leased())
      return false;
    bool ok = true;
    for (int i = 0; i < 200; ++i) // 9600 bytes: two overflow blocks
      escape(a.allocate_bytes(48));
    auto* kept = a.make<slice>(request.sub(0, 7));
    auto* v = a.make<std::pmr::vector<int>>(&a);
    v->reserve(256);
    for (int i = 0; i < 256; ++i)
      v->push_back(i);
    std::pmr::string str{&a};
    str.assign(300, 'q');
    auto copy = a.copy("decoded field");
    ok = ok && *kept == "request"sv && (*v)[255] == 255 && str.size() == 300
         && copy == "decoded field"sv && request.use_count() == 2;
    a.reset();
    ok = ok && request.use_count() == 1 && a.blocks() == 1;
    escape(a.allocate_bytes(100));
    a.make<slice>(request);
    return ok;
  }
};

// The send side: packed, jumbo, zero-copy and empty replies queued as a
// reply batch holds them, then dropped as after a sendmmsg.
struct packer_stage {
  std::unique_ptr<mayfly::buffer_pools> pools
    = mayfly::test::make_pools(mayfly::test::small_pools_config(64, 4));
  mayfly::send_packer packer{*pools};
  slice reply = mayfly::test::frozen(pools->standard(), "zero-copy reply");
  char big[700] = {};
  char small[100] = {};
  slice queued[32];

  bool run() {
    bool ok = true;
    size_t n = 0;
    for (size_t i = 0; i < 8; ++i)
      queued[n++] = packer.pack(std::string_view{small, 10 + 10 * i});
    queued[n++] = packer.pack(std::string_view{big, sizeof(big)});
    queued[n++] = reply;
    queued[n++] = packer.pack(""sv);
    for (size_t i = 0; i < n; ++i)
      ok = ok && queued[i].has_owner();
    ok = ok && queued[8].size() == sizeof(big);
    for (size_t i = 0; i < n; ++i)
      queued[i].reset();
    return ok;
  }

  ~packer_stage() {
    packer.release();
  }
};

// Runs `stage` once to warm up, then kIterations times under the counters.
template <class Stage>
void expect_no_allocations(Stage& stage) {
  ASSERT_TRUE(stage.run()) << "warm-up iteration failed";
  int failures = 0;
  snapshot before;
  for (int i = 0; i < kIterations; ++i)
    failures += stage.run() ? 0 : 1;
  snapshot after;
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(after.allocs - before.allocs, 0)
    << "malloc/operator new calls in " << kIterations << " iterations";
  EXPECT_EQ(after.heap - before.heap, 0)
    << "mayfly::heap_allocations() in " << kIterations << " iterations";
}

} // namespace

// -- the counter itself -------------------------------------------------------

TEST(AllocationCount, EnabledExactlyWithoutSanitizers) {
#ifdef MAYFLY_TEST_SANITIZED
  EXPECT_FALSE(counting_enabled());
  EXPECT_EQ(allocation_count(), 0);
#else
  EXPECT_TRUE(counting_enabled());
  EXPECT_GT(allocation_count(), 0); // gtest itself has allocated by now
#endif
}

TEST(AllocationCount, CountsEveryAllocationFunction) {
  SKIP_UNLESS_COUNTING();
  auto counted = [](auto&& fn) {
    auto before = allocation_count();
    fn();
    return allocation_count() - before;
  };
  EXPECT_EQ(counted([] {
              void* p = std::malloc(24);
              escape(p);
              std::free(p);
            }),
            1);
  EXPECT_EQ(counted([] {
              void* p = std::calloc(3, 8);
              escape(p);
              std::free(p);
            }),
            1);
  EXPECT_EQ(counted([] {
              void* p = std::realloc(nullptr, 8);
              escape(p);
              p = std::realloc(p, 4096);
              escape(p);
              std::free(p);
            }),
            2);
  int rc = -1;
  EXPECT_EQ(counted([&rc] {
              void* p = nullptr;
              rc = posix_memalign(&p, 64, 100);
              escape(p);
              std::free(p);
            }),
            1);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(counted([] {
              void* p = std::aligned_alloc(64, 128);
              escape(p);
              std::free(p);
            }),
            1);
  EXPECT_EQ(counted([] {
              void* p = memalign(128, 10);
              escape(p);
              std::free(p);
            }),
            1);
  EXPECT_EQ(counted([] {
              auto* p = new int(5);
              escape(p);
              delete p;
            }),
            1);
  EXPECT_EQ(counted([] {
              auto* p = new int[10];
              escape(p);
              delete[] p;
            }),
            1);
  uintptr_t wide_addr = 1;
  EXPECT_EQ(counted([&wide_addr] {
              struct alignas(128) wide {
                char c[128];
              };
              auto* p = new wide;
              wide_addr = reinterpret_cast<uintptr_t>(p);
              escape(p);
              delete p;
            }),
            1);
  EXPECT_EQ(wide_addr % 128, 0u);
  EXPECT_EQ(counted([] {
              auto* p = new (std::nothrow) long(1);
              escape(p);
              delete p;
            }),
            1);
  EXPECT_GE(counted([] {
              std::string s(200, 'x');
              escape(s.data());
            }),
            1);
  auto frees = mayfly::test::deallocation_count();
  std::free(nullptr);
  EXPECT_EQ(mayfly::test::deallocation_count(), frees);
}

TEST(AllocationCount, MayflyHeapCallsAreNotHidden) {
  // A dedicated binary is one aligned_alloc: mayfly's own count
  // (heap_allocations) and the process-wide interposer both see it. mayfly
  // links no allocator of its own, so nothing it allocates can bypass the
  // interposer.
  SKIP_UNLESS_COUNTING();
  snapshot before;
  auto s = slice::copy_of("dedicated");
  snapshot after;
  EXPECT_EQ(after.heap - before.heap, 1);
  EXPECT_EQ(after.allocs - before.allocs, 1);
}

// -- the datagram path --------------------------------------------------------

TEST(AllocationCount, BinaryLifecycleAllocatesNothing) {
  SKIP_UNLESS_COUNTING();
  binary_stage stage;
  ASSERT_TRUE(stage.pool);
  expect_no_allocations(stage);
  EXPECT_EQ(stage.pool->slots().in_use(), 0);
}

TEST(AllocationCount, CrossThreadForwardAllocatesNothing) {
  SKIP_UNLESS_COUNTING();
  forward_stage stage;
  ASSERT_TRUE(stage.pool);
  expect_no_allocations(stage);
  EXPECT_EQ(stage.bad.load(), 0);
  EXPECT_EQ(stage.pool->slots().in_use(), 0);
  // The consumer dropped the last reference of every binary.
  EXPECT_EQ(stage.pool->slots().count(mayfly::slot_pool::cross_thread_releases),
            kIterations + 1);
}

TEST(AllocationCount, ArenaLifecycleAllocatesNothing) {
  SKIP_UNLESS_COUNTING();
  arena_stage stage;
  ASSERT_TRUE(stage.pool && stage.buffers);
  expect_no_allocations(stage);
  EXPECT_EQ(stage.pool->blocks_in_use(), 0);
  EXPECT_GT(stage.pool->count(mayfly::arena_pool::overflow_blocks), 0);
  EXPECT_EQ(stage.pool->count(mayfly::arena_pool::heap_blocks), 0);
}

TEST(AllocationCount, SendPackerAllocatesNothing) {
  SKIP_UNLESS_COUNTING();
  packer_stage stage;
  ASSERT_TRUE(stage.pools);
  expect_no_allocations(stage);
  EXPECT_GT(stage.packer.counts().buffers, 1u);
}

TEST(AllocationCount, WholeDatagramPathAllocatesNothing) {
  // All stages interleaved, as one request would run them.
  SKIP_UNLESS_COUNTING();
  struct all_stages {
    binary_stage binary;
    forward_stage forward;
    arena_stage arena;
    packer_stage packer;
    bool run() {
      return binary.run() && forward.run() && arena.run() && packer.run();
    }
  } stage;
  expect_no_allocations(stage);
}

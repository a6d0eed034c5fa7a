/// @file
/// Micro-benchmarks of `mayfly::arena` against the general-purpose allocators
/// a handler could use instead.
///
/// Allocators compared, all on one thread, all on objects of 16-64 bytes
/// (a fixed pseudo-random mix of 16, 24, ..., 64; mean 40 B):
///
/// - `arena`: `arena::try_allocate` (the inline bump path) on an arena leased
///   from an `arena_pool` with default sizes (16 KiB blocks);
/// - `arena_pmr`: the same arena through `std::pmr::memory_resource` (what
///   a `std::pmr` container in a handler calls: one virtual call);
/// - `malloc`: plain `malloc`/`free` as linked into this executable. Debian's
///   libmimalloc.so exports `malloc` and mayfly links it, so this is mimalloc
///   reached through the override (see the "malloc" context line);
/// - `glibc`: glibc's own allocator, called as `__libc_malloc`/`__libc_free`
///   (what a service not linking mimalloc would get);
/// - `mimalloc`: `mi_malloc`/`mi_free` called directly;
/// - `pmr_mono`: `std::pmr::monotonic_buffer_resource` over a preallocated
///   16 KiB buffer (the size of an arena's first block), default upstream.
///
/// Every allocation is written to (8 bytes), so the line is really touched
/// and the compiler cannot drop a malloc/free pair.
///
/// Groups:
///
/// 1. `BM_Alloc_<x>`: one allocation per iteration, released at once
///    (malloc's best case: the block goes straight back to a hot free list).
///    The arena and pmr_mono cannot free one object; they are reset every 256
///    allocations and that reset is inside the timed loop (amortized).
/// 2. `BM_Handler_<x>/allocs:N`: the handler pattern: N allocations kept
///    alive, then all thrown away (arena `reset()`, pmr `release()`, or N
///    frees in allocation order for the heaps, which need the pointers kept
///    in an array: a handler using malloc has to reach every object to free
///    it). `per_alloc` is the time per allocation, the throw-away included.
///    With 16 KiB blocks, N = 1024 (~40 KiB) takes overflow blocks in the
///    arena (reported as `overflow_per_handler`) and upstream chunks in
///    pmr_mono (not counted).
/// 3. `BM_ArenaReset/allocs:K`: the cost of `reset()` alone after K
///    allocations, K = 1, 16, 256, 4096, with 1 MiB blocks so that no
///    overflow block is ever involved (checked). The claim checked: reset
///    cost does not grow with K. `BM_ArenaResetOverflow/allocs:K` repeats it
///    with 16 KiB blocks, where K >= 1024 chains overflow blocks, to show
///    that reset is O(blocks) instead.
///
/// How reset is timed. Subtracting "allocations only" from "allocations plus
/// reset" does not work here: an arena cannot allocate forever without a
/// reset, and for K = 4096 the allocations take microseconds while a reset
/// takes nanoseconds, far below the run-to-run noise of the allocation part
/// on this shared machine. PauseTiming/ResumeTiming around the allocations
/// costs hundreds of nanoseconds per pair (two clock reads plus bookkeeping)
/// and would swamp the reset. So the reset benchmarks use manual timing: the
/// K allocations run untimed, then the reset alone is bracketed by
/// `lfence; rdtsc; lfence` (the TSC is constant and non-stop here, no
/// rdtscp), converted with a TSC rate calibrated against steady_clock at
/// start-up, and reported with `SetIterationTime`. The bracket has a fixed
/// cost of its own: `BM_TscBracketEmpty/allocs:K` times an empty bracket
/// after the same K allocations; subtract it. The iteration counts are fixed
/// per K, because with manual time Google Benchmark would otherwise run until
/// the *reset* time reaches its minimum (minutes of allocations for K = 4096).

#include "runtime/arena.hpp"

#include <x86intrin.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <memory_resource>
#include <string>
#include <thread>

#include <benchmark/benchmark.h>
#include <mimalloc.h>

#include "tests/bench/bench_support.hpp"

extern "C" void* __libc_malloc(size_t n);
extern "C" void __libc_free(void* ptr);

namespace {

using mayfly::arena;
using mayfly::arena_pool;
using mayfly::arena_pool_config;

[[maybe_unused]] const bool process_prepared = mayfly::bench::prepare_process();

// -- object sizes ---------------------------------------------------------------

constexpr size_t kSizeCount = 1024; // power of two

/// 16, 24, ..., 64 bytes in a fixed pseudo-random order (xorshift32).
const std::array<uint32_t, kSizeCount> sizes = [] {
  std::array<uint32_t, kSizeCount> result{};
  uint32_t x = 2463534242u;
  for (auto& s : result) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s = 16 + 8 * (x % 7);
  }
  return result;
}();

inline size_t size_at(size_t i) noexcept {
  return sizes[i & (kSizeCount - 1)];
}

/// Writes 8 bytes into a fresh allocation and makes the pointer observable.
inline void touch(void* p, uint64_t value) noexcept {
  *static_cast<uint64_t*>(p) = value;
  benchmark::DoNotOptimize(p);
}

std::unique_ptr<arena_pool> make_pool(size_t block_size, uint32_t capacity) {
  arena_pool_config cfg;
  cfg.block_size = block_size;
  cfg.capacity = capacity;
  cfg.max_arena_bytes = std::max<size_t>(cfg.max_arena_bytes, block_size);
  auto pool = arena_pool::make(cfg);
  if (!pool) {
    std::fprintf(stderr, "arena_pool::make: %s\n",
                 pool.error().message().c_str());
    std::abort();
  }
  return std::move(*pool);
}

// -- allocator adapters -----------------------------------------------------------

// Each adapter: allocate(n), and either free_each(p, n) (frees_each = true)
// or drop_all() (frees_each = false).

struct arena_adapter {
  static constexpr bool frees_each = false;
  std::unique_ptr<arena_pool> pool = make_pool(16384, 64);
  arena a{*pool};
  void* allocate(size_t n) noexcept {
    return a.try_allocate(n);
  }
  void drop_all() noexcept {
    a.reset();
  }
  uint32_t overflows() const noexcept {
    return a.overflow_blocks();
  }
};

struct arena_pmr_adapter {
  static constexpr bool frees_each = false;
  std::unique_ptr<arena_pool> pool = make_pool(16384, 64);
  arena a{*pool};
  std::pmr::memory_resource* res = &a;
  void* allocate(size_t n) {
    return res->allocate(n, alignof(std::max_align_t));
  }
  void drop_all() noexcept {
    a.reset();
  }
  uint32_t overflows() const noexcept {
    return a.overflow_blocks();
  }
};

struct malloc_adapter {
  static constexpr bool frees_each = true;
  void* allocate(size_t n) noexcept {
    return std::malloc(n);
  }
  void free_each(void* p, size_t) noexcept {
    std::free(p);
  }
};

struct glibc_adapter {
  static constexpr bool frees_each = true;
  void* allocate(size_t n) noexcept {
    return __libc_malloc(n);
  }
  void free_each(void* p, size_t) noexcept {
    __libc_free(p);
  }
};

struct mimalloc_adapter {
  static constexpr bool frees_each = true;
  void* allocate(size_t n) noexcept {
    return mi_malloc(n);
  }
  void free_each(void* p, size_t) noexcept {
    mi_free(p);
  }
};

struct pmr_mono_adapter {
  static constexpr bool frees_each = false;
  // Same size as an arena's first block; the upstream (new/delete, i.e.
  // mimalloc here) serves overflow chunks, as the arena pool serves blocks.
  alignas(64) std::byte buffer[16384];
  std::pmr::monotonic_buffer_resource mono{buffer, sizeof(buffer)};
  std::pmr::memory_resource* res = &mono;
  void* allocate(size_t n) {
    return res->allocate(n, alignof(std::max_align_t));
  }
  void drop_all() noexcept {
    mono.release();
  }
};

template <class Adapter>
uint32_t overflow_count(const Adapter& a) {
  if constexpr (std::is_same_v<Adapter, arena_adapter>
                || std::is_same_v<Adapter, arena_pmr_adapter>)
    return a.overflows();
  else
    return 0;
}

// -- 1. one allocation, released at once --------------------------------------------

template <class Adapter>
void BM_Alloc(benchmark::State& state) {
  auto alloc = std::make_unique<Adapter>();
  size_t i = 0;
  for (auto _ : state) {
    auto n = size_at(i);
    void* p = alloc->allocate(n);
    touch(p, i);
    if constexpr (Adapter::frees_each) {
      alloc->free_each(p, n);
    } else {
      if ((i & 255) == 255)
        alloc->drop_all();
    }
    ++i;
  }
  if constexpr (!Adapter::frees_each)
    alloc->drop_all();
  if (overflow_count(*alloc) != 0)
    state.SkipWithError("arena took overflow blocks");
}

// -- 2. the handler pattern --------------------------------------------------------

constexpr size_t kMaxHandlerAllocs = 1024;

template <class Adapter>
void BM_Handler(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  auto alloc = std::make_unique<Adapter>();
  std::array<void*, kMaxHandlerAllocs> ptrs;
  size_t s = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) {
      void* p = alloc->allocate(size_at(s + i));
      touch(p, i);
      if constexpr (Adapter::frees_each)
        ptrs[i] = p;
    }
    if constexpr (Adapter::frees_each) {
      for (size_t i = 0; i < n; ++i)
        alloc->free_each(ptrs[i], size_at(s + i));
    } else {
      alloc->drop_all();
    }
    s += n;
  }
  state.counters["per_alloc"] = benchmark::Counter(
    static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate
                              | benchmark::Counter::kInvert);
  state.counters["overflow_per_handler"]
    = static_cast<double>(overflow_count(*alloc))
      / static_cast<double>(state.iterations());
}

#define MAYFLY_ALLOC_BENCHMARKS(name, adapter)                                 \
  BENCHMARK_TEMPLATE(BM_Alloc, adapter)->Name("BM_Alloc_" name);               \
  BENCHMARK_TEMPLATE(BM_Handler, adapter)                                      \
    ->Name("BM_Handler_" name)                                                 \
    ->ArgName("allocs")                                                        \
    ->Arg(16)                                                                  \
    ->Arg(64)                                                                  \
    ->Arg(256)                                                                 \
    ->Arg(1024)

MAYFLY_ALLOC_BENCHMARKS("arena", arena_adapter);
MAYFLY_ALLOC_BENCHMARKS("arena_pmr", arena_pmr_adapter);
MAYFLY_ALLOC_BENCHMARKS("malloc", malloc_adapter);
MAYFLY_ALLOC_BENCHMARKS("glibc", glibc_adapter);
MAYFLY_ALLOC_BENCHMARKS("mimalloc", mimalloc_adapter);
MAYFLY_ALLOC_BENCHMARKS("pmr_mono", pmr_mono_adapter);

// -- 3. reset cost -----------------------------------------------------------------

/// TSC ticks per nanosecond, measured once against steady_clock (50 ms).
double tsc_per_ns() {
  static const double rate = [] {
    using clock = std::chrono::steady_clock;
    auto c0 = clock::now();
    auto t0 = __rdtsc();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto c1 = clock::now();
    auto t1 = __rdtsc();
    auto ns = std::chrono::duration<double, std::nano>(c1 - c0).count();
    return static_cast<double>(t1 - t0) / ns;
  }();
  return rate;
}

/// A TSC read that neither starts before earlier instructions finished nor
/// lets later ones start early (lfence is dispatch-serializing on AMD).
inline uint64_t fenced_tsc() noexcept {
  _mm_lfence();
  uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

/// K untimed allocations, then `reset()` (or nothing, when `empty`) timed
/// with the TSC. `block_size` 1 MiB: no overflow for any K used here.
void reset_bench(benchmark::State& state, size_t k, size_t block_size,
                 bool empty, bool expect_overflow) {
  const double ticks_per_ns = tsc_per_ns();
  auto pool = make_pool(block_size, block_size >= (size_t{1} << 20) ? 2 : 64);
  arena a{*pool};
  size_t s = 0;
  uint64_t blocks = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < k; ++i)
      touch(a.try_allocate(size_at(s + i)), i);
    s += k;
    blocks += a.blocks();
    uint64_t t0 = fenced_tsc();
    if (!empty)
      a.reset();
    uint64_t t1 = fenced_tsc();
    if (empty)
      a.reset();
    state.SetIterationTime(static_cast<double>(t1 - t0) / ticks_per_ns
                           * 1e-9);
  }
  state.counters["blocks_at_reset"]
    = static_cast<double>(blocks) / static_cast<double>(state.iterations());
  if (!expect_overflow && a.overflow_blocks() != 0)
    state.SkipWithError("unexpected overflow blocks");
}

/// Iterations per K: about 0.1-0.3 s of allocations each.
int64_t reset_iterations(size_t k) {
  return k <= 16 ? 1000000 : k <= 256 ? 200000 : 20000;
}

[[maybe_unused]] const bool reset_registered = [] {
  for (size_t k : {1, 16, 256, 4096}) {
    auto suffix = "/allocs:" + std::to_string(k);
    benchmark::RegisterBenchmark(("BM_ArenaReset" + suffix).c_str(),
                                 [k](benchmark::State& st) {
                                   reset_bench(st, k, size_t{1} << 20, false,
                                               false);
                                 })
      ->UseManualTime()
      ->Iterations(reset_iterations(k));
    benchmark::RegisterBenchmark(("BM_TscBracketEmpty" + suffix).c_str(),
                                 [k](benchmark::State& st) {
                                   reset_bench(st, k, size_t{1} << 20, true,
                                               false);
                                 })
      ->UseManualTime()
      ->Iterations(reset_iterations(k));
  }
  for (size_t k : {256, 1024, 4096}) {
    auto suffix = "/allocs:" + std::to_string(k);
    benchmark::RegisterBenchmark(("BM_ArenaResetOverflow" + suffix).c_str(),
                                 [k](benchmark::State& st) {
                                   reset_bench(st, k, 16384, false, true);
                                 })
      ->UseManualTime()
      ->Iterations(reset_iterations(k));
  }
  return true;
}();

} // namespace

BENCHMARK_MAIN();

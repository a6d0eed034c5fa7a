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

#include <mayfly/runtime/arena.hpp>

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

// -- object sizes -------------------------------------------------------------

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

// -- allocator adapters -------------------------------------------------------

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

// -- 1. one allocation, released at once --------------------------------------

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

// -- 2. the handler pattern ---------------------------------------------------

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

// -- 3. reset cost ------------------------------------------------------------

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

// -- Results ------------------------------------------------------------------
//
// Command (one line):
//   build/bench/tests/mayfly_arena_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
// Machine: 2 vCPUs AMD EPYC (Firecracker VM, no SMT, TSC 2096 MHz), Debian
//   12, kernel 6.18.44-fc-v782, g++ 12.2 RelWithDebInfo (bench preset),
//   mimalloc 2.0.9 (also serving malloc), Google Benchmark 1.7.1;
//   runtime/ at 85384dc.
// Date: 2026-11-25, run A 02:25:49 UTC, run B 02:49:19 UTC. Each run
//   started after 15 s of idle machine and saw no other process above 10%
//   of a CPU while it ran.
// Medians of 5 repetitions, cv = stddev/mean over them. The host is shared:
//   absolute figures moved by up to 1.75x between runs A and B (the malloc
//   family most); compare alternatives within one run.
//
//   benchmark                                      run A: median (cv)  run B: median (cv)
//   BM_Alloc_arena                                 1.04 ns (1.1%)      1.06 ns (1.8%)
//   BM_Handler_arena/allocs:16                     28.1 ns (0.6%)      26.3 ns (1.5%)      per_alloc: A 1.76 ns, B 1.64 ns
//   BM_Handler_arena/allocs:64                     68.2 ns (1.5%)      66.9 ns (1.0%)      per_alloc: A 1.07 ns, B 1.04 ns
//   BM_Handler_arena/allocs:256                    260 ns (1.2%)       257 ns (1.2%)       per_alloc: A 1.02 ns, B 1 ns
//   BM_Handler_arena/allocs:1024                   1,088 ns (0.5%)     1,094 ns (1.8%)     per_alloc: A 1.06 ns, B 1.07 ns
//   BM_Alloc_arena_pmr                             1.82 ns (7.5%)      2 ns (4.1%)
//   BM_Handler_arena_pmr/allocs:16                 37.6 ns (1.6%)      38.1 ns (1.8%)      per_alloc: A 2.35 ns, B 2.38 ns
//   BM_Handler_arena_pmr/allocs:64                 134 ns (0.6%)       129 ns (1.0%)       per_alloc: A 2.09 ns, B 2.02 ns
//   BM_Handler_arena_pmr/allocs:256                465 ns (1.3%)       540 ns (0.4%)       per_alloc: A 1.82 ns, B 2.11 ns
//   BM_Handler_arena_pmr/allocs:1024               1,862 ns (3.6%)     2,197 ns (1.1%)     per_alloc: A 1.82 ns, B 2.15 ns
//   BM_Alloc_malloc                                4.2 ns (2.5%)       4.24 ns (0.7%)
//   BM_Handler_malloc/allocs:16                    68.2 ns (1.0%)      66.6 ns (5.9%)      per_alloc: A 4.26 ns, B 4.16 ns
//   BM_Handler_malloc/allocs:64                    304 ns (4.5%)       311 ns (3.6%)       per_alloc: A 4.74 ns, B 4.87 ns
//   BM_Handler_malloc/allocs:256                   1,090 ns (1.5%)     1,349 ns (14.5%)    per_alloc: A 4.26 ns, B 5.27 ns
//   BM_Handler_malloc/allocs:1024                  4,538 ns (2.3%)     6,366 ns (6.4%)     per_alloc: A 4.43 ns, B 6.22 ns
//   BM_Alloc_glibc                                 4.18 ns (1.2%)      6.27 ns (13.4%)
//   BM_Handler_glibc/allocs:16                     64.2 ns (1.4%)      95.7 ns (5.2%)      per_alloc: A 4.01 ns, B 5.98 ns
//   BM_Handler_glibc/allocs:64                     301 ns (1.2%)       407 ns (4.3%)       per_alloc: A 4.71 ns, B 6.36 ns
//   BM_Handler_glibc/allocs:256                    1,155 ns (0.7%)     1,683 ns (2.1%)     per_alloc: A 4.51 ns, B 6.57 ns
//   BM_Handler_glibc/allocs:1024                   4,846 ns (2.2%)     6,789 ns (2.0%)     per_alloc: A 4.73 ns, B 6.63 ns
//   BM_Alloc_mimalloc                              3.93 ns (2.7%)      6.87 ns (0.8%)
//   BM_Handler_mimalloc/allocs:16                  67.5 ns (0.5%)      98.9 ns (3.5%)      per_alloc: A 4.22 ns, B 6.18 ns
//   BM_Handler_mimalloc/allocs:64                  314 ns (1.5%)       425 ns (1.1%)       per_alloc: A 4.9 ns, B 6.64 ns
//   BM_Handler_mimalloc/allocs:256                 1,191 ns (0.9%)     1,679 ns (1.7%)     per_alloc: A 4.65 ns, B 6.56 ns
//   BM_Handler_mimalloc/allocs:1024                4,861 ns (2.4%)     6,814 ns (0.7%)     per_alloc: A 4.75 ns, B 6.65 ns
//   BM_Alloc_pmr_mono                              2.67 ns (2.0%)      4.16 ns (3.3%)
//   BM_Handler_pmr_mono/allocs:16                  60.1 ns (8.1%)      85.6 ns (0.5%)      per_alloc: A 3.76 ns, B 5.35 ns
//   BM_Handler_pmr_mono/allocs:64                  268 ns (3.1%)       274 ns (1.7%)       per_alloc: A 4.19 ns, B 4.28 ns
//   BM_Handler_pmr_mono/allocs:256                 1,042 ns (1.4%)     946 ns (8.8%)       per_alloc: A 4.07 ns, B 3.7 ns
//   BM_Handler_pmr_mono/allocs:1024                4,290 ns (3.6%)     4,230 ns (4.0%)     per_alloc: A 4.19 ns, B 4.13 ns
//   BM_ArenaReset/allocs:1/manual_time             40.9 ns (1.7%)      43 ns (4.4%)
//   BM_TscBracketEmpty/allocs:1/manual_time        23.3 ns (0.9%)      24.5 ns (1.0%)
//   BM_ArenaReset/allocs:16/manual_time            42.6 ns (4.2%)      43.7 ns (1.0%)
//   BM_TscBracketEmpty/allocs:16/manual_time       23.6 ns (1.3%)      23.1 ns (3.5%)
//   BM_ArenaReset/allocs:256/manual_time           42.7 ns (7.5%)      40.3 ns (2.2%)
//   BM_TscBracketEmpty/allocs:256/manual_time      24.1 ns (1.6%)      24.6 ns (4.7%)
//   BM_ArenaReset/allocs:4096/manual_time          50 ns (6.7%)        48.1 ns (3.5%)
//   BM_TscBracketEmpty/allocs:4096/manual_time     27.2 ns (7.9%)      28.1 ns (4.8%)
//   BM_ArenaResetOverflow/allocs:256/manual_time   42.1 ns (3.1%)      41.2 ns (2.4%)
//   BM_ArenaResetOverflow/allocs:1024/manual_time  61.3 ns (12.0%)     60 ns (4.0%)
//   BM_ArenaResetOverflow/allocs:4096/manual_time  219 ns (2.6%)       218 ns (7.4%)
//
// Ratios and interpretation: docs/benchmarks.md, "Memory layer (issue 2)".

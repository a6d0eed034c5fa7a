/// @file
/// Micro-benchmarks of `mayfly::slice` against
/// `std::shared_ptr<std::vector<char>>`, the obvious refcounted buffer a
/// service would otherwise pass between actors.
///
/// Every slice here views a pooled binary: a 1500-byte datagram frozen from a
/// slot of a `buffer_pool` (2 KiB slots). The shared_ptr counterpart is a
/// `make_shared<std::vector<char>>` of the same 1500 bytes.
///
/// Single thread:
/// - `BM_SliceCopy` / `BM_SharedPtrCopy`: copy then destroy (one reference
///   added and dropped). A slice copy also updates the process-wide slice
///   statistics (`slice::live_count()`, `viewed_bytes()`): two relaxed
///   `fetch_add`s on the thread's shard per copy and two per destruction.
/// - `BM_SliceSub` / `BM_SharedPtrAlias`: a 64-byte sub-view at offset 12,
///   then destroy; the shared_ptr form is the aliasing constructor plus a
///   length.
/// - `BM_SliceRef`: `slice_ref` on a `string_view` a parser would return.
/// - `BM_SliceDetach/bytes:N` / `BM_SharedVectorCopy/bytes:N`: copy N bytes
///   out of the pinned binary into a buffer of their own (one mimalloc
///   allocation + memcpy), then destroy it.
///
/// Cross-thread (`BM_CrossThread_*`, real time): the benchmark thread copies
/// a slice (or shared_ptr) and pushes it into a preallocated SPSC ring of 256
/// entries; the helper thread pops and destroys it, so every reference is
/// dropped on the other core. `/distinct:0`: every item references the same
/// binary (both cores hammer one refcount line: a handler fanning out slices
/// of one datagram); `/distinct:1`: items cycle through 64 different binaries
/// (the refcount lines still migrate, but rarely collide). The time is the
/// producer's wall time per item while the consumer keeps up, i.e. the
/// pipeline throughput; it depends on both cores being free, which on this
/// shared 2-core machine they are not always: expect more spread here.
/// `BM_CrossThread_RawPointer` pushes plain pointers (no reference count):
/// the cost of the ring and of the hand-over itself, the floor of the others.

#include <mayfly/runtime/slice.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include <mayfly/runtime/buffer_pool.hpp>
#include "tests/bench/bench_support.hpp"

namespace {

using mayfly::buffer_pool;
using mayfly::slice;
using mayfly::bench::helper_thread;
using mayfly::bench::spsc_ring;

[[maybe_unused]] const bool process_prepared = mayfly::bench::prepare_process();

constexpr size_t kDatagram = 1500;
constexpr size_t kDistinct = 64;
constexpr size_t kRing = 256;

std::unique_ptr<buffer_pool> make_pool() {
  mayfly::slot_pool::options opts;
  opts.name = "bench";
  opts.slot_size = 2048;
  opts.capacity = 1024;
  auto pool = buffer_pool::make(opts);
  if (!pool) {
    std::fprintf(stderr, "buffer_pool::make: %s\n",
                 pool.error().message().c_str());
    std::abort();
  }
  return std::move(*pool);
}

/// A frozen 1500-byte datagram in a pool slot.
slice make_datagram(buffer_pool& pool, unsigned char fill) {
  auto buf = pool.try_acquire();
  if (!buf)
    std::abort();
  std::memset(buf.data(), fill, kDatagram);
  return std::move(buf).freeze(kDatagram);
}

std::shared_ptr<std::vector<char>> make_shared_datagram(char fill) {
  return std::make_shared<std::vector<char>>(kDatagram, fill);
}

/// Aborts if the pool still has binaries out: every benchmark must drop its
/// slices before its pool goes (the pool would abort anyway, less clearly).
void check_balanced(const buffer_pool& pool) {
  if (pool.slots().in_use() != 0) {
    std::fprintf(stderr, "pool unbalanced: %lld slots out\n",
                 static_cast<long long>(pool.slots().in_use()));
    std::abort();
  }
}

// -- copy + release -----------------------------------------------------------

void BM_SliceCopy(benchmark::State& state) {
  auto pool = make_pool();
  {
    auto base = make_datagram(*pool, 'a');
    for (auto _ : state) {
      slice copy{base};
      benchmark::DoNotOptimize(copy);
    }
  }
  check_balanced(*pool);
}
BENCHMARK(BM_SliceCopy);

void BM_SharedPtrCopy(benchmark::State& state) {
  auto base = make_shared_datagram('a');
  for (auto _ : state) {
    auto copy = base;
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_SharedPtrCopy);

// -- sub-slicing --------------------------------------------------------------

void BM_SliceSub(benchmark::State& state) {
  auto pool = make_pool();
  {
    auto base = make_datagram(*pool, 'a');
    for (auto _ : state) {
      auto part = base.sub(12, 12 + 64);
      benchmark::DoNotOptimize(part);
    }
  }
  check_balanced(*pool);
}
BENCHMARK(BM_SliceSub);

void BM_SharedPtrAlias(benchmark::State& state) {
  auto base = make_shared_datagram('a');
  for (auto _ : state) {
    std::shared_ptr<const char> part{base, base->data() + 12};
    size_t len = 64;
    benchmark::DoNotOptimize(part);
    benchmark::DoNotOptimize(len);
  }
}
BENCHMARK(BM_SharedPtrAlias);

void BM_SliceRef(benchmark::State& state) {
  auto pool = make_pool();
  {
    auto base = make_datagram(*pool, 'a');
    auto field = base.view().substr(12, 64); // what a parser hands back
    for (auto _ : state) {
      benchmark::DoNotOptimize(field);
      auto part = base.slice_ref(field);
      benchmark::DoNotOptimize(part);
    }
  }
  check_balanced(*pool);
}
BENCHMARK(BM_SliceRef);

// -- detach -------------------------------------------------------------------

void BM_SliceDetach(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  auto pool = make_pool();
  {
    auto base = make_datagram(*pool, 'a');
    auto part = base.sub(12, 12 + n);
    for (auto _ : state) {
      auto own = part.detach();
      benchmark::DoNotOptimize(own);
    }
  }
  check_balanced(*pool);
}
BENCHMARK(BM_SliceDetach)->ArgName("bytes")->Arg(16)->Arg(64)->Arg(512);

void BM_SharedVectorCopy(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  auto base = make_shared_datagram('a');
  const char* first = base->data() + 12;
  for (auto _ : state) {
    auto own = std::make_shared<std::vector<char>>(first, first + n);
    benchmark::DoNotOptimize(own);
  }
}
BENCHMARK(BM_SharedVectorCopy)->ArgName("bytes")->Arg(16)->Arg(64)->Arg(512);

// -- cross-thread release -----------------------------------------------------

/// Producer: copies `items[i % count]` into the ring; the helper thread
/// destroys what it pops. Returns after the helper drained everything.
template <class T>
void cross_thread(benchmark::State& state, const std::vector<T>& items) {
  const size_t count = state.range(0) != 0 ? items.size() : 1;
  auto ring = std::make_unique<spsc_ring<T, kRing>>();
  std::atomic<bool> stop{false};
  auto& helper = helper_thread::instance();
  helper.run([&] {
    mayfly::bench::drain_until_stopped(*ring, stop,
                                       [](T& item) { item = T{}; });
  });
  size_t i = 0;
  for (auto _ : state) {
    ring->push(items[i]);
    if (++i == count)
      i = 0;
  }
  stop.store(true, std::memory_order_release);
  helper.wait();
}

void BM_CrossThread_Slice(benchmark::State& state) {
  auto pool = make_pool();
  {
    std::vector<slice> items;
    for (size_t i = 0; i < kDistinct; ++i)
      items.push_back(make_datagram(*pool, static_cast<unsigned char>(i)));
    cross_thread(state, items);
  }
  check_balanced(*pool);
}
BENCHMARK(BM_CrossThread_Slice)
  ->ArgName("distinct")
  ->Arg(0)
  ->Arg(1)
  ->UseRealTime();

void BM_CrossThread_SharedPtr(benchmark::State& state) {
  std::vector<std::shared_ptr<std::vector<char>>> items;
  for (size_t i = 0; i < kDistinct; ++i)
    items.push_back(make_shared_datagram(static_cast<char>(i)));
  cross_thread(state, items);
}
BENCHMARK(BM_CrossThread_SharedPtr)
  ->ArgName("distinct")
  ->Arg(0)
  ->Arg(1)
  ->UseRealTime();

void BM_CrossThread_RawPointer(benchmark::State& state) {
  // The ring alone: a plain pointer into the datagram, no reference count.
  auto base = make_shared_datagram('a');
  std::vector<const char*> items;
  for (size_t i = 0; i < kDistinct; ++i)
    items.push_back(base->data() + i);
  cross_thread(state, items);
}
BENCHMARK(BM_CrossThread_RawPointer)->ArgName("distinct")->Arg(0)->UseRealTime();

} // namespace

BENCHMARK_MAIN();

// -- Results ------------------------------------------------------------------
//
// Command (one line):
//   build/bench/tests/mayfly_slice_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
// Machine: 2 vCPUs AMD EPYC (Firecracker VM, no SMT, TSC 2096 MHz), Debian
//   12, kernel 6.18.44-fc-v782, g++ 12.2 RelWithDebInfo (bench preset),
//   mimalloc 2.0.9 (also serving malloc), Google Benchmark 1.7.1;
//   runtime/ at 85384dc.
// Date: 2026-11-25, run A 02:23:50 UTC, run B 02:51:30 UTC. Each run
//   started after 15 s of idle machine and saw no other process above 10%
//   of a CPU while it ran.
// Medians of 5 repetitions, cv = stddev/mean over them. The host is shared:
//   absolute figures moved by up to 1.75x between runs A and B (the malloc
//   family most); compare alternatives within one run.
//
//   benchmark                                       run A: median (cv)  run B: median (cv)
//   BM_SliceCopy                                    36 ns (0.9%)        39.8 ns (2.6%)
//   BM_SharedPtrCopy                                15.3 ns (0.6%)      16.3 ns (1.3%)
//   BM_SliceSub                                     35.4 ns (1.0%)      37.6 ns (2.8%)
//   BM_SharedPtrAlias                               15.1 ns (0.8%)      16 ns (2.0%)
//   BM_SliceRef                                     35.4 ns (1.6%)      39.3 ns (1.0%)
//   BM_SliceDetach/bytes:16                         109 ns (1.5%)       125 ns (2.0%)
//   BM_SliceDetach/bytes:64                         106 ns (0.8%)       116 ns (0.5%)
//   BM_SliceDetach/bytes:512                        110 ns (1.4%)       121 ns (1.8%)
//   BM_SharedVectorCopy/bytes:16                    11.2 ns (0.7%)      18.8 ns (2.1%)
//   BM_SharedVectorCopy/bytes:64                    11.6 ns (0.6%)      18.3 ns (0.8%)
//   BM_SharedVectorCopy/bytes:512                   16.6 ns (8.7%)      23.5 ns (0.7%)
//   BM_CrossThread_Slice/distinct:0/real_time       130 ns (10.2%)      150 ns (18.6%)
//   BM_CrossThread_Slice/distinct:1/real_time       216 ns (8.1%)       200 ns (4.4%)
//   BM_CrossThread_SharedPtr/distinct:0/real_time   63.9 ns (38.5%)     129 ns (10.1%)
//   BM_CrossThread_SharedPtr/distinct:1/real_time   223 ns (2.2%)       249 ns (16.3%)
//   BM_CrossThread_RawPointer/distinct:0/real_time  5.63 ns (7.8%)      7.21 ns (2.9%)
//
// Ratios and interpretation: docs/benchmarks.md, "Memory layer (issue 2)".

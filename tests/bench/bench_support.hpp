#pragma once

/// @file
/// Helpers shared by the memory-layer benchmarks (not a benchmark itself: the
/// CMake glob only builds `*_bench.cpp`).
///
/// - `spsc_ring<T, N>`: a preallocated single-producer/single-consumer ring
///   for the cross-thread benchmarks: items made on the benchmark thread are
///   destroyed on a helper thread. Lock-free, no allocation after
///   construction; each side caches the other side's index so an index cache
///   line moves between cores only when the cached value runs out.
/// - `helper_thread`: ONE long-lived second thread for the whole process that
///   runs the consumer loops. Google Benchmark calls a benchmark function
///   several times (iteration estimation, then every repetition); spawning a
///   fresh consumer thread each time would hand out ever new
///   `detail::this_thread_index()` values, and thread 16, 32, ... would share
///   the sharded-counter cache line of the benchmark thread (index & 15), so a
///   few repetitions would measure false sharing that the others do not.
/// - `prepare_process()`: see its comment; every benchmark file calls it.
/// - `relax()`/`backoff`: spin politely; after a while yield, because this
///   2-core machine is shared and the other side may be descheduled.

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <benchmark/benchmark.h>
#include <mimalloc.h>

namespace mayfly::bench {

inline void relax() noexcept {
  _mm_pause();
}

/// Spins with `pause`; every 64th call yields the CPU instead.
class backoff {
public:
  void operator()() noexcept {
    if (++spins_ % 64 == 0)
      std::this_thread::yield();
    else
      relax();
  }

private:
  uint32_t spins_ = 0;
};

/// The `n`-th CPU this process may run on, or -1.
inline int allowed_cpu(int n) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0)
    return -1;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set) && n-- == 0)
      return cpu;
  return -1;
}

/// Pins the calling thread to `cpu`; returns whether it worked.
inline bool pin_this_thread(int cpu) noexcept {
  if (cpu < 0)
    return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

/// Bounded SPSC queue of `N` (a power of two) default-constructible `T`s.
/// `try_push` only on the producer thread, `try_pop` only on the consumer.
template <class T, size_t N>
class spsc_ring {
public:
  static_assert(N >= 2 && (N & (N - 1)) == 0, "N must be a power of two");

  /// Moves `value` in and returns true, or returns false (and leaves `value`
  /// untouched) when the ring is full.
  bool try_push(T& value) noexcept {
    auto tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ == N) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ == N)
        return false;
    }
    slots_[tail & (N - 1)] = std::move(value);
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  /// Pushes, spinning while the ring is full.
  void push(T value) noexcept {
    backoff wait;
    while (!try_push(value))
      wait();
  }

  /// Moves the oldest item into `out` and returns true, or returns false
  /// when the ring is empty.
  bool try_pop(T& out) noexcept {
    auto head = head_.load(std::memory_order_relaxed);
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cache_)
        return false;
    }
    out = std::move(slots_[head & (N - 1)]);
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

private:
  // Consumer side: its index and its cache of the producer's index.
  alignas(64) std::atomic<size_t> head_{0};
  size_t tail_cache_ = 0;
  // Producer side.
  alignas(64) std::atomic<size_t> tail_{0};
  size_t head_cache_ = 0;
  alignas(64) std::array<T, N> slots_{};
};

/// Drains `ring` on the calling thread, destroying every item it pops (via
/// `consume(item)`), until `stop` is set and the ring is empty.
template <class T, size_t N, class Consume>
void drain_until_stopped(spsc_ring<T, N>& ring, const std::atomic<bool>& stop,
                         Consume consume) {
  T item{};
  backoff wait;
  for (;;) {
    if (ring.try_pop(item)) {
      consume(item);
      continue;
    }
    if (stop.load(std::memory_order_acquire)) {
      // Everything pushed before `stop` is visible now: finish it.
      while (ring.try_pop(item))
        consume(item);
      return;
    }
    wait();
  }
}

/// The CPU the helper thread pins itself to; -1: none.
inline int helper_cpu = -1;

/// The process's single helper thread (see file comment). Jobs run one at a
/// time; `run` hands one over, `wait` blocks until it returned. Hand-over
/// uses a mutex and a condition variable: outside the timed loops.
class helper_thread {
public:
  static helper_thread& instance() {
    static helper_thread self;
    return self;
  }

  void run(std::function<void()> job) {
    std::unique_lock<std::mutex> guard{mtx_};
    job_ = std::move(job);
    done_ = false;
    cv_.notify_all();
  }

  void wait() {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait(guard, [this] { return done_; });
  }

  ~helper_thread() {
    {
      std::unique_lock<std::mutex> guard{mtx_};
      quit_ = true;
      cv_.notify_all();
    }
    thread_.join();
  }

private:
  helper_thread() : thread_([this] { loop(); }) {
  }

  void loop() {
    // Chosen by prepare_process() before it pinned the benchmark thread
    // (whose mask this thread inherited: it cannot look it up itself).
    pin_this_thread(helper_cpu);
    std::unique_lock<std::mutex> guard{mtx_};
    for (;;) {
      cv_.wait(guard, [this] { return quit_ || job_ != nullptr; });
      if (job_ == nullptr)
        return;
      auto job = std::exchange(job_, nullptr);
      guard.unlock();
      job();
      guard.lock();
      done_ = true;
      cv_.notify_all();
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool done_ = true;
  bool quit_ = false;
  std::thread thread_; // last: starts after the members above exist
};

/// Call once per executable, at static initialization (before any
/// benchmark runs):
/// - starts the helper thread now, so the process is multi-threaded for
///   every benchmark. glibc and libstdc++ take single-thread fast paths while
///   a process has only ever had one thread (`__libc_single_threaded`):
///   `shared_ptr` then counts references with plain increments and glibc's
///   malloc skips its atomics. A service always has threads (CAF workers), so
///   measuring those fast paths would flatter the baselines;
/// - pins the benchmark thread to the first allowed CPU and the helper to
///   the second, so a cross-thread benchmark really crosses cores. Unpinned,
///   the scheduler sometimes put both on one core while the other ran
///   someone's compiler: the producer then filled the ring, the consumer
///   drained it in a burst, no cache line ever moved, and the "cross-thread"
///   cost came out 2-3x lower than with the threads on two cores;
/// - records in the benchmark context which allocator `malloc` really is:
///   Debian's libmimalloc.so exports `malloc`, and mayfly links it, so in
///   these executables plain `malloc` is mimalloc, not glibc.
inline bool prepare_process() {
  int producer_cpu = allowed_cpu(0);
  int consumer_cpu = allowed_cpu(1);
  bool pinned = consumer_cpu >= 0 && pin_this_thread(producer_cpu);
  if (pinned)
    helper_cpu = consumer_cpu;
  helper_thread::instance();
  auto* p = static_cast<char*>(std::malloc(32));
  if (p != nullptr)
    p[0] = 0;
  bool is_mimalloc = mi_is_in_heap_region(p);
  std::free(p);
  benchmark::AddCustomContext("malloc", is_mimalloc
                                          ? "mimalloc (libmimalloc.so "
                                            "exports malloc)"
                                          : "glibc");
  benchmark::AddCustomContext("threads",
                              "helper thread started at start-up "
                              "(single-thread fast paths of glibc/libstdc++ "
                              "off)");
  benchmark::AddCustomContext(
    "pinning", pinned ? "benchmark thread on cpu " + std::to_string(producer_cpu)
                          + ", helper thread on cpu "
                          + std::to_string(consumer_cpu)
                      : std::string{"none (fewer than 2 CPUs allowed)"});
  return is_mimalloc;
}

} // namespace mayfly::bench

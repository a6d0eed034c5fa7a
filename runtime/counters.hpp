#pragma once

/// @file
/// Hot-path statistics without contended atomics.
///
/// `sharded_counters<N>` holds N 64-bit counters in `kShards` cache-line
/// aligned shards. A thread adds to the shard chosen by its thread index, so
/// two threads practically never touch the same cache line; readers sum all
/// shards. An add is one relaxed `fetch_add` on a line the calling thread
/// already owns (no cross-core traffic); a read is O(kShards * N) and may be
/// slightly stale, never torn.
///
/// `log2_histogram` is the same idea for distributions (arena high-water
/// marks, handler lifetimes): bucket i counts values in [2^(i-1), 2^i).
///
/// Thread-safety: every member may be called from any thread.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mayfly {

namespace detail {

/// The calling thread's index plus one; 0 until assigned. Initial-exec TLS:
/// one `mov` from %fs, no call (mayfly is linked into the executable or
/// loaded at start-up, never dlopen'ed late).
inline thread_local uint32_t thread_index_plus_one
  __attribute__((tls_model("initial-exec"))) = 0;

/// Assigns the calling thread its index (slow path of `this_thread_index`).
uint32_t assign_thread_index() noexcept;

/// A small dense number for the calling thread, assigned on first use.
/// O(1), no allocation, inline.
inline uint32_t this_thread_index() noexcept {
  auto i = thread_index_plus_one;
  if (__builtin_expect(i != 0, 1))
    return i - 1;
  return assign_thread_index();
}

} // namespace detail

/// Number of shards of every sharded statistic (a power of two).
inline constexpr size_t kShards = 16;

/// N relaxed counters, sharded per thread. Values are signed so that gauges
/// (adds on one thread, subtracts on another) sum correctly.
template <size_t N>
class sharded_counters {
public:
  /// Adds `delta` to counter `i` on the calling thread's shard.
  /// O(1), no allocation, no contended cache line.
  void add(size_t i, int64_t delta = 1) noexcept {
    shard().v[i].fetch_add(delta, std::memory_order_relaxed);
  }

  /// Sum of counter `i` over all shards. O(kShards).
  int64_t sum(size_t i) const noexcept {
    int64_t total = 0;
    for (auto& s : shards_)
      total += s.v[i].load(std::memory_order_relaxed);
    return total;
  }

private:
  struct alignas(64) shard_t {
    std::array<std::atomic<int64_t>, N> v{};
  };

  shard_t& shard() noexcept {
    return shards_[detail::this_thread_index() & (kShards - 1)];
  }

  std::array<shard_t, kShards> shards_{};
};

/// A histogram of non-negative values in power-of-two buckets, sharded per
/// thread. `record` is O(1); quantiles are O(kShards * kBuckets) and exact to
/// within a factor of two (the upper bound of the bucket is reported).
class log2_histogram {
public:
  static constexpr size_t kBuckets = 48;

  /// Counts `value` once. O(1), no allocation.
  void record(uint64_t value) noexcept {
    auto bucket = value == 0 ? 0 : 64 - __builtin_clzll(value);
    if (bucket >= static_cast<int>(kBuckets))
      bucket = kBuckets - 1;
    counts_.add(static_cast<size_t>(bucket));
    uint64_t seen = max_.load(std::memory_order_relaxed);
    while (value > seen
           && !max_.compare_exchange_weak(seen, value,
                                          std::memory_order_relaxed)) {
    }
  }

  /// Number of recorded values.
  uint64_t count() const noexcept;

  /// Largest recorded value (exact), 0 when empty.
  uint64_t max() const noexcept {
    return max_.load(std::memory_order_relaxed);
  }

  /// Upper bound of the bucket holding quantile `q` in [0, 1]; never more
  /// than `max()`. 0 when empty.
  uint64_t quantile(double q) const noexcept;

private:
  sharded_counters<kBuckets> counts_;
  std::atomic<uint64_t> max_{0};
};

} // namespace mayfly

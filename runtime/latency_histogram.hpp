#pragma once

/// @file
/// `latency_histogram`: a latency distribution in fixed, documented buckets,
/// the shape Prometheus histograms take.
///
/// The bucket bounds are declared once, here (`kLatencyBoundsUs`, in
/// microseconds), and everything else — the /stats JSON, the Prometheus
/// `_bucket{le=...}` series, the stats page, docs/stats.md — reads them from
/// this list. Bucket i counts values v with bound[i-1] < v <= bound[i]
/// (Prometheus' `le` semantics); the last bucket is everything above the
/// largest bound (+Inf). The sum of all values is kept in nanoseconds.
///
/// Recording is a relaxed add on the calling thread's shard
/// (`sharded_counters`): no allocation, no contended cache line, O(number of
/// bounds) compares (16, branch-predictable for steady traffic). Reading sums
/// the shards: O(kShards * buckets), slightly stale, never torn.
///
/// Thread-safety: every member may be called from any thread.

#include <array>
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include <mayfly/runtime/counters.hpp>

namespace mayfly {

/// Upper bounds of the latency buckets, microseconds (+Inf is implied).
inline constexpr std::array<uint32_t, 16> kLatencyBoundsUs{
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
  100000};

/// Fixed-bucket latency histogram, sharded per thread. See file comment.
class latency_histogram {
public:
  /// Buckets: one per bound, plus +Inf.
  static constexpr size_t kBuckets = kLatencyBoundsUs.size() + 1;

  /// Counts one value of `ns` nanoseconds (negative counts as 0).
  /// O(kBuckets) compares, one relaxed add per shard line, no allocation.
  void record(int64_t ns) noexcept {
    auto v = ns < 0 ? 0 : static_cast<uint64_t>(ns);
    size_t b = 0;
    while (b < kLatencyBoundsUs.size()
           && v > uint64_t{kLatencyBoundsUs[b]} * 1000)
      ++b;
    counts_.add(b);
    counts_.add(kSumSlot, static_cast<int64_t>(v));
  }

  /// Values in bucket `b` (not cumulative). O(kShards).
  uint64_t bucket(size_t b) const noexcept {
    return static_cast<uint64_t>(counts_.sum(b));
  }

  /// Number of values recorded. O(kShards * kBuckets).
  uint64_t count() const noexcept;

  /// Sum of the values recorded, nanoseconds. O(kShards).
  uint64_t sum_ns() const noexcept {
    return static_cast<uint64_t>(counts_.sum(kSumSlot));
  }

  /// `{"bounds_us": [...], "counts": [...], "count": n, "sum_us": x}`:
  /// `counts` has one entry per bucket (not cumulative; the last is +Inf),
  /// `bounds_us` one per finite bound (docs/stats.md, "Latency histograms").
  nlohmann::json to_json() const;

private:
  static constexpr size_t kSumSlot = kBuckets;
  sharded_counters<kBuckets + 1> counts_;
};

} // namespace mayfly

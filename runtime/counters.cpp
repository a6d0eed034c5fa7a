#include <mayfly/runtime/counters.hpp>

#include <algorithm>
#include <cmath>

namespace mayfly {

namespace detail {

uint32_t assign_thread_index() noexcept {
  // Dense indices spread threads over shards; a new thread takes the next
  // number, so the first kShards threads never share a shard.
  static std::atomic<uint32_t> next{0};
  auto index = next.fetch_add(1, std::memory_order_relaxed);
  thread_index_plus_one = index + 1;
  return index;
}

} // namespace detail

uint64_t log2_histogram::count() const noexcept {
  uint64_t total = 0;
  for (size_t i = 0; i < kBuckets; ++i)
    total += static_cast<uint64_t>(counts_.sum(i));
  return total;
}

uint64_t log2_histogram::quantile(double q) const noexcept {
  std::array<uint64_t, kBuckets> counts{};
  uint64_t total = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    counts[i] = static_cast<uint64_t>(counts_.sum(i));
    total += counts[i];
  }
  if (total == 0)
    return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts[i];
    if (seen >= rank) {
      // The last bucket also holds everything larger: no bound but the max.
      if (i == kBuckets - 1)
        return max();
      // Bucket i holds values in [2^(i-1), 2^i - 1]; bucket 0 holds 0.
      uint64_t upper = i == 0 ? 0 : (i >= 64 ? ~0ull : (1ull << i) - 1);
      return std::min(upper, max());
    }
  }
  return max();
}

} // namespace mayfly

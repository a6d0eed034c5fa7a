#include <mayfly/runtime/latency_histogram.hpp>

namespace mayfly {

uint64_t latency_histogram::count() const noexcept {
  uint64_t n = 0;
  for (size_t b = 0; b < kBuckets; ++b)
    n += bucket(b);
  return n;
}

nlohmann::json latency_histogram::to_json() const {
  // Buckets first, then the count from them: the count always equals the
  // buckets' total, even while other threads record.
  auto bounds = nlohmann::json::array();
  for (auto b : kLatencyBoundsUs)
    bounds.push_back(b);
  auto counts = nlohmann::json::array();
  uint64_t n = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    auto c = bucket(b);
    counts.push_back(c);
    n += c;
  }
  return {{"bounds_us", std::move(bounds)},
          {"counts", std::move(counts)},
          {"count", n},
          {"sum_us", static_cast<double>(sum_ns()) / 1e3}};
}

} // namespace mayfly

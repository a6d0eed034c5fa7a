// `throttled_count`: a count of bad events (rejected headers, failed
// handshakes) that says which of them deserve a log line: the first, then
// every `kLogEvery`th, so that a flood of bad peers never becomes a flood
// of log lines while the count itself stays exact (the stats show it).
//
// Thread safety: `record` and `total` may be called from any thread (one
// relaxed atomic). Cost: one atomic add per event. No allocation.
#pragma once

#include <atomic>
#include <cstdint>

namespace tally {

class throttled_count {
public:
  /// One line for the first event, then one for every this many.
  static constexpr uint64_t kLogEvery = 1000;

  /// Counts one event. Returns its number (1 for the first) when a log
  /// line is due for it, 0 when not.
  uint64_t record() noexcept {
    auto n = count_.fetch_add(1, std::memory_order_relaxed) + 1;
    return n == 1 || n % kLogEvery == 0 ? n : 0;
  }

  /// Events counted so far.
  uint64_t total() const noexcept {
    return count_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<uint64_t> count_{0};
};

} // namespace tally

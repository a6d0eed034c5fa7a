#pragma once

/// @file
/// Rate-limited logging to stderr.
///
/// A handler that throws on every datagram must not turn the log into the
/// bottleneck: `rate_limited_log` prints at most one line per interval and
/// reports how many it suppressed in between. The check is one relaxed load
/// of a timestamp on the fast (suppressed) path.
///
/// Thread-safety: `log` may be called from any thread; lines never
/// interleave (one `fprintf` each).

#include <atomic>
#include <cstdarg>
#include <cstdint>

namespace mayfly {

/// Prints at most one line per `interval_ms`. See file comment.
class rate_limited_log {
public:
  explicit rate_limited_log(int64_t interval_ms = 1000) noexcept
    : interval_ns_(interval_ms * 1000000) {
  }

  /// Prints "mayfly: <formatted>" unless a line was printed less than one
  /// interval ago; returns whether it printed.
  bool log(const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

  /// Lines suppressed since the last printed one.
  uint64_t suppressed() const noexcept {
    return suppressed_.load(std::memory_order_relaxed);
  }

private:
  int64_t interval_ns_;
  std::atomic<int64_t> next_ns_{0};
  std::atomic<uint64_t> suppressed_{0};
};

} // namespace mayfly

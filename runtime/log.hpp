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
///
/// Every printed line goes through one place (`write_log_line`), which a
/// test or a service may redirect with `set_log_sink` (tests capture the
/// stall reports that way).

#include <atomic>
#include <cstdarg>
#include <cstdint>

namespace mayfly {

/// Where log lines go instead of stderr: `fn(ctx, line)` with the line
/// without "mayfly: " and without a newline. Called from the logging
/// thread; must be thread-safe and must not log itself.
struct log_sink {
  void (*fn)(void* ctx, const char* line) = nullptr;
  void* ctx = nullptr;
};

/// Sends every later log line to `*sink` (which must outlive its use);
/// nullptr: back to stderr. Any thread; lines already being written may
/// still reach the previous sink.
void set_log_sink(const log_sink* sink) noexcept;

/// Writes one line to the sink, or "mayfly: <line>\n" to stderr. Not rate
/// limited: for lines that are rare by construction (one per stall).
void write_log_line(const char* line) noexcept;

/// Formats and writes one line (`write_log_line`).
void log_line(const char* fmt, ...) noexcept
  __attribute__((format(printf, 1, 2)));

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

#include <mayfly/runtime/log.hpp>

#include <chrono>
#include <cstdio>

namespace mayfly {

namespace {

std::atomic<const log_sink*> current_sink{nullptr};

} // namespace

void set_log_sink(const log_sink* sink) noexcept {
  current_sink.store(sink, std::memory_order_release);
}

void write_log_line(const char* line) noexcept {
  if (auto* sink = current_sink.load(std::memory_order_acquire);
      sink != nullptr && sink->fn != nullptr) {
    sink->fn(sink->ctx, line);
    return;
  }
  std::fprintf(stderr, "mayfly: %s\n", line);
}

void log_line(const char* fmt, ...) noexcept {
  char line[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(line, sizeof(line), fmt, args);
  va_end(args);
  write_log_line(line);
}

bool rate_limited_log::log(const char* fmt, ...) noexcept {
  using namespace std::chrono;
  auto now
    = duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
  auto next = next_ns_.load(std::memory_order_relaxed);
  if (now < next
      || !next_ns_.compare_exchange_strong(next, now + interval_ns_,
                                           std::memory_order_relaxed)) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  char line[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(line, sizeof(line), fmt, args);
  va_end(args);
  auto skipped = suppressed_.exchange(0, std::memory_order_relaxed);
  if (skipped > 0) {
    char with_count[600];
    std::snprintf(with_count, sizeof(with_count),
                  "%s (%llu similar lines suppressed)", line,
                  static_cast<unsigned long long>(skipped));
    write_log_line(with_count);
  } else {
    write_log_line(line);
  }
  return true;
}

} // namespace mayfly

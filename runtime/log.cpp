#include <mayfly/runtime/log.hpp>

#include <chrono>
#include <cstdio>

namespace mayfly {

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
  if (skipped > 0)
    std::fprintf(stderr, "mayfly: %s (%llu similar lines suppressed)\n", line,
                 static_cast<unsigned long long>(skipped));
  else
    std::fprintf(stderr, "mayfly: %s\n", line);
  return true;
}

} // namespace mayfly

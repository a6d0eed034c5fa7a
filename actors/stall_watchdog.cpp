#include <mayfly/actors/internal/stall_watchdog.hpp>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <mayfly/actors/handler.hpp>
#include <mayfly/runtime/counters.hpp>
#include <mayfly/runtime/log.hpp>

namespace mayfly::detail {

namespace {

int64_t steady_ns() noexcept {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch())
    .count();
}

/// The kernel's name of thread `tid` of this process ("?" if gone).
void thread_name(int32_t tid, char* out, size_t size) noexcept {
  std::snprintf(out, size, "?");
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/self/task/%d/comm",
                static_cast<int>(tid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  auto n = ::read(fd, out, size - 1);
  ::close(fd);
  if (n <= 0) {
    std::snprintf(out, size, "?");
    return;
  }
  out[n] = '\0';
  for (ssize_t i = 0; i < n; ++i)
    if (out[i] == '\n')
      out[i] = '\0';
}

} // namespace

stall_watchdog::stall_watchdog(int64_t threshold_ns)
  : threshold_ns_(threshold_ns) {
  thread_ = std::thread{[this] { run(); }};
}

stall_watchdog::~stall_watchdog() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

activation_slot* stall_watchdog::begin(handler_type* type,
                                       int64_t start_ns) noexcept {
  auto index = this_thread_index();
  auto i = index % kSlots;
  auto& slot = slots_[i];
  if (slot.owner.load(std::memory_order_relaxed) != index + 1) {
    // First activation of this thread here (rare): take the slot over.
    slot.owner.store(index + 1, std::memory_order_relaxed);
    slot.tid.store(static_cast<int32_t>(::syscall(SYS_gettid)),
                   std::memory_order_relaxed);
    auto used = used_.load(std::memory_order_relaxed);
    while (used < i + 1
           && !used_.compare_exchange_weak(used, static_cast<uint32_t>(i + 1),
                                           std::memory_order_relaxed)) {
    }
  }
  slot.type.store(type, std::memory_order_relaxed);
  // Release: the watchdog that sees this start also sees the type.
  slot.start_ns.store(start_ns, std::memory_order_release);
  return &slot;
}

void stall_watchdog::run() noexcept {
  auto period = std::chrono::nanoseconds{std::max<int64_t>(threshold_ns_ / 2,
                                                           1000000)};
  std::unique_lock<std::mutex> guard{mtx_};
  while (!stop_) {
    cv_.wait_for(guard, period);
    if (stop_)
      break;
    guard.unlock();
    scan(steady_ns());
    guard.lock();
  }
}

void stall_watchdog::scan(int64_t now) noexcept {
  auto used = used_.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < used; ++i) {
    auto& slot = slots_[i];
    auto start = slot.start_ns.load(std::memory_order_acquire);
    if (start == 0 || now - start < threshold_ns_ || reported_[i] == start)
      continue;
    auto* type = slot.type.load(std::memory_order_relaxed);
    auto tid = slot.tid.load(std::memory_order_relaxed);
    auto owner = slot.owner.load(std::memory_order_relaxed);
    // The same activation still? (It may have ended, and another begun,
    // while we read.)
    if (type == nullptr
        || slot.start_ns.load(std::memory_order_acquire) != start)
      continue;
    reported_[i] = start;
    reports_.fetch_add(1, std::memory_order_relaxed);
    type->add(handler_type::stall_reports);
    char name[32];
    thread_name(tid, name, sizeof(name));
    log_line("stall: handler '%s' on thread '%s' (tid %d, index %u) running "
             "for %lld ms",
             type->name().c_str(), name, static_cast<int>(tid),
             static_cast<unsigned>(owner - 1),
             static_cast<long long>((now - start) / 1000000));
  }
}

} // namespace mayfly::detail

#include <mayfly/actors/internal/stall_watchdog.hpp>

#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
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

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected,
                const timespec* timeout) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE,
            expected, timeout, nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>* word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE,
            INT32_MAX, nullptr, nullptr, 0);
}

bool register_membarrier() noexcept {
  auto cmds = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  return cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0
         && ::syscall(SYS_membarrier,
                      MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0)
              == 0;
}

} // namespace

stall_watchdog::stall_watchdog(int64_t threshold_ns)
  : threshold_ns_(threshold_ns), membarrier_(register_membarrier()) {
  thread_ = std::thread{[this] { run(); }};
}

stall_watchdog::~stall_watchdog() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stop_.store(true);
  }
  cv_.notify_all();
  // After stop_ (seq_cst): a watchdog about to sleep either sees stop_ or
  // finds the word cleared and does not block.
  asleep_.store(0);
  futex_wake_all(&asleep_);
  thread_.join();
}

void stall_watchdog::wake() noexcept {
  if (asleep_.exchange(0, std::memory_order_relaxed) != 0)
    futex_wake_all(&asleep_);
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
  // The store above must not pass the load below: a compiler barrier here,
  // the watchdog's membarrier() the processor's (see the file comment).
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (asleep_.load(std::memory_order_relaxed) != 0) [[unlikely]]
    wake();
  return &slot;
}

void stall_watchdog::sleep_until_activation() noexcept {
  asleep_.store(1);
  if (membarrier_)
    ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  else
    std::atomic_thread_fence(std::memory_order_seq_cst);
  // Every activation that began before the barrier is visible now; every
  // later one sees asleep_ set and wakes us.
  bool running = false;
  auto used = used_.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < used && !running; ++i)
    running = slots_[i].start_ns.load(std::memory_order_relaxed) != 0;
  if (!running && !stop_.load()) {
    sleeps_.fetch_add(1, std::memory_order_relaxed);
    timespec fallback{kFallbackSleepNs / 1000000000,
                      kFallbackSleepNs % 1000000000};
    // Spurious returns (a signal, EAGAIN) end the sleep early: harmless.
    futex_wait(&asleep_, 1, membarrier_ ? nullptr : &fallback);
  }
  asleep_.store(0, std::memory_order_relaxed);
}

void stall_watchdog::run() noexcept {
  auto period = std::chrono::nanoseconds{std::max<int64_t>(threshold_ns_ / 2,
                                                           1000000)};
  int idle_scans = 0;
  std::unique_lock<std::mutex> guard{mtx_};
  while (!stop_.load()) {
    cv_.wait_for(guard, period);
    if (stop_.load())
      break;
    guard.unlock();
    idle_scans = scan(steady_ns()) ? 0 : idle_scans + 1;
    if (idle_scans >= kIdleScans) {
      sleep_until_activation();
      idle_scans = 0;
    }
    guard.lock();
  }
}

bool stall_watchdog::scan(int64_t now) noexcept {
  bool running = false;
  auto used = used_.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < used; ++i) {
    auto& slot = slots_[i];
    auto start = slot.start_ns.load(std::memory_order_acquire);
    running |= start != 0;
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
  return running;
}

} // namespace mayfly::detail

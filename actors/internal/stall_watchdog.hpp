#pragma once

// `stall_watchdog`: reports handler activations that run too long, while
// they run (not installed). Seastar's stall detector and Erlang's
// `system_monitor` `long_schedule` are the models.
//
// Every thread that runs handler activations (an IO thread running them
// inline, a CAF worker) publishes the activation in progress in its own
// slot, `slots_[this_thread_index() % kSlots]`, one cache line per slot:
// `begin` stores the handler type and the start time, `end` clears the
// start time. That is two relaxed stores (plus a release) per activation,
// nothing else on the datagram path; the activation's clock reads are the
// ones the latency histograms take anyway (actors/handler.cpp).
//
// One watchdog thread per runtime wakes every threshold/2, looks at the
// slots in use, and reports each activation that has been running for at
// least the threshold, once per activation, through the logger
// (`log_line`): "stall: handler 'x' on thread 'caf.worker' (tid 1234,
// index 5) running for 23 ms". It also counts the report on the handler
// type (`stall_reports`). When the activation ends, the handler layer
// counts it (`stalls`, `stall_max_us`) and logs its final duration
// (`handler_actor::resume`).
//
// Idle: while activations run, the watchdog scans every threshold/2 (a
// condition variable wait; 200 wake-ups/s at the default 10 ms). After
// `kIdleScans` scans in a row found no activation running it goes to sleep
// on a futex word (`asleep_`) with no timeout: an idle runtime costs the
// watchdog nothing. `begin` reads that word after publishing its start (a
// relaxed load of a line nobody writes while activations run) and only when
// it is set wakes the watchdog (one futex wake, once per idle period). The
// watchdog sets the word, then runs `membarrier(PRIVATE_EXPEDITED)` (a
// barrier on every running thread of the process) before its last look at
// the slots, so `begin` needs only a compiler barrier between its store and
// its load and no wake-up is missed. Where membarrier is unavailable the
// sleep is bounded (kFallbackSleep) instead: a rare missed wake-up then
// delays a report by at most that.
//
// Limits: slots are indexed by thread index modulo kSlots (thread indices
// are never reused); a thread takes its slot over on first use, so two
// live threads whose indices differ by a multiple of kSlots would share
// one and could hide each other's stalls. A report can be late by up to
// threshold/2.
//
// Ownership: the runtime owns it; the thread ends in the destructor.
// Thread-safety: `begin`/`end` from the thread that owns the slot;
// `reports`, `sleeps`, `asleep` from any thread; the rest from the
// runtime's controlling thread.

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace mayfly {
class handler_type;
} // namespace mayfly

namespace mayfly::detail {

/// The activation in progress on one thread.
struct alignas(64) activation_slot {
  /// Steady-clock ns when it started; 0: none in progress.
  std::atomic<int64_t> start_ns{0};
  std::atomic<handler_type*> type{nullptr};
  /// Thread index + 1 of the thread that last used the slot.
  std::atomic<uint32_t> owner{0};
  /// Its kernel thread id (for the report).
  std::atomic<int32_t> tid{0};
};

class stall_watchdog {
public:
  static constexpr size_t kSlots = 256;

  /// Scans in a row with no activation running before the watchdog sleeps
  /// until the next one (20 x threshold/2: 100 ms at the default 10 ms).
  static constexpr int kIdleScans = 20;

  /// Bound of that sleep where membarrier is unavailable.
  static constexpr int64_t kFallbackSleepNs = 1000000000;

  /// Starts the watchdog thread. `threshold_ns` > 0.
  explicit stall_watchdog(int64_t threshold_ns);

  /// Stops and joins the thread.
  ~stall_watchdog();

  stall_watchdog(const stall_watchdog&) = delete;
  stall_watchdog& operator=(const stall_watchdog&) = delete;

  int64_t threshold_ns() const noexcept {
    return threshold_ns_;
  }

  /// Publishes the calling thread's activation of `type`, started at
  /// `start_ns`. O(1), no allocation: relaxed stores in the slot, a release
  /// store of the start, a relaxed load of `asleep_`; when the watchdog
  /// sleeps (first activation after an idle period), one futex wake.
  /// Returns the slot for `end`.
  activation_slot* begin(handler_type* type, int64_t start_ns) noexcept;

  /// The activation published in `slot` ended.
  static void end(activation_slot* slot) noexcept {
    slot->start_ns.store(0, std::memory_order_relaxed);
  }

  /// Activations reported while running, all types.
  int64_t reports() const noexcept {
    return reports_.load(std::memory_order_relaxed);
  }

  /// Times the watchdog went to sleep until the next activation (idle
  /// periods). Counter.
  int64_t sleeps() const noexcept {
    return sleeps_.load(std::memory_order_relaxed);
  }

  /// Whether it sleeps now (no activation has run for kIdleScans scans).
  bool asleep() const noexcept {
    return asleep_.load(std::memory_order_relaxed) != 0;
  }

private:
  void run() noexcept;
  /// Reports what runs too long; returns whether any activation runs.
  bool scan(int64_t now) noexcept;
  /// Sleeps on `asleep_` until `begin` or the destructor clears it.
  void sleep_until_activation() noexcept;
  /// Clears `asleep_` and wakes the watchdog (cold: once per idle period).
  void wake() noexcept;

  int64_t threshold_ns_;
  std::array<activation_slot, kSlots> slots_{};
  std::atomic<uint32_t> used_{0}; // slots_[0, used_) have been used
  std::array<int64_t, kSlots> reported_{}; // watchdog thread only
  std::atomic<int64_t> reports_{0};
  std::atomic<int64_t> sleeps_{0};
  // 1 while the watchdog sleeps until the next activation (a futex word).
  // On a line of its own: read by every `begin`, written once per idle
  // period.
  alignas(64) std::atomic<uint32_t> asleep_{0};
  bool membarrier_ = false; // membarrier(PRIVATE_EXPEDITED) registered
  std::mutex mtx_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false}; // written under mtx_ (for cv_)
  std::thread thread_;
};

} // namespace mayfly::detail

#pragma once

/// @file
/// `inline_runner`: lets a receive thread run the handlers it spawns.
///
/// **Why.** `runtime::dispatch` hands a new handler to CAF's scheduler: the
/// receive thread enqueues it, a worker thread wakes up (or was napping) and
/// runs it, and its reply travels back to the receive thread. For a handler
/// that answers at once (echo, a DNS query) those two thread crossings cost
/// more than the handler: on a 2-core machine they are most of a datagram's
/// CPU (docs/benchmarks.md, "Where handlers start").
///
/// **What.** `inline_runner::dispatch` spawns the handler exactly as
/// `runtime::dispatch` does (same admission, arena lease, statistics), but
/// launches it on this runner, a CAF execution unit owned by the calling
/// thread, and runs the handler's first activation right away, on that
/// thread: its function, and everything up to the point where it finishes
/// or waits for a message. A handler that waits (a request to another
/// actor, a timeout) continues on CAF's workers like any actor when its
/// message arrives. Messages the handler sends while running here are
/// scheduled on CAF's workers as usual; only the handler itself runs inline.
///
/// **Trade-off.** While a handler runs inline, its receive thread does not
/// read: a handler that computes for long delays the datagrams behind it
/// (use several receive threads, or let handlers start on workers:
/// `net.handler_start = "workers"`).
///
/// Thread-safety: one runner per thread; only that thread calls `dispatch`.
/// Cost: no allocation beyond the spawn's own; no wake-up of another thread.
/// With the testing scheduler it falls back to `runtime::dispatch` (the
/// test coordinator decides when actors run).

#include <atomic>
#include <cstdint>

#include <caf/execution_unit.hpp>

#include <mayfly/actors/datagram.hpp>

namespace caf {
class resumable;
} // namespace caf

namespace mayfly {

class handler_type;
class runtime;
enum class dispatch_status : uint8_t;

/// Runs the first activation of handlers on the dispatching thread. See
/// file comment.
class inline_runner final : public caf::execution_unit {
public:
  explicit inline_runner(runtime& rt);
  ~inline_runner() override;

  inline_runner(const inline_runner&) = delete;
  inline_runner& operator=(const inline_runner&) = delete;

  /// As `runtime::dispatch`; when it returns `spawned`, the handler ran on
  /// this thread until it finished or waited for a message.
  dispatch_status dispatch(handler_type& type, datagram& d) noexcept;

  /// Handlers whose first activation ran here.
  int64_t started() const noexcept {
    return started_.load(std::memory_order_relaxed);
  }

  /// Of those, the ones that did not finish there (they wait for messages
  /// or yielded) and continue on CAF's workers.
  int64_t continued() const noexcept {
    return continued_.load(std::memory_order_relaxed);
  }

  /// CAF calls this to schedule an actor from code running on this unit.
  /// The handler being spawned is kept to run here; anything else (an actor
  /// a handler sent a message to) goes to CAF's scheduler.
  void exec_later(caf::resumable* job) override;

private:
  runtime* rt_;
  size_t max_throughput_;
  caf::resumable* captured_ = nullptr; // the handler just launched
  bool capturing_ = false;
  // Written by the owning thread only (no read-modify-write), read by
  // statistics from any thread.
  std::atomic<int64_t> started_{0};
  std::atomic<int64_t> continued_{0};
};

} // namespace mayfly

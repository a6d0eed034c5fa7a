#pragma once

/// @file
/// The barrier: "answer after everything received before".
///
/// A query datagram ("?*": how many lines so far?) must not be answered
/// before every datagram received earlier — on any receive thread — has
/// been handled: its handler's messages to an aggregator must be in the
/// aggregator's mailbox before the query's own message is. A handler
/// asks for that with `handler_context::after_earlier`:
///
/// ```cpp
/// rt.add_handler("ingest", [totals](mayfly::handler_context& ctx,
///                                   const mayfly::datagram& d) {
///   if (!is_query(d)) { ctx.send(totals, count_atom_v, lines(d)); return; }
///   ctx.after_earlier([&ctx, totals] {     // every earlier handler exited:
///     ctx.ask(totals, get_atom_v).then([&ctx](int64_t n) { ... });
///   });                                    // so their sends come first
/// });
/// ```
///
/// **What "earlier" means.** Every handler of the same type admitted (by
/// `runtime::dispatch`, on any thread) before the `after_earlier` call
/// happened: the datagrams received before the query on its own socket, and
/// whatever other receive threads had admitted by then. Those handlers
/// have *exited* when the continuation runs, and every message they sent
/// was enqueued before it (a CAF mailbox is one FIFO queue, so a message
/// the continuation sends to the same actor is processed after theirs). A
/// handler waiting in `after_earlier` no longer counts as earlier for
/// others (two queries never wait for each other). A handler that lingers
/// (awaits an answer) counts until it exits.
///
/// **Several receive threads.** A datagram still waiting in another
/// socket's kernel queue has not been admitted, so it is not "earlier",
/// whenever it was sent. Without CPU steering the kernel picks a client's
/// socket by its address and port (SO_REUSEPORT), so everything one client
/// sent before its query is read before it on the same thread and always
/// counts; with `steering::cpu` one client's datagrams may be read by
/// different threads, and only what they had admitted counts
/// (integration.BarrierThreads.* tests the first case: 2 threads, 16 clients).
///
/// **How.** `order_gate` is an epoch scheme with two buckets, like RCU's
/// grace periods. Admission adds the handler to the bucket of the current
/// epoch (a sharded counter: no contended cache line), its exit removes
/// it. A barrier flips the epoch and waits until the old bucket is empty;
/// flips are serialized (one grace period at a time; barriers that arrive
/// meanwhile share the next one), so handlers admitted before a flip are
/// all in buckets that drain. The runtime's barrier actor polls the
/// buckets every 100 µs while someone waits, and answers at most the
/// handler type's `ask_timeout` later with an error (the handler then
/// replies its `error_reply` and counts `ask_errors`, as for any `ask`).
///
/// **Cost.** Per handler: one relaxed add on the admitting thread's shard
/// plus a full fence, one relaxed add at exit; nothing else unless a
/// barrier is in progress. A barrier: O(shards) reads per poll.
///
/// Thread-safety: `enter`/`leave` from any thread; `request`/`passed` from
/// any thread (they take a mutex; cold path).

#include <atomic>
#include <cstdint>
#include <mutex>

#include <mayfly/runtime/counters.hpp>

namespace mayfly {

/// Epoch counters of one handler type. See file comment.
class order_gate {
public:
  /// Adds a handler being admitted to the current epoch's bucket and
  /// returns the bucket (0 or 1). Any thread; O(1), no allocation.
  uint8_t enter() noexcept {
    for (;;) {
      auto e = epoch_.load(std::memory_order_seq_cst);
      auto bucket = static_cast<uint8_t>(e & 1);
      live_.add(bucket);
      // Pairs with the fence after a flip: either the flipper sees this
      // add, or this thread sees the flip and moves to the new bucket.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (epoch_.load(std::memory_order_relaxed) == e)
        return bucket;
      live_.add(bucket, -1);
    }
  }

  /// Removes a handler from `bucket` (its exit, or its own `after_earlier`).
  /// Release: whoever sees the bucket drained sees every message the
  /// handler sent before. Any thread; O(1).
  void leave(uint8_t bucket) noexcept {
    std::atomic_thread_fence(std::memory_order_release);
    live_.add(bucket, -1);
  }

  /// Asks for a grace period that covers every handler admitted before
  /// this call; returns its number for `passed`. Cold path (a mutex).
  uint64_t request() noexcept;

  /// Whether grace period `target` has completed; advances the state (ends
  /// a drained period, starts the requested next one). Cold path.
  bool passed(uint64_t target) noexcept;

  /// Handlers counted in either bucket (for tests and statistics).
  int64_t counted() const noexcept {
    return live_.sum(0) + live_.sum(1);
  }

private:
  // Flips the epoch and starts draining the old bucket. mtx_ held.
  void flip() noexcept;

  std::atomic<uint64_t> epoch_{0};
  sharded_counters<2> live_;
  std::mutex mtx_;
  uint64_t flips_ = 0;      // mtx_: grace periods started
  uint64_t completed_ = 0;  // mtx_: grace periods drained
  bool draining_ = false;   // mtx_: flips_ > completed_
  bool next_wanted_ = false; // mtx_: someone waits for flips_ + 1
};

} // namespace mayfly

#pragma once

// `reply_queue`: replies made on other threads, on their way to an IO
// loop's replier (not installed). See docs/design/net.md, "Send".
//
// A handler that replies from a CAF worker (one that waited for a message,
// or every handler with `handler_start: workers`) cannot touch the loop's
// outgoing batch. Its reply crosses this bounded lock-free queue
// (many producers, one consumer: the loop), and the loop is woken if it
// sleeps. A reply made on the IO thread itself never comes here (it goes
// straight into the replier's batch).
//
// A copied reply (`post_copy`) is packed on the replying thread, by one of
// 64 packers chosen by the thread's index (each behind its own mutex:
// uncontended unless two threads share an index). The loop releases their
// partly filled buffers when it goes idle (`release_packers`), so no send
// buffer stays out of the pool while nothing is sent.
//
// A full queue drops the reply at once (`reply_queue_full`): a worker never
// blocks on the network.
//
// Ownership: queued replies and the packers' buffers. Thread-safety:
// `post*` from any thread; `drain_into`, `release_packers`, `drop_all` on
// the IO thread (or after it ended). Cost: `post` is one CAS-based push and
// a fence; `post_copy` adds one memcpy under an uncontended mutex.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include <mayfly/net/internal/replier.hpp>
#include <mayfly/net/internal/waker.hpp>
#include <mayfly/runtime/bounded_queue.hpp>
#include <mayfly/runtime/counters.hpp>
#include <mayfly/runtime/send_packer.hpp>

namespace mayfly::detail {

// X(name, kind, unit, help): the counters of a reply queue, declared once.
// The enum `reply_queue::counter`, their keys in `udp_endpoint::stats()`
// (summed over the loops) and their descriptions (`udp_endpoint_metrics`:
// Prometheus TYPE/HELP, the docs/stats.md table "net") are derived from it.
// `replies_queued` counts the queue's replies here; the endpoint adds the
// loops' inline ones (`replies_inline`) to it.
#define MAYFLY_REPLY_QUEUE_COUNTERS(X)                                         \
  X(replies_queued, counter, "", "replies accepted, whichever way they came "  \
    "(inline plus through the queue)")                                         \
  X(reply_queue_full, counter, "", "replies from other threads dropped: "      \
    "reply queue full")                                                        \
  X(reply_no_buffer, counter, "", "copied replies dropped: no send buffer")    \
  X(reply_after_close, counter, "", "replies dropped: endpoint already "       \
    "closed")                                                                  \
  X(wakeups, counter, "", "eventfd writes by other threads to wake a "         \
    "sleeping IO loop")

/// See file comment.
class reply_queue {
public:
  /// Counters written by replying threads (sharded), from
  /// `MAYFLY_REPLY_QUEUE_COUNTERS`.
  enum counter : size_t {
#define MAYFLY_X(name, kind, unit, help) name,
    MAYFLY_REPLY_QUEUE_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
    num_counters,
  };

  reply_queue(buffer_pools& pools, uint32_t capacity, waker& wake);

  /// Any thread: queues `payload` for `to`, to be sent from `from` (the
  /// local address the request arrived at; see `replier`); false
  /// (counted) when full or closed. `made`: when the handler made it
  /// (`reply_stamp`; 0: not timed).
  bool post(const udp_address& to, slice payload, const udp_address& from = {},
            uint32_t made = 0) noexcept;

  /// Any thread: packs `bytes` into a send buffer and queues them.
  bool post_copy(const udp_address& to, std::string_view bytes,
                 const udp_address& from = {}, uint32_t made = 0) noexcept;

  /// IO thread: moves queued replies into `out` while it has room. True
  /// when any moved.
  bool drain_into(replier& out) noexcept;

  bool empty() const noexcept {
    return queue_.empty();
  }

  /// IO thread, idle: gives back the packers' partly filled buffers.
  void release_packers() noexcept;

  /// Refuses every later reply (`reply_after_close`). Any thread.
  void close() noexcept {
    closed_.store(true, std::memory_order_release);
  }

  /// After the IO thread ended: drops what is queued (returns how many)
  /// and every packer's buffer.
  int64_t drop_all() noexcept;

  int64_t count(counter c) const noexcept {
    return counters_.sum(c);
  }

  /// What the packers of copied replies did, summed. Any thread (takes
  /// each packer's mutex in turn: statistics only).
  send_packer_counts packed() const noexcept;

private:
  static constexpr size_t kPackers = 64;

  struct alignas(64) packer_slot {
    mutable std::mutex mtx;
    std::optional<send_packer> packer; // guarded by mtx
  };

  buffer_pools* pools_;
  waker* waker_;
  bounded_queue<transmit> queue_;
  std::unique_ptr<packer_slot[]> packers_;
  std::atomic<uint64_t> holding_{0}; // bit i: packer i may hold a buffer
  std::atomic<bool> closed_{false};
  sharded_counters<num_counters> counters_;
};

} // namespace mayfly::detail

#pragma once

// `io_counters`: the counters one IO loop writes (not installed).
//
// Declared once, in `MAYFLY_IO_COUNTERS` below: each entry is the name the
// endpoint's statistics use (docs/stats.md, "net") and what it counts. The
// enum, the JSON keys and the sums over loops are all derived from it.
//
// Thread-safety: one writer, the loop's IO thread (relaxed load + store, no
// read-modify-write); any thread reads. Cost: one store per bump.

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mayfly::detail {

// X(name, what it counts). Every receive path, admission, the replier and
// the loop bump these; the order is the order of the statistics.
#define MAYFLY_IO_COUNTERS(X)                                                  \
  /* receive path */                                                           \
  X(datagrams_in, "datagrams received (each GRO segment counts)")              \
  X(bytes_in, "payload bytes received")                                        \
  X(recv_calls, "receive calls that returned datagrams")                       \
  X(recv_errors, "receive calls that failed (EINTR excluded): an error "       \
                 "report, no datagram lost")                                   \
  X(truncated, "datagrams dropped: larger than the buffer (MSG_TRUNC)")        \
  X(control_truncated, "GRO receives dropped: segment size lost "              \
                       "(MSG_CTRUNC)")                                         \
  X(spilled, "datagrams larger than a standard slot, copied into a jumbo "     \
             "slot")                                                           \
  X(large_drops, "datagrams dropped: larger than a standard slot, no "         \
                 "jumbo slot")                                                 \
  X(pool_waits, "receive rounds skipped: no standard slot")                    \
  X(gro_receives, "receives that held several coalesced datagrams")            \
  X(gro_segments, "datagrams that arrived in those")                           \
  X(gro_copied, "lone small datagrams copied out of a jumbo slot")             \
  X(uring_rearms, "multishot receives armed again after they ended")           \
  X(uring_ring_empty, "-ENOBUFS: the provided-buffer ring ran dry")            \
  X(uring_refill_waits, "ring slots the standard pool could not give")         \
  X(pktinfo_missing, "datagrams on a wildcard-bound socket that came "        \
                     "without their destination address: answered from "    \
                     "the kernel's default source")                          \
  /* admission */                                                              \
  X(policy_drops, "datagrams dropped by the drop policy")                      \
  X(source_limit_drops, "datagrams refused: their source over its rate")       \
  X(source_table_evictions, "source buckets in debt evicted for a new source") \
  X(paused, "datagrams held while handlers were at their bound")               \
  X(shutdown_drops, "datagrams read but not dispatched: runtime stopping")     \
  X(drained_at_stop, "datagrams read after the socket left the port at "   \
                     "stop: queued before, answered as usual")                \
  X(left_in_kernel_at_close, "datagrams still queued in the socket (or "       \
                             "its ring) when the endpoint closed")             \
  /* replier */                                                                \
  X(replies_inline, "replies put straight into the outgoing batch by a "      \
                    "handler running on the IO thread")                       \
  X(datagrams_out, "datagrams the kernel took")                                \
  X(bytes_out, "payload bytes the kernel took")                                \
  X(send_calls, "sendmmsg calls")                                              \
  X(datagrams_out_standard, "datagrams sent from a standard-class buffer "     \
                            "(a send buffer or a received slot)")              \
  X(bytes_out_standard, "payload bytes in those")                              \
  X(datagrams_out_jumbo, "datagrams sent from a jumbo-class buffer")           \
  X(bytes_out_jumbo, "payload bytes in those")                                 \
  X(datagrams_out_oversize, "datagrams sent from a dedicated buffer "          \
                            "(larger than a jumbo slot)")                      \
  X(bytes_out_oversize, "payload bytes in those")                              \
  X(send_errors, "replies dropped: the kernel refused them (sum of the "       \
                 "send_dropped_* reasons)")                                    \
  X(send_dropped_too_large, "... EMSGSIZE")                                    \
  X(send_dropped_unreachable, "... ECONNREFUSED, EHOSTUNREACH, "               \
                              "ENETUNREACH twice in a row")                    \
  X(send_dropped_other, "... any other error")                                 \
  X(send_retries, "send calls retried after an error report (EINTR, an "       \
                  "ICMP error, a partial sendmmsg)")                           \
  X(send_blocked, "sends that found the socket full (EAGAIN, ENOBUFS)")        \
  X(reply_batch_full, "inline replies dropped: batch full, socket blocked")    \
  X(shutdown_reply_drops, "replies dropped at close: the socket took no "      \
                          "more")                                              \
  X(gso_sends, "messages sent with UDP_SEGMENT")                               \
  X(gso_segments, "datagrams sent in those")                                   \
  X(gso_errors, "GSO messages the kernel refused (GSO then switched off, "     \
                "the replies resent one by one)")                              \
  /* loop */                                                                   \
  X(polls, "times the loop slept in poll()")                                   \
  X(spins, "idle rounds the loop polled instead of sleeping")                  \
  X(spin_hits, "spins that found work")

enum io_counter : size_t {
#define MAYFLY_X(name, what) name,
  MAYFLY_IO_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  num_io_counters,
};

/// The statistics key of each counter, in enum order.
inline constexpr const char* io_counter_names[] = {
#define MAYFLY_X(name, what) #name,
  MAYFLY_IO_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
};

/// One loop's counters. See file comment.
class io_counters {
public:
  /// IO thread only.
  void bump(io_counter c, int64_t n = 1) noexcept {
    v_[c].store(v_[c].load(std::memory_order_relaxed) + n,
                std::memory_order_relaxed);
  }

  /// IO thread only (snapshots such as the kernel's drop counter).
  void set(io_counter c, int64_t n) noexcept {
    v_[c].store(n, std::memory_order_relaxed);
  }

  /// Any thread.
  int64_t get(io_counter c) const noexcept {
    return v_[c].load(std::memory_order_relaxed);
  }

private:
  std::atomic<int64_t> v_[num_io_counters] = {};
};

} // namespace mayfly::detail

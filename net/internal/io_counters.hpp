#pragma once

// `io_counters`: the counters one IO loop writes (not installed).
//
// Declared once, in `MAYFLY_IO_COUNTERS` below: each entry is the name the
// endpoint's statistics use (docs/stats.md, "net"), its kind, unit and what
// it counts. The enum, the JSON keys, the sums over loops, the Prometheus
// TYPE/HELP and the docs table (`udp_endpoint_metrics`) are all derived
// from it.
//
// Thread-safety: one writer, the loop's IO thread (relaxed load + store, no
// read-modify-write); any thread reads. Cost: one store per bump.

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mayfly::detail {

// X(name, kind, unit, help): the statistics key, its `metric_kind`
// (runtime/metrics.hpp), its unit ("" for a count) and what it counts, as
// docs/stats.md shows it (generated from here). Every receive path,
// admission, the replier and the loop bump these; the order is the order of
// the statistics. To convert a two-column line `X(name, "help")`, write
// `X(name, counter, "", "help")` (a unit such as "bytes" where it has one).
#define MAYFLY_IO_COUNTERS(X)                                                  \
  /* receive path */                                                           \
  X(datagrams_in, counter, "", "datagrams received whole (each GRO "          \
    "segment counts)")                                                         \
  X(bytes_in, counter, "bytes", "their payload bytes")                         \
  X(recv_calls, counter, "", "receive calls that returned datagrams "          \
    "(io_uring path: rounds that reaped completions)")                         \
  X(recv_errors, counter, "", "failed receive calls (e.g. ECONNREFUSED, the "  \
    "report of an ICMP error for an earlier reply; ENOBUFS): no datagram is "  \
    "lost, the one waiting is read next")                                      \
  X(truncated, counter, "", "datagrams larger than the receive buffers "       \
    "(MSG_TRUNC): dropped, never delivered cut")                               \
  X(control_truncated, counter, "", "GRO receives whose control message was "  \
    "cut (MSG_CTRUNC: the segment size lost): dropped rather than split by "   \
    "a guess")                                                                 \
  X(spilled, counter, "", "datagrams larger than a standard slot, copied "     \
    "whole into a jumbo slot")                                                 \
  X(large_drops, counter, "", "... dropped because no jumbo slot was free or " \
    "no jumbo class exists")                                                   \
  X(pool_waits, counter, "", "receive rounds that found the standard pool "    \
    "empty")                                                                   \
  X(gro_receives, counter, "", "receives (GRO path) that held several "        \
    "coalesced datagrams")                                                     \
  X(gro_segments, counter, "", "datagrams that arrived in those, each "        \
    "delivered as a slice of the one binary")                                  \
  X(gro_copied, counter, "", "lone datagrams (GRO path) small enough for a "   \
    "standard slot, copied out of the jumbo slot")                             \
  X(uring_rearms, counter, "", "io_uring path: multishot receives submitted "  \
    "again after they ended")                                                  \
  X(uring_ring_empty, counter, "", "io_uring path: times the provided-buffer " \
    "ring ran dry (`-ENOBUFS`; the kernel queues in the socket meanwhile)")    \
  X(uring_refill_waits, counter, "", "io_uring path: ring slots the standard " \
    "pool could not give (looked for again after ≤ 1 ms)")                     \
  X(pktinfo_missing, counter, "", "wildcard binds: datagrams that came "       \
    "without their destination address (no IP_PKTINFO / IPV6_PKTINFO, or it "  \
    "was cut: MSG_CTRUNC); each is still answered, from the kernel's default " \
    "source. 0 on specific binds")                                             \
  /* admission */                                                              \
  X(policy_drops, counter, "", "datagrams dropped by `overload: drop`")        \
  X(source_limit_drops, counter, "", "datagrams refused because their source " \
    "was over its per-source rate (`source_limit`, guide.md \"Limiting each "  \
    "source\"); never held, never handed to a handler")                        \
  X(source_table_evictions, counter, "", "buckets of sources still refilling " \
    "that were given to a newly seen source (the table was full in that "      \
    "set). A newcomer takes the least debt of its set and inherits it; "       \
    "steadily rising: the table is too small for the number of sources "       \
    "(`net.source_limit.table_size`)")                                         \
  X(paused, counter, "", "datagrams held back under `overload: pause` (the "   \
    "loop stops reading until handlers finish)")                               \
  X(shutdown_drops, counter, "", "datagrams read but not handed to a handler " \
    "because the runtime was stopping (held ones at close included). Before "  \
    "`runtime::start()` nothing is read, so this stays 0 for an endpoint "     \
    "opened early")                                                            \
  X(drained_at_stop, counter, "", "datagrams read after the socket left the "  \
    "port at stop: they were queued before and are answered as usual "         \
    "(docs/guide.md, \"Restarting without losing datagrams\")")                \
  X(left_in_kernel_at_close, counter, "", "datagrams still queued for the "    \
    "socket (or taken into the io_uring ring but not reaped) when the "        \
    "endpoint closed: read out and counted, never silently dropped with the "  \
    "socket")                                                                  \
  /* replier */                                                                \
  X(replies_inline, counter, "", "replies put straight into the loop's "       \
    "outgoing batch by a handler running on the IO thread (part of "           \
    "`replies_queued`)")                                                       \
  X(datagrams_out, counter, "", "replies the kernel took")                     \
  X(bytes_out, counter, "bytes", "their bytes")                                \
  X(send_calls, counter, "", "`sendmmsg` calls")                               \
  X(datagrams_out_standard, counter, "", "replies that left from a "           \
    "standard-class buffer: a send buffer the replies were packed into, or "   \
    "the request's own slot (a zero-copy reply)")                              \
  X(bytes_out_standard, counter, "bytes", "their bytes")                       \
  X(datagrams_out_jumbo, counter, "", "... from a jumbo slot (a large reply "  \
    "packed alone, or a zero-copy reply of a request that needed a jumbo "     \
    "slot, GRO receives included)")                                            \
  X(bytes_out_jumbo, counter, "bytes", "their bytes")                          \
  X(datagrams_out_oversize, counter, "", "... from a dedicated buffer: a "     \
    "copied reply larger than a jumbo slot (one allocation each: if this "     \
    "grows, raise `jumbo_slot_size`)")                                         \
  X(bytes_out_oversize, counter, "bytes", "their bytes")                       \
  X(send_errors, counter, "", "replies dropped because the kernel refused "    \
    "them: the sum of the three `send_dropped_*` reasons")                     \
  X(send_dropped_too_large, counter, "", "... EMSGSIZE")                       \
  X(send_dropped_unreachable, counter, "", "... ECONNREFUSED, EHOSTUNREACH, "  \
    "ENETUNREACH (and EHOSTDOWN, ENETDOWN) on the retry too")                  \
  X(send_dropped_other, counter, "", "... any other error")                    \
  X(send_retries, counter, "", "sends tried again: after EINTR, or after a "   \
    "first ICMP error report (which concerns an earlier reply)")               \
  X(send_blocked, counter, "", "sends that found the socket full (EAGAIN: "    \
    "wait for POLLOUT) or no kernel buffers (ENOBUFS: look again after 1 "     \
    "ms); the replies wait, nothing dropped")                                  \
  X(reply_batch_full, counter, "", "inline replies dropped: the batch was "    \
    "full and the socket took nothing")                                        \
  X(shutdown_reply_drops, counter, "", "replies still waiting at close that "  \
    "the socket did not take")                                                 \
  X(gso_sends, counter, "", "reply messages sent with UDP_SEGMENT (one "       \
    "message, several datagrams to one peer of one size)")                     \
  X(gso_segments, counter, "", "replies that left in those")                   \
  X(gso_errors, counter, "", "GSO messages the kernel refused (EIO, EINVAL, "  \
    "EMSGSIZE); GSO is then off for that socket and the same replies go out " \
    "one by one")                                                              \
  /* loop */                                                                   \
  X(polls, counter, "", "`poll` calls of the IO loops (times they went to "    \
    "sleep)")                                                                  \
  X(spins, counter, "", "idle rounds in which a loop polled its receive path " \
    "again instead of sleeping (adaptive polling)")                            \
  X(spin_hits, counter, "", "polling spells that found work before their "     \
    "end")

enum io_counter : size_t {
#define MAYFLY_X(name, kind, unit, help) name,
  MAYFLY_IO_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  num_io_counters,
};

/// The statistics key of each counter, in enum order.
inline constexpr const char* io_counter_names[] = {
#define MAYFLY_X(name, kind, unit, help) #name,
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

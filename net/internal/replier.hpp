#pragma once

// `replier`: the last stage of a datagram's life, where replies leave
// (not installed). See docs/design/net.md, "Send".
//
//   receiver ──► admission ──► handler ──► replier ──► kernel
//                                          (this)
//
// The replier owns the loop's outgoing batch: up to `batch` replies, each a
// `transmit` (a destination and a slice). Replies get there two ways:
// a handler running on the IO thread adds its reply directly (`add`,
// `add_copy`); replies made on other threads cross the lock-free
// `reply_queue` first and the loop moves them in. `flush` sends the batch
// with `sendmmsg` through the loop's `socket_calls`:
//
// - GSO: replies to one peer of one size (at most one MTU's payload, at
//   most 64 segments, 64 KiB in all) go out as one message with a
//   UDP_SEGMENT control message; the kernel splits it. A kernel that
//   refuses (EIO, EINVAL, EMSGSIZE on such a message) gets the same replies
//   again one by one, and GSO is off for this loop from then on (logged
//   once, counted in `gso_errors`): nothing is lost.
// - Errors: EINTR and a first ICMP error report (ECONNREFUSED,
//   EHOSTUNREACH, ENETUNREACH: the kernel reports an earlier datagram's
//   fate on the next call) are retried; EAGAIN/ENOBUFS keep the batch and
//   make the loop wait (POLLOUT, or 1 ms for ENOBUFS); a message the kernel
//   refuses for itself (EMSGSIZE, unreachable twice, anything else) is
//   dropped and counted under its reason; the rest of the batch goes on.
//   A partial sendmmsg sends the rest in the next call.
//
// Copied replies (`add_copy`) are packed by the replier's own `send_packer`
// into standard pool buffers; `release_buffer` gives the partly filled one
// back when the loop goes idle, so no buffer stays out of the pool while
// nothing is sent.
//
// Source address: on a socket bound to a wildcard (`set_source`) each
// reply carries the local address its request arrived at (`transmit::from`)
// and leaves from it (IP_PKTINFO / IPV6_PKTINFO in the message's control
// area, beside UDP_SEGMENT; pktinfo.hpp); GSO groups replies by (peer,
// source, size). A reply without a source (unspecified) leaves from the
// kernel's choice. A socket bound to one address adds nothing.
//
// Timing: a reply carries the time its handler made it (`made`, read
// by the endpoint when latency histograms are on); when sendmmsg returns
// with it, the replier reads the clock once for the call and records
// "reply → handed to the kernel" in the handler type's histogram.
//
// Ownership: pending replies (their slices) and the packer's buffer.
// Thread-safety: none (the IO thread), except `gso()`. Cost: `add` is a
// slice move, `add_copy` one memcpy; per batch one sendmmsg; no allocation.

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <mayfly/actors/address.hpp>
#include <mayfly/actors/handler.hpp>
#include <mayfly/net/internal/io_counters.hpp>
#include <mayfly/net/internal/socket_calls.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/send_packer.hpp>
#include <mayfly/runtime/slice.hpp>

namespace mayfly::detail {

/// One outgoing datagram (quinn-udp's `Transmit`).
struct transmit {
  udp_address to;
  /// When the handler made it (`reply_stamp`); 0: not timed (latency
  /// histograms off). 32 bits, here: it fills the padding behind `to`, so
  /// a transmit (and every batch and queue of them) is no bigger for it.
  uint32_t made = 0;
  slice payload;
  /// The local address to send from (used with `replier_env::set_source`);
  /// unspecified: the kernel's default source.
  udp_address from;
};

namespace transmit_layout {
/// `transmit` without its time stamp: the stamp must not make it bigger.
struct untimed {
  udp_address to;
  slice payload;
  udp_address from;
};
} // namespace transmit_layout

static_assert(sizeof(transmit) == sizeof(transmit_layout::untimed),
              "the time stamp must stay in padding");

/// A reply's time stamp: the low 32 bits of steady-clock ns, made odd (0
/// means "not timed"; 1 ns of error). Differences are exact up to 4.29 s;
/// a reply held longer (a socket blocked that long) wraps and is recorded
/// 4.29 s short.
inline uint32_t reply_stamp(int64_t now_ns) noexcept {
  return static_cast<uint32_t>(now_ns) | 1u;
}

/// Nanoseconds from `stamp` to `now_ns` (see `reply_stamp`).
inline int64_t since_stamp(int64_t now_ns, uint32_t stamp) noexcept {
  return static_cast<uint32_t>(static_cast<uint32_t>(now_ns) - stamp);
}

/// What a replier needs from its loop.
struct replier_env {
  int fd = -1;
  buffer_pools* pools = nullptr;
  const socket_calls* calls = nullptr;
  io_counters* counters = nullptr;
  uint32_t batch = 32;         ///< replies per sendmmsg
  bool gso = true;             ///< try UDP GSO
  size_t gso_max_segment = 1472; ///< one MTU's payload
  std::string name;            ///< for the log line when GSO is refused
  /// Where "reply → handed to the kernel" is recorded (the endpoint's
  /// handler type); null: not recorded.
  handler_type* timing = nullptr;
  /// The socket is bound to a wildcard: send each reply from its
  /// `transmit::from` (IP_PKTINFO / IPV6_PKTINFO).
  bool set_source = false;
};

/// See file comment.
class replier {
public:
  explicit replier(replier_env env);

  replier(const replier&) = delete;
  replier& operator=(const replier&) = delete;

  /// Whether another reply fits without a flush.
  bool has_room() const noexcept {
    return count_ < pending_.size();
  }

  size_t pending() const noexcept {
    return count_;
  }

  /// Queues `payload` for `to`, sent from `from` (see `set_source`),
  /// sending the batch first when it is full. `made`: when the handler made
  /// it (`reply_stamp`; 0: not timed). False when there is no room even
  /// then (the socket is full): nothing queued, the caller counts it.
  bool add(const udp_address& to, slice payload, const udp_address& from = {},
           uint32_t made = 0) noexcept;

  /// Copies `bytes` into a send buffer (the replier's packer) and queues
  /// them. False when no buffer or no room; counted by the caller.
  bool add_copy(const udp_address& to, std::string_view bytes,
                const udp_address& from = {}, uint32_t made = 0) noexcept;

  /// Sends what is pending. True when everything went (sent or dropped
  /// and counted); false when the socket is full and replies wait.
  bool flush() noexcept;

  /// The socket was full (EAGAIN): wait for POLLOUT before flushing again.
  bool wants_writable() const noexcept {
    return blocked_;
  }

  /// The kernel had no buffers (ENOBUFS): look again after a millisecond.
  bool backing_off() const noexcept {
    return backoff_;
  }

  /// The socket is writable again (POLLOUT), or the back-off is over.
  void unblock() noexcept {
    blocked_ = false;
    backoff_ = false;
  }

  /// Gives the packer's partly filled buffer back (the loop is idle).
  void release_buffer() noexcept {
    packer_.release();
  }

  /// What the replier's packer did (copied replies). Any thread.
  send_packer_counts packed() const noexcept {
    return packer_.counts();
  }

  /// Drops every pending reply, counted as `shutdown_reply_drops` (close).
  void drop_pending() noexcept;

  /// Whether replies are sent with GSO now (false once the kernel
  /// refused). Any thread.
  bool gso() const noexcept {
    return gso_.load(std::memory_order_relaxed);
  }

private:
  struct message {
    uint32_t first;   // position of its first reply in order_
    uint32_t count;   // replies (GSO segments)
    uint32_t segment; // GSO segment size; 0: one datagram per message
    uint32_t rep;     // pending_ index of its first reply (grouping key)
  };

  struct table_slot {
    uint32_t generation = 0;
    uint32_t group = 0;
  };

  size_t plan() noexcept;
  void build(size_t messages) noexcept;
  void retire(size_t messages, bool sent) noexcept;
  void record_sent(size_t messages) noexcept;
  void drop_first(io_counter reason) noexcept;
  void disable_gso(int err) noexcept;

  replier_env env_;
  io_counters& c_;
  send_packer packer_;
  std::atomic<bool> gso_;
  bool blocked_ = false;
  bool backoff_ = false;
  bool retried_ = false; // the last call was a retry after an error report
  std::vector<transmit> pending_;
  size_t count_ = 0;
  // Planning scratch, sized once (no allocation per batch).
  std::vector<uint32_t> group_of_; // pending_ index -> group
  std::vector<message> plan_;      // one per message, in sending order
  std::vector<uint32_t> order_;    // pending_ indices, message by message
  std::vector<uint32_t> cursor_;   // per group: next position in order_
  std::vector<table_slot> table_;  // (peer, source, size) -> open group
  uint32_t generation_ = 0;        // table_ slots of older plans are stale
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<char> controls_; // per message: UDP_SEGMENT, source address
};

} // namespace mayfly::detail

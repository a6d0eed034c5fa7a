#pragma once

// `uring_receiver`: the io_uring receive path of one IO loop (not
// installed). See docs/design/net.md, "io_uring receive path".
//
// One multishot `recvmsg` on the loop's socket draws its buffers from a
// provided-buffer ring whose every entry is a standard pool slot. The
// kernel writes each datagram (after a small header, the peer's address and
// the control messages) straight into a slot; the slot is frozen into a
// binary and the datagram is a slice of it: no copy in user space, and the
// binary goes back to the pool like any other. The ring is refilled with
// fresh slots as datagrams leave it; when it ran dry (-ENOBUFS) or the
// request ended for any other reason (no IORING_CQE_F_MORE), the request is
// re-armed, and counted.
//
// Payload room per datagram is a slot less the header, the address and the
// control area (~1.9 KiB with 2 KiB slots): larger datagrams arrive with
// MSG_TRUNC and are counted as truncated, never delivered cut.
//
// Ownership: owns the ring, the buffer-ring mapping and the slots lent to
// the kernel; destroying it tears the ring down (the kernel writes no more)
// before the slots go back to the pool. Thread-safety: none; `make` and
// `reap` on the IO thread only (io_uring runs a request's deferred work on
// the thread that submitted it: armed elsewhere, datagrams would wait for
// that thread). Cost per datagram: one CQE, no syscall while completions are
// waiting (the ring is polled through its fd when idle).

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <mayfly/runtime/address.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/slice.hpp>

namespace mayfly::detail {

/// One completion, as the IO loop needs it.
struct uring_datagram {
  slice payload;
  udp_address peer;
  bool truncated = false;  ///< MSG_TRUNC: payload empty, count and drop
  bool has_drops = false;  ///< an SO_RXQ_OVFL total came with it
  uint32_t drops_total = 0;
};

/// Events of one `reap`, for the loop's counters.
struct uring_counts {
  int64_t rearms = 0;       ///< multishot requests submitted again
  int64_t ring_empty = 0;   ///< -ENOBUFS: the ring had no buffer left
  int64_t errors = 0;       ///< other failed completions
  int64_t refill_waits = 0; ///< slots the pool could not give for the ring
};

class uring_receiver {
public:
  /// Sets up a ring with `entries` buffers (rounded up to a power of two)
  /// taken from `pool`, and arms the multishot receive on `fd`. On failure
  /// returns null and says why in `why` (io_uring missing or forbidden, no
  /// buffer rings, no multishot recvmsg, pool too small...).
  static std::unique_ptr<uring_receiver> make(int fd, buffer_pool& pool,
                                              uint32_t entries,
                                              std::string& why) noexcept;

  ~uring_receiver();

  uring_receiver(const uring_receiver&) = delete;
  uring_receiver& operator=(const uring_receiver&) = delete;

  /// The ring's fd: readable when completions wait.
  int fd() const noexcept;

  /// Takes up to `max` completions into `out`, refills the ring and re-arms
  /// the request when it ended. Returns how many were written. Never blocks.
  size_t reap(uring_datagram* out, size_t max, uring_counts& counts) noexcept;

  /// Whether the ring lacks buffers the pool could not give (the loop then
  /// looks again shortly instead of sleeping).
  bool starved() const noexcept {
    return !missing_.empty();
  }

private:
  struct impl;
  explicit uring_receiver(std::unique_ptr<impl> p) noexcept;

  void refill(uring_counts& counts) noexcept;
  bool arm() noexcept;

  std::unique_ptr<impl> impl_;
  std::vector<uint16_t> missing_; // buffer ids lent out, awaiting a slot
};

} // namespace mayfly::detail

#pragma once

// `uring_receiver`: the io_uring receive path of one IO loop (not
// installed). See receiver.hpp for the family, and docs/design/net.md,
// "io_uring receive path".
//
// One multishot `recvmsg` on the loop's socket draws its buffers from a
// provided-buffer ring whose every entry is a standard pool slot. The
// kernel writes each datagram (after a small header and the peer's address)
// straight into a slot; the slot is frozen into a
// binary and the datagram is a slice of it: no copy in user space, and the
// binary goes back to the pool like any other. The ring is refilled with
// fresh slots as datagrams leave it; when it ran dry (-ENOBUFS) or the
// request ended for any other reason (no IORING_CQE_F_MORE), the request is
// re-armed, and counted.
//
// Payload room per datagram is a slot less the header and the address
// (~2 KiB less ~50 bytes): larger datagrams arrive with MSG_TRUNC and are
// counted as truncated, never delivered cut. No control message is asked
// for (kernel drops are read through SO_MEMINFO).
//
// Not under the `socket_calls` seam: the kernel's answers arrive as
// completions, tested on a real ring.
//
// Ownership: owns the ring, the buffer-ring mapping and the slots lent to
// the kernel; destroying it tears the ring down (the kernel writes no more)
// before the slots go back to the pool. Thread-safety: none; made and
// called on the IO thread only (io_uring runs a request's deferred work on
// the thread that submitted it: armed elsewhere, datagrams would wait for
// that thread), destroyed once that thread has ended. Cost per datagram: one CQE, no syscall while completions are
// waiting (the ring is polled through its fd when idle).

#include <memory>
#include <string>

#include <mayfly/net/internal/receiver.hpp>

namespace mayfly::detail {

/// The io_uring receive path; null when io_uring, buffer rings or multishot
/// recvmsg are unavailable, or the pool cannot fill the ring (`why` says
/// which).
std::unique_ptr<receiver> make_uring_receiver(const receiver_env& env,
                                              std::string& why);

} // namespace mayfly::detail

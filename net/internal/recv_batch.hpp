#pragma once

// `recv_batch`: the recvmmsg platform layer of the mmsg and GRO receive
// paths (not installed).
//
// Owns the `mmsghdr`, `iovec`, name and control arrays of one batch; the
// caller points each message at its buffers (`set`), `read` makes one
// recvmmsg through the loop's `socket_calls`, and `meta(i)` says what the
// kernel reported for message i (quinn-udp's `RecvMeta`). Nothing above
// this file touches an `mmsghdr` on the receive side.
//
// Thread-safety: none (the IO thread). Cost: `read` is one system call;
// `meta` walks the control messages only when a control area was asked for
// (GRO, or the destination address on a wildcard socket), so the default
// path asks the kernel for none.

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <vector>

#include <mayfly/net/internal/receiver.hpp>
#include <mayfly/net/internal/socket_calls.hpp>
#include <mayfly/runtime/buffer_pool.hpp>

namespace mayfly::detail {

class recv_batch {
public:
  /// `n` messages of up to two iovecs each, `control` bytes of control
  /// area per message (0: none asked for). `local` is each message's local
  /// address unless a control message names another (IP_PKTINFO).
  recv_batch(size_t n, size_t control, const udp_address& local = {});

  size_t size() const noexcept {
    return msgs_.size();
  }

  /// Message i reads into `first`, then `second` when it has room (a spill
  /// area for the tail of a large datagram).
  void set(size_t i, iovec first, iovec second = {nullptr, 0}) noexcept;

  /// One round: gives each message a slot from `pool` (`slots[i]`, kept
  /// from the last round when unused; the first the pool cannot give ends
  /// the batch) and, with a `spill` area, its i-th `spill_size` bytes
  /// behind the slot; then one recvmmsg through `calls`. Returns how many
  /// datagrams were read (then `status` is `got`), or 0 with `status` saying
  /// why: `starved` (no slot; `pool_waits`), `empty` (EAGAIN), `got` (EINTR,
  /// or an error report that consumed no datagram: `recv_errors`).
  size_t read(const socket_calls& calls, int fd, buffer_pool& pool,
              std::vector<mutable_buffer>& slots, std::byte* spill,
              size_t spill_size, io_counters& counters,
              recv_status& status) noexcept;

  /// What the kernel reported for message i of the last `read`.
  recv_meta meta(size_t i) const noexcept;

private:
  size_t control_;
  udp_address local_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<udp_address> names_;
  std::vector<char> controls_;
};

} // namespace mayfly::detail

#pragma once

// The recvmmsg layer of the mmsg and GRO receive paths (not installed):
// `recv_batch`, the system call and its arrays, and `recvmmsg_receiver`,
// the part of a receive path both paths share. See receiver.hpp for the
// family and docs/design/net.md, "Receive path", for a datagram's way.
//
// `recv_batch`:
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
#include <cstdint>
#include <vector>

#include <mayfly/actors/datagram.hpp>
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

/// A receive path over one `recv_batch`: the slots of the batch, the pool
/// they come from, and what `receiver` asks of every recvmmsg path
/// (`receive`, `release_idle`, `discard_queued`, `wait_fd`). `Path` (CRTP,
/// so the per-datagram call is direct) keeps only what differs: its `kind`
/// and `void deliver(size_t i, const recv_meta& meta, admission& to,
/// int64_t now) noexcept`, which turns message i of the last read into
/// datagrams and admits them (or counts why not); message i's buffer is
/// `slots_[i]`, left in place for the next read unless `deliver` takes it.
///
/// Ownership: the slots of the batch (given back when idle, at close and on
/// destruction); a spill area, if any, belongs to `Path` (`spill_` only
/// points at it). Thread-safety: none (the IO thread). Cost per `receive`:
/// one recvmmsg and, when something was read, one clock read; per message:
/// `meta` and `deliver`, no allocation.
template <class Path>
class recvmmsg_receiver : public receiver {
public:
  int wait_fd() const noexcept final {
    return env_.fd;
  }

  recv_status receive(admission& to) noexcept final {
    recv_status status;
    size_t n = batch_.read(*env_.calls, env_.fd, pool_, slots_, spill_,
                           spill_size_, c_, status);
    auto now = n > 0 ? steady_now_ns() : 0;
    for (size_t i = 0; i < n; ++i)
      static_cast<Path*>(this)->deliver(i, batch_.meta(i), to, now);
    return status;
  }

  void release_idle() noexcept final {
    for (auto& s : slots_)
      s = mutable_buffer{};
  }

  int64_t discard_queued() noexcept final {
    release_idle();
    return drain_and_count(env_.fd);
  }

protected:
  /// `batch` messages read into slots of `pool`, `control` bytes of
  /// control area each (0: none).
  recvmmsg_receiver(const receiver_env& env, buffer_pool& pool, size_t batch,
                    size_t control)
    : env_(env),
      c_(*env.counters),
      pool_(pool),
      standard_slot_(env.pools->standard().slot_size()),
      batch_(batch, control, env.local),
      slots_(batch) {
  }

  /// A datagram of `meta`'s peer and local address, read at `now`; the
  /// caller sets its payload.
  static datagram addressed(const recv_meta& meta, int64_t now) noexcept {
    datagram d;
    d.peer = meta.peer;
    d.local = meta.local;
    d.received_ns = now;
    return d;
  }

  /// The socket asked for each datagram's destination and this message
  /// came without it (counted by the caller in `pktinfo_missing`).
  bool lacks_local(const recv_meta& meta) const noexcept {
    return env_.pktinfo && !meta.local_known;
  }

  receiver_env env_;
  io_counters& c_;
  buffer_pool& pool_;           ///< where the batch's slots come from
  const size_t standard_slot_;  ///< bytes of a standard pool slot
  std::byte* spill_ = nullptr;  ///< `Path`'s spill area (batch × spill_size_)
  size_t spill_size_ = 0;
  recv_batch batch_;
  std::vector<mutable_buffer> slots_;
};

} // namespace mayfly::detail

#pragma once

/// @file
/// `datagram_writer`: the send side's write arena.
///
/// Outgoing datagrams are packed back to back into fixed-size refcounted pool
/// buffers (the standard class). A datagram is never split: one that does not
/// fit in what is left of the current buffer starts a fresh one; one larger
/// than a standard slot goes to a jumbo slot, larger still to a dedicated
/// buffer. Each queued datagram is a `slice` of its buffer, so a buffer goes
/// back to its pool when the last datagram in it has been sent (`consume`).
///
/// ```
///   standard slot:  [dgram 1][dgram 2][dgram 3][ free ... ]
///                    ^ slice   ^ slice  ^ slice  ^ current_ (still writable)
///   queue: {peer, slice} {peer, slice} {peer, slice} {peer, jumbo slice} ...
/// ```
///
/// A reply may also be queued as a slice of a received binary (`write(to,
/// slice)`): nothing is copied in user space, the iovec points into the
/// received buffer, which stays alive until the datagram is consumed.
///
/// `fill()` turns the queue into `mmsghdr`/`iovec` arrays for one
/// `sendmmsg`; `consume(n)` drops the first n after the kernel took them.
///
/// Thread-safety: none; one writer per sending thread. Cost: `write` is one
/// `memcpy` plus a slice (a refcount increment and the slice accounting), no
/// allocation while the pool has slots; O(1) amortized.

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include <mayfly/runtime/address.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/slice.hpp>

namespace mayfly {

/// Packs byte strings back to back into standard pool buffers, turning each
/// into a slice; never splits one; larger ones get a jumbo or dedicated
/// buffer of their own. The packing half of `datagram_writer`, usable alone
/// by a thread that hands the slices to someone else (a reply queue).
///
/// Holds one writable buffer between calls; `release()` gives it back.
/// Not thread-safe. `pack` is one memcpy, no allocation while the pool has
/// slots.
class send_packer {
public:
  explicit send_packer(buffer_pools& pools) noexcept : pools_(&pools) {
  }

  send_packer(const send_packer&) = delete;
  send_packer& operator=(const send_packer&) = delete;

  /// Copies `bytes` into a send buffer and returns them as a slice; an empty,
  /// ownerless slice when no buffer could be had (check `has_owner()`).
  slice pack(std::string_view bytes) noexcept;

  /// Gives the current (partly filled) buffer back; packed slices keep it
  /// alive until they are dropped.
  void release() noexcept {
    current_ = mutable_buffer{};
  }

  /// Standard buffers started so far.
  uint64_t buffers() const noexcept {
    return buffers_;
  }

  /// Strings that needed a jumbo or dedicated buffer.
  uint64_t large() const noexcept {
    return large_;
  }

private:
  buffer_pools* pools_;
  mutable_buffer current_;
  uint64_t buffers_ = 0;
  uint64_t large_ = 0;
};

/// One queued datagram: destination and bytes.
struct outgoing_datagram {
  udp_address to;
  slice payload;
};

/// Counters of one writer (single-threaded: plain integers).
struct writer_stats {
  uint64_t datagrams = 0;    ///< queued
  uint64_t bytes = 0;        ///< queued payload bytes
  uint64_t copied = 0;       ///< datagrams copied into send buffers
  uint64_t zero_copy = 0;    ///< datagrams queued as slices
  uint64_t buffers = 0;      ///< standard send buffers started
  uint64_t large = 0;        ///< datagrams that needed a jumbo/dedicated buffer
  uint64_t batch_full = 0;   ///< writes refused: queue full
  uint64_t no_buffer = 0;    ///< writes refused: pool exhausted
};

/// Packs outgoing datagrams into pool buffers. See file comment.
class datagram_writer {
public:
  /// A writer that queues at most `max_batch` datagrams before `consume`.
  /// Allocates its queue once here.
  datagram_writer(buffer_pools& pools, uint32_t max_batch = 64);

  datagram_writer(const datagram_writer&) = delete;
  datagram_writer& operator=(const datagram_writer&) = delete;

  /// Copies `bytes` into a send buffer and queues it for `to`. Returns false
  /// (counted, nothing queued) when the queue is full or no buffer is left.
  bool write(const udp_address& to, std::string_view bytes) noexcept;

  /// Queues `payload` itself for `to`: no copy. Returns false (counted) when
  /// the queue is full.
  bool write(const udp_address& to, slice payload) noexcept;

  /// Datagrams queued and not yet consumed.
  size_t pending() const noexcept {
    return tail_ - head_;
  }

  bool full() const noexcept {
    return tail_ == max_batch_;
  }

  /// The queued datagrams, oldest first.
  const outgoing_datagram* begin() const noexcept {
    return queue_.get() + head_;
  }

  const outgoing_datagram* end() const noexcept {
    return queue_.get() + tail_;
  }

  /// Fills up to `max` headers and iovecs (one iovec per datagram) for the
  /// oldest pending datagrams; returns how many. The arrays point into the
  /// queue: valid until the next `write`, `consume` or `clear`.
  size_t fill(mmsghdr* msgs, iovec* iovs, size_t max) const noexcept;

  /// Drops the oldest `n` pending datagrams (the kernel took them): their
  /// slices are released, and buffers whose last datagram this was go back
  /// to the pool.
  void consume(size_t n) noexcept;

  /// Drops every pending datagram and the current buffer.
  void clear() noexcept;

  const writer_stats& stats() const noexcept {
    return stats_;
  }

private:
  bool enqueue(const udp_address& to, slice payload) noexcept;

  uint32_t max_batch_;
  uint32_t head_ = 0;
  uint32_t tail_ = 0;
  std::unique_ptr<outgoing_datagram[]> queue_;
  send_packer packer_;
  writer_stats stats_;
};

} // namespace mayfly

#pragma once

/// @file
/// `send_packer`: the send side's write arena.
///
/// Outgoing byte strings are packed back to back into fixed-size refcounted
/// pool buffers (the standard class), and each comes back as a `slice` of its
/// buffer. A string is never split: one that does not fit in what is left of
/// the current buffer starts a fresh one; one larger than a standard slot gets
/// a jumbo slot, larger still a dedicated buffer. A buffer goes back to its
/// pool when the last slice of it is dropped (the network layer drops a
/// reply's slice once the kernel took it).
///
/// ```
///   standard slot:  [reply 1][reply 2][reply 3][ free ... ]
///                    ^ slice   ^ slice  ^ slice  ^ current (still writable)
/// ```
///
/// The packer holds its current, partly filled buffer between calls, so a
/// buffer serves many small replies. `release()` lets go of it: a packer
/// that will not pack again soon (an idle IO loop) must call it, or the
/// buffer stays out of the pool for good.
///
/// Memory only: the packer knows nothing of sockets or addresses (net/
/// queues the slices with their destinations and sends them).
///
/// Thread-safety: none, except `counts()`: one packer per packing thread
/// (or behind a lock); `counts()` may be read from any thread (statistics).
/// Cost: `pack` is one `memcpy` plus a slice (a refcount increment) and two
/// relaxed stores, no allocation while the pool has slots; O(1).

#include <atomic>
#include <cstdint>
#include <string_view>

#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/slice.hpp>

namespace mayfly {

/// What a packer has done so far (the send side's figures in /stats).
struct send_packer_counts {
  /// Standard buffers started.
  uint64_t buffers = 0;
  /// Bytes packed into standard buffers: `bytes / buffer_bytes` is how
  /// full a send buffer is when the packer leaves it.
  uint64_t bytes = 0;
  /// Capacity of the standard buffers started (`buffers` * slot size).
  uint64_t buffer_bytes = 0;
  /// Strings that needed a jumbo or dedicated buffer.
  uint64_t large = 0;

  send_packer_counts& operator+=(const send_packer_counts& o) noexcept {
    buffers += o.buffers;
    bytes += o.bytes;
    buffer_bytes += o.buffer_bytes;
    large += o.large;
    return *this;
  }
};

/// Packs byte strings back to back into standard pool buffers. See file
/// comment.
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
  /// alive until they are dropped. O(1).
  void release() noexcept {
    current_ = mutable_buffer{};
  }

  /// Whether a partly filled buffer is held.
  bool holding() const noexcept {
    return static_cast<bool>(current_);
  }

  /// What this packer did so far. Any thread (relaxed: may lag a little).
  send_packer_counts counts() const noexcept {
    auto buffers = buffers_.load(std::memory_order_relaxed);
    return {buffers, bytes_.load(std::memory_order_relaxed),
            buffers * pools_->standard().slot_size(),
            large_.load(std::memory_order_relaxed)};
  }

private:
  // One writer (the packing thread): load + store, no read-modify-write.
  static void bump(std::atomic<uint64_t>& c, uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  buffer_pools* pools_;
  mutable_buffer current_;
  std::atomic<uint64_t> buffers_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> large_{0};
};

} // namespace mayfly

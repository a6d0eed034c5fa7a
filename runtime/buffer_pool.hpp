#pragma once

/// @file
/// Buffer pools: where received datagrams and outgoing replies live.
///
/// A `buffer_pool` is one size class: a `slot_pool` (one contiguous,
/// page-aligned region) plus one binary header per slot. `acquire()` hands
/// out a `mutable_buffer`, the unique writable handle of a fresh binary; its
/// owner fills it (`recvmmsg` writes straight into `data()`) and freezes the
/// filled part into immutable `slice`s. The slot returns to the pool when the
/// last slice of it is dropped, on any thread.
///
/// `buffer_pools` is the set of classes the runtime uses: *standard* (one
/// MTU-sized datagram per slot, 2 KiB by default), *jumbo* (64 KiB: any UDP
/// datagram, a GRO batch, a send buffer for large replies) and, for anything
/// larger or when a class is missing, a *dedicated* buffer allocated for that
/// one binary (counted). `acquire(n)` picks the smallest class that fits.
///
/// Exhaustion is a value: `acquire` returns `errc::pool_exhausted`, counted in
/// the pool's statistics; it never blocks and never falls back to another
/// class silently.
///
/// Thread-safety: everything may be called from any thread; a
/// `mutable_buffer` object itself is not synchronized.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mayfly/runtime/metrics.hpp>
#include <mayfly/runtime/result.hpp>
#include <mayfly/runtime/slice.hpp>
#include <mayfly/runtime/slot_pool.hpp>

namespace mayfly {

/// The unique, writable handle of a fresh binary. Move-only.
///
/// Fill `data()`, then freeze what you wrote: `freeze(n)` turns the first `n`
/// writable bytes into a slice and gives up the rest, `split_to(n)` freezes
/// the first `n` bytes and keeps the remainder writable (a send buffer packs
/// many datagrams this way; a GRO buffer splits into segments). Frozen bytes
/// are never written again. Dropping a mutable_buffer drops its reference.
class mutable_buffer {
public:
  mutable_buffer() noexcept = default;

  mutable_buffer(mutable_buffer&& other) noexcept
    : hdr_(std::exchange(other.hdr_, nullptr)),
      begin_(std::exchange(other.begin_, nullptr)),
      end_(std::exchange(other.end_, nullptr)) {
  }

  mutable_buffer& operator=(mutable_buffer&& other) noexcept {
    mutable_buffer tmp{std::move(other)};
    std::swap(hdr_, tmp.hdr_);
    std::swap(begin_, tmp.begin_);
    std::swap(end_, tmp.end_);
    return *this;
  }

  mutable_buffer(const mutable_buffer&) = delete;
  mutable_buffer& operator=(const mutable_buffer&) = delete;

  ~mutable_buffer() {
    if (hdr_ != nullptr)
      detail::drop_ref(hdr_, 0); // a writable buffer's reference views 0
  }

  /// A dedicated buffer of `capacity` bytes (one mimalloc allocation,
  /// counted). Returns an empty buffer if the allocator refuses.
  static mutable_buffer dedicated(size_t capacity) noexcept;

  explicit operator bool() const noexcept {
    return hdr_ != nullptr;
  }

  /// First writable byte.
  std::byte* data() const noexcept {
    return begin_;
  }

  /// Writable bytes left.
  size_t capacity() const noexcept {
    return static_cast<size_t>(end_ - begin_);
  }

  /// Freezes the first `n` writable bytes into a slice; the rest stays
  /// writable in this buffer. O(1): one atomic add on the binary's
  /// reference word (a reference viewing `n`) plus the slice accounting
  /// (relaxed adds on the calling thread's counter shard).
  /// @pre `n <= capacity()` and `*this`
  slice split_to(size_t n) noexcept;

  /// Freezes the first `n` writable bytes and gives up this handle (its
  /// reference moves into the slice, which now views `n`: one relaxed
  /// atomic add on the binary's viewed sum). O(1).
  /// @pre `n <= capacity()` and `*this`
  slice freeze(size_t n) && noexcept;

  /// Whether the buffer is a pool slot (not dedicated).
  bool pooled() const noexcept {
    return hdr_ != nullptr && hdr_->pool != nullptr;
  }

private:
  friend class buffer_pool;

  explicit mutable_buffer(detail::binary_header* hdr) noexcept
    : hdr_(hdr), begin_(hdr->data), end_(hdr->data + hdr->capacity) {
  }

  detail::binary_header* hdr_ = nullptr;
  std::byte* begin_ = nullptr;
  std::byte* end_ = nullptr;
};

/// Live binaries of one pool, found by scanning its headers (O(capacity),
/// for the stats endpoint only; never on the datagram path).
struct binary_census {
  /// Slots holding a binary: something of them was frozen and is referenced.
  uint64_t live = 0;
  /// Slots held as writable buffers with nothing frozen yet (a receive
  /// batch waiting for datagrams, a send buffer being filled): in use, but
  /// not binaries, and not in the figures above or below.
  uint64_t writable = 0;
  uint64_t live_bytes = 0;   ///< frozen bytes of live binaries
  uint64_t pinned_bytes = 0; ///< slot bytes held by live binaries
  /// Live binaries by reference count: 1, 2, 3-4, 5-8, 9+.
  uint64_t refs[5] = {};
  /// Age of the oldest live binary since its first freeze, 0 if none.
  int64_t oldest_age_ns = 0;
  uint32_t oldest_holder = 0;
  uint32_t oldest_slot = slot_pool::kNoSlot;
};

/// Live binaries of the pools attributed to one holder tag (the tag last
/// recorded with `slice::mark_holder`), found by the same header scan as
/// `binary_census`.
struct holder_usage {
  uint64_t binaries = 0;     ///< live binaries
  /// Bytes their live slices view (each binary's viewed sum, see
  /// runtime/slice.hpp; a slice viewing a byte twice counts it twice).
  uint64_t viewed_bytes = 0;
  uint64_t pinned_bytes = 0; ///< slot bytes they keep out of the pool
  int64_t oldest_age_ns = 0; ///< age of the oldest since its first freeze
};

/// One size class of binaries. See file comment.
class buffer_pool {
public:
  /// Maps the region and the header array. Fails as `slot_pool::make`.
  static result<std::unique_ptr<buffer_pool>> make(slot_pool::options opts);

  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;

  /// A fresh binary with one reference, or `errc::pool_exhausted` (counted).
  /// O(1) amortized, no allocation.
  result<mutable_buffer> acquire() noexcept;

  /// The same as `acquire` but an empty buffer on exhaustion; for hot loops
  /// that do not want a `result`.
  mutable_buffer try_acquire() noexcept;

  size_t slot_size() const noexcept {
    return slots_->slot_size();
  }

  const slot_pool& slots() const noexcept {
    return *slots_;
  }

  /// Scans the headers; see `binary_census`. O(capacity). With `by_holder`,
  /// also adds each live binary to `(*by_holder)[its holder tag]`, growing
  /// the vector as needed (allocates: for the stats thread).
  binary_census census(std::vector<holder_usage>* by_holder = nullptr) const;

  /// Binaries returned to this pool that the detach policy released early:
  /// a slice of theirs was detached on its way to a long-lived actor and
  /// none went to one as it is (`detail::binary_flags`). Counter.
  int64_t released_early() const noexcept {
    return early_.sum(0);
  }

  /// Pool and binary statistics as JSON (docs/stats.md, "pools").
  nlohmann::json stats() const;

  /// Called by the last reference. Any thread.
  void release(detail::binary_header* hdr) noexcept;

private:
  explicit buffer_pool(std::unique_ptr<slot_pool> slots);

  std::unique_ptr<slot_pool> slots_;
  std::unique_ptr<detail::binary_header[]> headers_;
  sharded_counters<1> early_; // released_early
};

/// Sizes and capacities of the standard buffer classes.
struct buffer_pools_config {
  /// Standard class: one MTU datagram per slot.
  size_t standard_slot_size = 2048;
  uint32_t standard_capacity = 8192;
  /// Jumbo class: a 64 KiB datagram or GRO batch per slot. 0 disables it.
  size_t jumbo_slot_size = 65536;
  uint32_t jumbo_capacity = 128;
  bool huge_pages = true;
  bool prefault = false;
};

/// The size classes of the runtime: standard, jumbo, dedicated. See file
/// comment. Owns its pools; outlives every binary taken from it.
class buffer_pools {
public:
  static result<std::unique_ptr<buffer_pools>> make(buffer_pools_config cfg);

  /// A buffer of at least `n` bytes from the smallest class that fits, or a
  /// dedicated one when no class does (counted as `dedicated`). Fails with
  /// `pool_exhausted` when the fitting class is exhausted (never tries a
  /// larger class: that would hide the exhaustion).
  result<mutable_buffer> acquire(size_t n) noexcept;

  buffer_pool& standard() noexcept {
    return *standard_;
  }

  /// Null when the jumbo class is disabled.
  buffer_pool* jumbo() noexcept {
    return jumbo_.get();
  }

  /// Slots out of every class plus live dedicated binaries: zero when every
  /// binary has been released.
  int64_t outstanding() const noexcept;

  /// All classes as JSON: {"standard": {...}, "jumbo": {...}, "dedicated":
  /// {...}}.
  nlohmann::json stats() const;

private:
  buffer_pools() = default;

  std::unique_ptr<buffer_pool> standard_;
  std::unique_ptr<buffer_pool> jumbo_;
};

/// Process-wide counters of dedicated binaries (allocations, live, live
/// bytes). Dedicated binaries belong to no pool.
struct dedicated_binaries {
  static int64_t allocations() noexcept;
  static int64_t live() noexcept;
  static int64_t live_bytes() noexcept;
};

/// What `buffer_pools::stats()` renders (docs/stats.md, "pools"): each size
/// class under "/pools/{pool}", and the pseudo-class `dedicated` there too.
extern const metric_section pool_class_metrics;
extern const metric_section dedicated_pool_metrics;

} // namespace mayfly

#pragma once

/// @file
/// `slice`: a zero-copy, refcounted view into an immutable binary.
///
/// A *binary* is a byte buffer with an atomic reference count in a header
/// that lives beside it: a slot of a `buffer_pool` (the header sits in the
/// pool's header array, the bytes in the pool's region, so payloads stay
/// aligned), or one dedicated allocation for buffers no pool class fits and
/// for `detach()`ed copies. Bytes of a binary never change once frozen.
///
/// A slice is a value: (pointer, length, owner). Every slice holds one
/// reference on its binary; the binary goes back to its pool (or is freed)
/// when the last slice drops, on whichever thread that happens.
///
/// ```
///   slice a ----+                     header (pool's array)
///   slice b --+ |                     +--------------------------+
///             | +--> [....####.....] <| refs = 3, viewed = 10, ...|
///   slice c --+----> [..........###]  +--------------------------+
///                    slot in the pool region
/// ```
///
/// - Copying a slice adds a reference (one atomic add, plus two relaxed
///   adds for the slice accounting below); moving does not. Destroying or
///   reassigning drops one (one atomic subtract plus the accounting; the last
///   one returns the slot).
/// - Sub-slices (`sub`, `split_to`, `split_off`, `slice_ref`) share the
///   binary: O(1), no copy, no allocation. `advance` and `shrink` narrow a
///   slice in place: one atomic add on the binary's header each.
///
/// Bytes viewed per binary: the header's reference word (`binary_header::
/// counts`) holds the reference count in its low 32 bits and the sum of the
/// lengths its references view in its high 32 bits, so a copy is still ONE
/// `fetch_add(len << 32 | 1)` and a drop ONE `fetch_sub`; the last reference
/// is the one that brings the low half to 0. A `sub(a, b)` is a new
/// reference viewing `b - a`; `split_to`/`split_off` move bytes between two
/// references of the same binary (the sum is unchanged: only the count
/// grows); a `mutable_buffer`'s reference views 0 until it is frozen. The
/// stats endpoint reads the sums per holder (`buffer_pool::census`). The sum
/// is kept modulo 2^32: it is exact while the references' lengths add up to
/// less than 4 GiB per binary (for a pool slot of S bytes: fewer than 2^32/S
/// full-length references at once, 65536 for a 64 KiB jumbo slot); past
/// that it wraps (reported as it is, never corrupting the count).
/// - A slice can outlive every other handle, its pool's users included, but
///   not the pool itself (pools outlive all their binaries: the runtime
///   checks this at shutdown).
/// - A small slice keeps its whole binary alive ("pinning"). `detach()`
///   copies the viewed bytes into a dedicated binary of their own; do that
///   before storing a slice for long (the tally aggregator detaches keys).
///
/// Why atomic refcounts: slices cross CAF worker threads (a handler forwards
/// a NAME slice to an aggregator on another worker). Seastar's non-atomic
/// `temporary_buffer` refcount is why its buffers cannot leave a core; we pay
/// one uncontended atomic per copy instead.
///
/// Statistics: the process-wide number of live slices and the bytes they
/// view are kept in sharded counters (`slice::live_count()`,
/// `slice::viewed_bytes()`): a relaxed add on the calling thread's shard per
/// slice created or destroyed, never a contended cache line.
///
/// Thread-safety: a slice object is not synchronized (like `std::string`);
/// distinct slices of the same binary may be used and destroyed on any
/// threads concurrently.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string_view>
#include <utility>

#include <mayfly/runtime/assert.hpp>
#include <mayfly/runtime/counters.hpp>

namespace mayfly {

class buffer_pool;
class slice;

namespace detail {

/// The control block of one binary. One per pool slot (in the pool's header
/// array) or at the head of a dedicated allocation.
struct binary_header {
  /// Low 32 bits: number of live references (slices plus at most one
  /// mutable_buffer). High 32 bits: the sum of the lengths those references
  /// view, modulo 2^32 (statistics; see the file comment). Read with
  /// `ref_count` and `viewed_of`.
  std::atomic<uint64_t> counts{0};
  /// Bytes frozen so far (statistics only). Written only by the binary's
  /// `mutable_buffer` (one owner), read by the census.
  std::atomic<uint32_t> size{0};
  /// Steady-clock nanoseconds when the first bytes were frozen; 0 while
  /// nothing is (a writable buffer, not yet a binary). Statistics only.
  std::atomic<int64_t> born_ns{0};
  /// Opaque tag of the latest holder (set by the actor layer for the
  /// pinning report and the top holders; 0: none recorded).
  std::atomic<uint32_t> holder{0};
  /// `binary_flags` bits recorded by the detach policy (actors layer):
  /// read once when the binary is released. Reset when the slot is reused.
  std::atomic<uint8_t> flags{0};
  /// Slot index in `pool`; unused when dedicated.
  uint32_t slot = 0;
  /// Owning pool; null for a dedicated allocation.
  buffer_pool* pool = nullptr;
  /// First byte of the buffer.
  std::byte* data = nullptr;
  /// Usable bytes at `data`.
  uint32_t capacity = 0;
};

/// Bits of `binary_header::flags`.
enum binary_flags : uint8_t {
  /// A slice of this binary was copied out (detached) on its way to a
  /// long-lived actor.
  detached_for_holder = 1,
  /// A slice of this binary went to a long-lived actor as it is (not
  /// detached): a long-lived actor holds, or held, a reference.
  sent_to_holder = 2,
};

/// Returns the binary to its pool or frees it. Out of line: the cold path.
void destroy_binary(binary_header* hdr) noexcept;

/// Allocates a dedicated binary of `capacity` bytes with one reference, or
/// null when the allocator refuses. One call to mimalloc.
binary_header* make_dedicated_binary(size_t capacity) noexcept;

/// The reference count in a `binary_header::counts` word.
constexpr uint32_t ref_count(uint64_t counts) noexcept {
  return static_cast<uint32_t>(counts);
}

/// The viewed-bytes sum (modulo 2^32) in a `binary_header::counts` word.
constexpr uint32_t viewed_of(uint64_t counts) noexcept {
  return static_cast<uint32_t>(counts >> 32);
}

/// A `counts` word (or an addend to one): `refs` references viewing
/// `viewed` bytes. Lengths are below 2^32 (a binary's capacity is).
constexpr uint64_t counts_of(uint32_t refs, uint64_t viewed) noexcept {
  return viewed << 32 | refs;
}

/// Adds a reference viewing `viewed` bytes: one relaxed atomic add.
inline void add_ref(binary_header* hdr, uint64_t viewed) noexcept {
  hdr->counts.fetch_add(counts_of(1, viewed), std::memory_order_relaxed);
}

/// Drops a reference viewing `viewed` bytes: one atomic subtract; the last
/// reference (the count's low half reaching 0) destroys the binary. The low
/// half never borrows from the high one (the count is >= 1 before), and the
/// high half wraps modulo 2^32 on its own.
inline void drop_ref(binary_header* hdr, uint64_t viewed) noexcept {
  // acq_rel: the last owner must see every write made through other
  // references before the slot is reused.
  auto before
    = hdr->counts.fetch_sub(counts_of(1, viewed), std::memory_order_acq_rel);
  if (ref_count(before) == 1) {
    // The last reference views what remains of the sum: any other value is
    // an accounting bug in the slice operations.
    MAYFLY_ASSERT(viewed_of(before) == static_cast<uint32_t>(viewed));
    destroy_binary(hdr);
  }
}

/// A reference of `hdr` now views `delta` more bytes (negative: fewer). One
/// relaxed atomic add on the high half; the count is untouched.
inline void change_view(binary_header* hdr, int64_t delta) noexcept {
  hdr->counts.fetch_add(static_cast<uint64_t>(delta) << 32,
                        std::memory_order_relaxed);
}

/// Process-wide slice accounting (see `slice::live_count()`): live slices
/// and the bytes they view, sharded per thread.
inline sharded_counters<2> slice_stats;

/// Adds to the slice accounting. Inline: one TLS read and one or two relaxed
/// adds on the calling thread's shard.
inline void count_slice(int64_t slices, int64_t bytes) noexcept {
  if (slices != 0)
    slice_stats.add(0, slices);
  if (bytes != 0)
    slice_stats.add(1, bytes);
}

} // namespace detail

/// A zero-copy, refcounted view into an immutable binary. See file comment.
class slice {
public:
  // -- construction ---------------------------------------------------------

  /// An empty slice that owns nothing. O(1).
  slice() noexcept = default;

  /// Copies `n` bytes at `src` into a new dedicated binary. One allocation;
  /// for tests and cold paths. Returns an empty slice when `n == 0` or the
  /// allocator refuses.
  static slice copy_of(const void* src, size_t n) noexcept;

  /// Copies `str` into a new dedicated binary (see `copy_of`).
  static slice copy_of(std::string_view str) noexcept {
    return copy_of(str.data(), str.size());
  }

  /// Adds a reference. O(1), no allocation: one atomic increment and two
  /// relaxed adds on this thread's accounting shard (~2.4x a shared_ptr
  /// copy, docs/benchmarks.md).
  slice(const slice& other) noexcept
    : data_(other.data_), size_(other.size_), owner_(other.owner_) {
    if (owner_ != nullptr) {
      detail::add_ref(owner_, size_);
      detail::count_slice(1, size_);
    }
  }

  /// Takes over `other`'s reference; `other` becomes empty. O(1).
  slice(slice&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      owner_(std::exchange(other.owner_, nullptr)) {
  }

  slice& operator=(const slice& other) noexcept {
    slice tmp{other};
    swap(tmp);
    return *this;
  }

  slice& operator=(slice&& other) noexcept {
    slice tmp{std::move(other)};
    swap(tmp);
    return *this;
  }

  /// Drops the reference; the last one returns the binary. O(1).
  ~slice() {
    reset();
  }

  /// Drops the reference and becomes empty.
  void reset() noexcept {
    if (owner_ != nullptr) {
      detail::count_slice(-1, -static_cast<int64_t>(size_));
      detail::drop_ref(std::exchange(owner_, nullptr), size_);
    }
    data_ = nullptr;
    size_ = 0;
  }

  void swap(slice& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(owner_, other.owner_);
  }

  // -- access ---------------------------------------------------------------

  const std::byte* data() const noexcept {
    return data_;
  }

  size_t size() const noexcept {
    return size_;
  }

  bool empty() const noexcept {
    return size_ == 0;
  }

  /// The bytes as characters; valid while this slice (or any slice of the
  /// same binary) lives.
  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(data_), size_};
  }

  std::byte operator[](size_t i) const noexcept {
    return data_[i];
  }

  /// Whether this slice holds a reference (an empty slice may still hold
  /// one, e.g. a zero-length datagram).
  bool has_owner() const noexcept {
    return owner_ != nullptr;
  }

  /// References on the binary right now (0 when ownerless). For tests and
  /// statistics; stale as soon as another thread copies or drops one.
  uint32_t use_count() const noexcept {
    return owner_ ? detail::ref_count(
                      owner_->counts.load(std::memory_order_relaxed))
                  : 0;
  }

  /// Bytes all references of the binary view right now, modulo 2^32 (0 when
  /// ownerless). For tests and statistics; stale like `use_count`.
  uint32_t binary_viewed_bytes() const noexcept {
    return owner_ ? detail::viewed_of(
                      owner_->counts.load(std::memory_order_relaxed))
                  : 0;
  }

  /// Bytes this slice keeps alive: the capacity of its whole binary.
  size_t pinned_bytes() const noexcept {
    return owner_ ? owner_->capacity : 0;
  }

  /// Whether the binary is a pool slot (rather than a dedicated buffer).
  bool pooled() const noexcept {
    return owner_ != nullptr && owner_->pool != nullptr;
  }

  /// Records `tag` as the binary's holder for the pinning report. O(1).
  void mark_holder(uint32_t tag) const noexcept {
    if (owner_)
      owner_->holder.store(tag, std::memory_order_relaxed);
  }

  /// The binary's holder tag (0: none recorded). For tests and statistics.
  uint32_t holder() const noexcept {
    return owner_ ? owner_->holder.load(std::memory_order_relaxed) : 0;
  }

  /// Sets `detail::binary_flags` bits on the binary (the detach policy's
  /// record of what it did with slices of it). O(1), one relaxed atomic or.
  void mark_flags(uint8_t bits) const noexcept {
    if (owner_)
      owner_->flags.fetch_or(bits, std::memory_order_relaxed);
  }

  // -- sub-slicing (all O(1), no copy, no allocation) -----------------------

  /// The bytes [begin, end) of this slice, sharing the binary.
  /// @pre `begin <= end && end <= size()`
  slice sub(size_t begin, size_t end) const noexcept {
    MAYFLY_ASSERT(begin <= end && end <= size_);
    return slice{data_ + begin, end - begin, owner_, add_ref_tag{}};
  }

  /// The bytes from `begin` to the end.
  /// @pre `begin <= size()`
  slice sub(size_t begin) const noexcept {
    return sub(begin, size_);
  }

  /// Removes and returns the first `at` bytes; this slice keeps the rest.
  /// The binary's viewed sum is unchanged (bytes move between two
  /// references): one atomic add for the new reference.
  /// @pre `at <= size()`
  slice split_to(size_t at) noexcept {
    MAYFLY_ASSERT(at <= size_);
    slice head{data_, at, owner_, split_tag{}};
    data_ += at;
    size_ -= static_cast<uint32_t>(at);
    return head;
  }

  /// Removes and returns the bytes from `at` on; this slice keeps [0, at).
  /// Viewed sum unchanged, as `split_to`.
  /// @pre `at <= size()`
  slice split_off(size_t at) noexcept {
    MAYFLY_ASSERT(at <= size_);
    slice tail{data_ + at, size_ - at, owner_, split_tag{}};
    size_ = static_cast<uint32_t>(at);
    return tail;
  }

  /// Turns a view into this slice's bytes (e.g. a `string_view` a parser
  /// returned) back into an owning slice of the same binary.
  /// @pre `part` lies within `view()` (checked).
  slice slice_ref(std::string_view part) const noexcept {
    auto* p = reinterpret_cast<const std::byte*>(part.data());
    MAYFLY_ASSERT(part.empty() || (p >= data_ && p + part.size() <= data_ + size_));
    if (part.empty())
      return sub(0, 0);
    return sub(static_cast<size_t>(p - data_),
               static_cast<size_t>(p - data_) + part.size());
  }

  /// Whether `part` lies within this slice's bytes.
  bool contains(std::string_view part) const noexcept {
    auto* p = reinterpret_cast<const std::byte*>(part.data());
    return p >= data_ && p + part.size() <= data_ + size_;
  }

  /// Drops the first `n` bytes from the view: one atomic add on the
  /// binary's viewed sum. @pre `n <= size()`
  void advance(size_t n) noexcept {
    MAYFLY_ASSERT(n <= size_);
    data_ += n;
    set_size(size_ - n);
  }

  /// Keeps only the first `n` bytes (one atomic add, as `advance`).
  /// @pre `n <= size()`
  void shrink(size_t n) noexcept {
    MAYFLY_ASSERT(n <= size_);
    set_size(n);
  }

  // -- unpinning --------------------------------------------------------------

  /// Returns a slice of the same bytes that pins nothing else: a copy into a
  /// dedicated binary of exactly `size()` bytes, or this slice itself when it
  /// already views its whole dedicated binary. One allocation (mimalloc);
  /// not for the datagram path. Returns an empty slice if the allocator
  /// refuses.
  slice detach() const noexcept;

  // -- process-wide accounting ------------------------------------------------

  /// Live slices with an owner, summed over all threads.
  static int64_t live_count() noexcept;

  /// Bytes viewed by live slices, summed over all threads.
  static int64_t viewed_bytes() noexcept;

private:
  friend class mutable_buffer;

  // A new reference viewing `size` bytes (counted on the binary).
  struct add_ref_tag {};
  // Takes over a reference that already views `size` bytes.
  struct adopt_ref_tag {};
  // A new reference whose `size` bytes the caller takes from another
  // reference of the same binary: count + 1, viewed sum unchanged.
  struct split_tag {};

  slice(const std::byte* data, size_t size, detail::binary_header* owner,
        add_ref_tag) noexcept
    : data_(data), size_(static_cast<uint32_t>(size)), owner_(owner) {
    if (owner_ != nullptr) {
      detail::add_ref(owner_, size_);
      detail::count_slice(1, size_);
    }
  }

  slice(const std::byte* data, size_t size, detail::binary_header* owner,
        adopt_ref_tag) noexcept
    : data_(data), size_(static_cast<uint32_t>(size)), owner_(owner) {
    if (owner_ != nullptr)
      detail::count_slice(1, size_);
  }

  slice(const std::byte* data, size_t size, detail::binary_header* owner,
        split_tag) noexcept
    : data_(data), size_(static_cast<uint32_t>(size)), owner_(owner) {
    if (owner_ != nullptr) {
      detail::add_ref(owner_, 0);
      detail::count_slice(1, 0);
    }
  }

  void set_size(size_t n) noexcept {
    if (owner_ != nullptr) {
      auto delta = static_cast<int64_t>(n) - size_;
      detail::change_view(owner_, delta);
      detail::count_slice(0, delta);
    }
    size_ = static_cast<uint32_t>(n);
  }

  const std::byte* data_ = nullptr;
  uint32_t size_ = 0;
  detail::binary_header* owner_ = nullptr;
};

static_assert(sizeof(slice) == 3 * sizeof(void*),
              "a slice is (pointer, length, owner) and nothing else");

// -- comparison and hashing by content -----------------------------------------

inline bool operator==(const slice& x, const slice& y) noexcept {
  return x.view() == y.view();
}

inline bool operator!=(const slice& x, const slice& y) noexcept {
  return !(x == y);
}

inline bool operator<(const slice& x, const slice& y) noexcept {
  return x.view() < y.view();
}

inline bool operator==(const slice& x, std::string_view y) noexcept {
  return x.view() == y;
}

inline bool operator==(std::string_view x, const slice& y) noexcept {
  return x == y.view();
}

inline bool operator!=(const slice& x, std::string_view y) noexcept {
  return x.view() != y;
}

} // namespace mayfly

/// Hashes the viewed bytes; equal to `std::hash<std::string_view>` of
/// `view()`, so heterogeneous lookups by `string_view` agree.
template <>
struct std::hash<mayfly::slice> {
  size_t operator()(const mayfly::slice& x) const noexcept {
    return std::hash<std::string_view>{}(x.view());
  }
};

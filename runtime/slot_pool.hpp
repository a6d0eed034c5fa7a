#pragma once

/// @file
/// `slot_pool`: fixed-size slots carved out of one contiguous region.
///
/// The allocator under every pool of mayfly (receive buffers, send buffers,
/// arena blocks). One `mmap` of `slot_size * capacity` bytes, page-aligned,
/// backed by transparent huge pages where the kernel allows, optionally
/// prefaulted at creation so the datagram path never takes a page fault
/// (otherwise a page is faulted in by its first use), and never grown:
/// the capacity is the hard bound on the memory the pool can hand out.
///
/// ```
///  region (one mmap, huge pages)                        shared free list
///  +--------+--------+--------+-- ... --+--------+       (mutex, rare)
///  | slot 0 | slot 1 | slot 2 |         | slot n |          ^      |
///  +--------+--------+--------+-- ... --+--------+   batch  |      | batch
///                                                   return  |      v refill
///                                          per-thread cache (no lock, no atomic)
/// ```
///
/// Slots are named by index. `acquire` pops from the calling thread's cache
/// and refills it from the shared free list in batches; `release` pushes to
/// the releasing thread's cache and returns a batch to the shared list when
/// the cache is full. A slot may be released on any thread, not only the one
/// that acquired it (cross-thread releases are counted).
///
/// Exhaustion is a value, not a wait: `acquire` returns `kNoSlot` and counts
/// it. Up to `thread_cache_limit()` slots per thread may sit in other
/// threads' caches while the shared list is empty; caching is off for pools
/// of fewer than 64 slots, so small pools exhaust exactly at capacity, and
/// for pools created while 32 cached pools are alive (each cached pool owns
/// one entry of every thread's cache: found by index, not by search).
///
/// Under AddressSanitizer a released slot is poisoned until it is acquired
/// again, so a use after release is reported.
///
/// Thread-safety: `acquire`, `release` and the statistics may be called from
/// any thread concurrently. Destroying the pool requires that no other thread
/// uses it and that every slot is back (checked: a pool destroyed with slots
/// outstanding aborts, because live views would dangle).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <mayfly/runtime/counters.hpp>
#include <mayfly/runtime/result.hpp>

namespace mayfly {

// X(name, kind, unit, help): the counters of a slot pool, declared once.
// The enum `slot_pool::counter`, their keys in `buffer_pool::stats()` and
// their descriptions (`pool_class_metrics`: Prometheus TYPE/HELP, the
// docs/stats.md table "pools") are derived from it.
#define MAYFLY_SLOT_POOL_COUNTERS(X)                                           \
  X(acquisitions, counter, "", "slots handed out")                             \
  X(releases, counter, "", "slots returned")                                   \
  X(exhausted, counter, "", "acquisitions that found the pool empty")          \
  X(cross_thread_releases, counter, "", "releases by a thread other than the " \
    "acquiring one")                                                           \
  X(refills, counter, "", "per-thread cache refills from the shared list "     \
    "(one lock each)")

/// Fixed-size slots in one contiguous, page-aligned region. See file comment.
class slot_pool {
public:
  /// The index returned when no slot is available.
  static constexpr uint32_t kNoSlot = ~uint32_t{0};

  /// `cache_index()` of a pool without per-thread caches.
  static constexpr uint32_t kNoCacheIndex = ~uint32_t{0};

  struct options {
    /// Shown in statistics, e.g. "standard".
    std::string name = "pool";
    /// Bytes per slot; rounded up to a multiple of 64.
    size_t slot_size = 2048;
    /// Number of slots; at least 1.
    uint32_t capacity = 1024;
    /// Ask for transparent huge pages (madvise) for regions >= 2 MiB.
    bool huge_pages = true;
    /// Touch every page at creation so the hot path takes no page faults.
    /// Off by default: pages are touched when a slot is first used, so
    /// resident memory grows with load (the free list hands out recently
    /// used slots first) up to the mapped size.
    bool prefault = false;
  };

  /// Counter ids of `count()`, from `MAYFLY_SLOT_POOL_COUNTERS`.
  enum counter : size_t {
#define MAYFLY_X(name, kind, unit, help) name,
    MAYFLY_SLOT_POOL_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
    num_counters,
  };

  /// Maps the region. Fails with `invalid_config` for a zero size or
  /// capacity, `out_of_memory` when the kernel refuses the mapping.
  static result<std::unique_ptr<slot_pool>> make(options opts);

  ~slot_pool();

  slot_pool(const slot_pool&) = delete;
  slot_pool& operator=(const slot_pool&) = delete;

  /// Takes a free slot, or returns `kNoSlot` (counted as `exhausted`).
  /// O(1) amortized, no allocation; locks the shared list once per batch.
  uint32_t acquire() noexcept;

  /// Returns `slot` to the pool. Any thread. O(1) amortized, no allocation.
  /// @pre `slot` was acquired from this pool and not released since.
  void release(uint32_t slot) noexcept;

  /// Start of `slot`'s bytes; `slot_size()` bytes long. O(1).
  std::byte* data(uint32_t slot) const noexcept {
    return region_ + static_cast<size_t>(slot) * slot_size_;
  }

  /// Index of the slot containing `ptr`, or `kNoSlot`. O(1).
  uint32_t slot_of(const void* ptr) const noexcept;

  const std::string& name() const noexcept {
    return name_;
  }

  size_t slot_size() const noexcept {
    return slot_size_;
  }

  uint32_t capacity() const noexcept {
    return capacity_;
  }

  /// Slots currently held by callers (acquired minus released), exact.
  int64_t in_use() const noexcept {
    return counters_.sum(acquisitions) - counters_.sum(releases);
  }

  /// Highest number of slots ever out of the shared free list at once. Slots
  /// parked in thread caches count as out, so this can exceed the peak of
  /// `in_use()` by the cached slots; it is exact when caching is off.
  uint32_t peak() const noexcept;

  /// Counter `c` summed over threads.
  int64_t count(counter c) const noexcept {
    return counters_.sum(c);
  }

  /// Most slots one thread keeps cached (0: caching off).
  uint32_t thread_cache_limit() const noexcept {
    return cache_limit_;
  }

  /// "hugetlb", "thp" or "none": what backs the region.
  const char* page_kind() const noexcept {
    return page_kind_;
  }

  /// Bytes mapped for the region.
  size_t region_bytes() const noexcept {
    return region_bytes_;
  }

  /// Id unique over the process lifetime; never reused.
  uint64_t uid() const noexcept {
    return uid_;
  }

  // -- internal: used by the per-thread cache ------------------------------

  /// Moves up to `n` free slots from the shared list into `out`; returns how
  /// many. Locks once.
  uint32_t take_batch(uint32_t* out, uint32_t n) noexcept;

  /// Puts `n` slots back on the shared list. Locks once.
  void give_batch(const uint32_t* slots, uint32_t n) noexcept;

private:
  slot_pool(options& opts, std::byte* region, size_t region_bytes,
            const char* page_kind);

  void poison(uint32_t slot) noexcept;
  void unpoison(uint32_t slot) noexcept;

  std::string name_;
  std::byte* region_;
  size_t region_bytes_;
  size_t slot_size_;
  uint32_t capacity_;
  uint32_t cache_limit_;
  uint32_t cache_index_ = kNoCacheIndex; // entry in every thread's cache
  const char* page_kind_;
  uint64_t uid_;

  /// Thread that acquired each slot (its `this_thread_index`), written by the
  /// acquirer and read by the releaser after the hand-over that gave it the
  /// slot, so plain stores suffice.
  std::unique_ptr<uint32_t[]> acquired_by_;

  mutable std::mutex mtx_;
  std::vector<uint32_t> free_; // guarded by mtx_; never reallocates
  uint32_t peak_ = 0;          // guarded by mtx_

  sharded_counters<num_counters> counters_;
};

} // namespace mayfly

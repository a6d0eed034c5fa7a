#pragma once

/// @file
/// `arena`: the bump allocator a handler actor owns for its temporaries, and
/// `arena_pool`, the preallocated blocks arenas lease.
///
/// A handler's parsed fields, decoded strings, vectors and the reply it
/// builds all go into its arena; when the handler exits the arena is thrown
/// away wholesale: the destructors that need to run run, the blocks go back
/// to the pool, and nothing is freed object by object.
///
/// ```
///  arena_pool (one region, fixed-size blocks)
///    [blk][blk][blk][blk] ...
///       ^    ^
///  arena: first block (leased at construction), overflow blocks chained
///    cur_ ---> bump pointer in the newest block
///    cleanups_ ---> {~slice, obj} -> {~pmr::vector, obj} -> ...
///                   (nodes live in the arena, run LIFO on reset)
/// ```
///
/// **Lifetime rule.** Memory from an arena never leaves its actor in a
/// message: it dies at `reset()` or with the arena. To send data onward, send
/// a `slice` (refcounted, outlives the arena) or copy it into the message.
/// Objects with non-trivial destructors made with `make<T>` are registered
/// and destroyed on reset, so a slice kept in an arena releases its binary.
/// `std::pmr` containers using the arena as their resource are fine, but
/// their destructors run only if they were made with `make<T>` (or destroyed
/// by the caller); their memory is reclaimed either way.
///
/// **Cost.** `allocate` is inline: align, compare, bump. A block change
/// (out-of-line) takes a block from the pool: counted as an overflow block.
/// A request larger than a block gets a dedicated heap chunk (counted). Past
/// `max_arena_bytes` allocation fails: `try_allocate` returns null,
/// `allocate`, `make` and the pmr interface throw `std::bad_alloc`, which the
/// actor layer turns into a failed handler (it dies alone). `reset()` is
/// O(blocks + cleanups), independent of the number of allocations.
///
/// **Threads.** An arena is used by one thread at a time but may move between
/// threads between calls (CAF migrates actors): it keeps no thread-local
/// state. `arena_pool` is safe from any thread; an arena may be created on
/// one thread and destroyed on another.
///
/// Why not a mimalloc heap per actor: a mimalloc v2 heap allocates only on
/// the thread that created it, and actors migrate.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include <mayfly/runtime/metrics.hpp>
#include <mayfly/runtime/counters.hpp>
#include <mayfly/runtime/result.hpp>
#include <mayfly/runtime/slot_pool.hpp>

namespace mayfly {

class arena;
class arena_pool;

namespace detail {
/// Runs `a`'s pending cleanups and returns every block now (the arena
/// becomes unleased; later allocations fail). Idempotent. Internal: the
/// actor layer calls it when a handler exits, before CAF frees the actor;
/// a handler never frees the arena it is running in (issue 15). Any thread.
void release_arena(arena& a) noexcept;
} // namespace detail

/// The first block of a future arena, leased from an `arena_pool`: lets a
/// caller find out whether an arena can be had *before* paying for whatever
/// will own it (the actor layer leases on the receive thread, then spawns the
/// handler that builds its arena from the lease). Move-only; returns the
/// block if dropped unused.
class arena_lease {
public:
  arena_lease() noexcept = default;
  arena_lease(arena_lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      slot_(std::exchange(other.slot_, slot_pool::kNoSlot)) {
  }
  arena_lease& operator=(arena_lease&& other) noexcept;
  arena_lease(const arena_lease&) = delete;
  arena_lease& operator=(const arena_lease&) = delete;
  ~arena_lease();

  /// Whether a block was obtained.
  explicit operator bool() const noexcept {
    return slot_ != slot_pool::kNoSlot;
  }

private:
  friend class arena;
  friend class arena_pool;
  arena_lease(arena_pool* pool, uint32_t slot) noexcept
    : pool_(pool), slot_(slot) {
  }
  arena_pool* pool_ = nullptr;
  uint32_t slot_ = slot_pool::kNoSlot;
};

/// Sizes of the arena block pool.
struct arena_pool_config {
  /// Bytes per block; the first block of every arena is one of these.
  size_t block_size = 16384;
  /// Blocks in the pool; bounds arenas alive at once (plus overflow blocks).
  uint32_t capacity = 2048;
  /// Most bytes one arena may hand out before allocation fails.
  size_t max_arena_bytes = size_t{1} << 20;
  bool huge_pages = true;
  bool prefault = false;
};

// X(name, kind, unit, help): the counters of an arena pool, declared once.
// The enum `arena_pool::counter`, their keys in `arena_pool::stats()` and
// their descriptions (`arena_pool_metrics`: Prometheus TYPE/HELP, the
// docs/stats.md table "arenas") are derived from it; the other figures of
// `stats()` are written out in arena.cpp.
#define MAYFLY_ARENA_COUNTERS(X)                                               \
  X(leases, counter, "", "arenas created")                                     \
  X(lease_failures, counter, "", "arenas that found no first block (pool "     \
    "exhausted)")                                                              \
  X(resets, counter, "", "arena resets, including the final one when an "      \
    "arena ends")                                                              \
  X(overflow_blocks, counter, "", "extra pool blocks taken by arenas that "    \
    "outgrew their first")                                                     \
  X(heap_blocks, counter, "", "extra blocks taken from the heap because the "  \
    "pool was empty")                                                          \
  X(oversize_allocs, counter, "", "allocations larger than a block (a heap "   \
    "chunk each)")                                                             \
  X(limit_failures, counter, "", "allocations refused by `max_arena_bytes`")   \
  X(cleanups, counter, "", "destructors run by resets (objects made with "     \
    "`make<T>`)")

/// Preallocated arena blocks. See file comment. Thread-safe.
class arena_pool {
public:
  /// Counter ids of `count()`: those of `MAYFLY_ARENA_COUNTERS` (each also
  /// a key of `stats()`), then `returns` (arenas destroyed; `stats()` shows
  /// `leases_out`, derived from it).
  enum counter : size_t {
#define MAYFLY_X(name, kind, unit, help) name,
    MAYFLY_ARENA_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
    returns,
    num_counters,
  };

  static result<std::unique_ptr<arena_pool>> make(arena_pool_config cfg);

  /// Takes the first block of an arena; an empty lease when the pool is
  /// exhausted (counted as a lease failure). O(1), no allocation.
  arena_lease lease() noexcept;

  /// Arenas alive right now.
  int64_t leases_out() const noexcept {
    return counters_.sum(leases) - counters_.sum(lease_failures)
           - counters_.sum(returns);
  }

  /// Blocks out of the pool right now (first and overflow blocks).
  int64_t blocks_in_use() const noexcept {
    return blocks_->in_use();
  }

  int64_t count(counter c) const noexcept {
    return counters_.sum(c);
  }

  size_t block_size() const noexcept {
    return blocks_->slot_size();
  }

  size_t max_arena_bytes() const noexcept {
    return max_arena_bytes_;
  }

  /// Bytes used by arenas at their resets: p50/p99/max via `quantile()`.
  const log2_histogram& high_water() const noexcept {
    return high_water_;
  }

  const slot_pool& blocks() const noexcept {
    return *blocks_;
  }

  /// Statistics as JSON (docs/stats.md, "arenas").
  nlohmann::json stats() const;

private:
  friend class arena;
  friend class arena_lease;

  arena_pool(std::unique_ptr<slot_pool> blocks, size_t max_arena_bytes);

  std::unique_ptr<slot_pool> blocks_;
  size_t max_arena_bytes_;
  log2_histogram high_water_;
  sharded_counters<num_counters> counters_;
};

/// A bump allocator with a cleanup list. See file comment.
class arena final : public std::pmr::memory_resource {
public:
  /// An arena that owns no block: every allocation fails. O(1).
  arena() noexcept = default;

  /// Leases a first block from `pool`. Check `leased()`: false when the pool
  /// had no block (counted as a lease failure).
  explicit arena(arena_pool& pool) noexcept : arena(pool.lease()) {
  }

  /// Builds the arena on a block leased earlier; unleased if `lease` is
  /// empty.
  explicit arena(arena_lease lease) noexcept;

  /// Runs pending cleanups, returns every block. Any thread.
  ~arena() override {
    release();
  }

  arena(const arena&) = delete;
  arena& operator=(const arena&) = delete;

  /// Whether the arena holds a block (construction succeeded).
  bool leased() const noexcept {
    return first_ != nullptr;
  }

  // -- allocation -------------------------------------------------------------

  /// `n` bytes aligned to `align` (a power of two), or null when over the
  /// limit or unleased. Inline fast path: no allocation, no atomics.
  void* try_allocate(size_t n, size_t align = alignof(std::max_align_t)) noexcept {
    auto p = (reinterpret_cast<uintptr_t>(cur_) + (align - 1)) & ~(align - 1);
    auto end = reinterpret_cast<uintptr_t>(end_);
    // `n <= end - p`, not `p + n <= end`: a huge n must not wrap around.
    if (cur_ != nullptr && p <= end && n <= end - p) {
      cur_ = reinterpret_cast<std::byte*>(p + n);
      return reinterpret_cast<void*>(p);
    }
    return allocate_slow(n, align);
  }

  /// Like `try_allocate`, but throws `std::bad_alloc` instead of null.
  void* allocate_bytes(size_t n, size_t align = alignof(std::max_align_t)) {
    if (void* p = try_allocate(n, align))
      return p;
    throw std::bad_alloc{};
  }

  /// Constructs a `T` in the arena. A non-trivially-destructible `T` is
  /// registered and destroyed at reset (LIFO). Throws `std::bad_alloc` when
  /// the arena is full, or whatever `T`'s constructor throws.
  template <class T, class... Args>
  T* make(Args&&... args) {
    if constexpr (std::is_trivially_destructible_v<T>) {
      return new (allocate_bytes(sizeof(T), alignof(T)))
        T(std::forward<Args>(args)...);
    } else {
      auto* node = static_cast<cleanup_node*>(
        allocate_bytes(sizeof(cleanup_node), alignof(cleanup_node)));
      auto* obj = new (allocate_bytes(sizeof(T), alignof(T)))
        T(std::forward<Args>(args)...);
      node->destroy = [](void* p) { static_cast<T*>(p)->~T(); };
      node->obj = obj;
      node->next = cleanups_;
      cleanups_ = node;
      return obj;
    }
  }

  /// Uninitialized storage for `n` trivially destructible `T`s.
  template <class T>
  T* make_array(size_t n) {
    static_assert(std::is_trivially_destructible_v<T>,
                  "arena arrays run no destructors");
    if (n > SIZE_MAX / sizeof(T))
      throw std::bad_alloc{};
    return static_cast<T*>(allocate_bytes(n * sizeof(T), alignof(T)));
  }

  /// Copies `str` into the arena; the view lives until reset.
  std::string_view copy(std::string_view str) {
    if (str.empty())
      return {};
    auto* p = static_cast<char*>(allocate_bytes(str.size(), 1));
    std::memcpy(p, str.data(), str.size());
    return {p, str.size()};
  }

  // -- reset ------------------------------------------------------------------

  /// Runs cleanups (LIFO), returns overflow blocks and heap chunks, keeps the
  /// first block. O(blocks + cleanups), independent of allocations made.
  void reset() noexcept;

  /// Sets the most bytes this arena hands out between resets (the pool's
  /// `max_arena_bytes` until set; a handler type's
  /// `handler_options::max_arena_bytes`). Never below one block's payload:
  /// the first block is always usable. Set it before the first allocation.
  /// O(1), no allocation.
  void max_bytes(size_t limit) noexcept;

  /// The limit in force (see `max_bytes(size_t)`).
  size_t max_bytes() const noexcept {
    return limit_;
  }

  // -- introspection ----------------------------------------------------------

  /// Bytes handed out since the last reset, alignment padding included.
  size_t bytes_used() const noexcept {
    return used_before_ + static_cast<size_t>(cur_ - block_begin_);
  }

  /// Most bytes used between two resets over this arena's life.
  size_t high_water() const noexcept {
    return std::max(high_water_, bytes_used());
  }

  /// Blocks held now, the first one included.
  uint32_t blocks() const noexcept {
    return blocks_;
  }

  /// Overflow blocks taken since the arena was leased.
  uint32_t overflow_blocks() const noexcept {
    return overflows_;
  }

private:
  friend void detail::release_arena(arena& a) noexcept;

  /// `detail::release_arena`; the destructor.
  void release() noexcept;

  struct block_header {
    block_header* next;
    uint32_t slot; // slot_pool::kNoSlot: a heap block
    size_t size;   // bytes including this header
  };

  struct cleanup_node {
    void (*destroy)(void*);
    void* obj;
    cleanup_node* next;
  };

  void* allocate_slow(size_t n, size_t align) noexcept;
  void start_block(block_header* blk) noexcept;
  void release_block(block_header* blk) noexcept;
  void run_cleanups() noexcept;

  void* do_allocate(size_t n, size_t align) override {
    return allocate_bytes(n, align);
  }

  void do_deallocate(void*, size_t, size_t) override {
    // Memory comes back wholesale at reset.
  }

  bool do_is_equal(const std::pmr::memory_resource& other) const
    noexcept override {
    return this == &other;
  }

  arena_pool* pool_ = nullptr;
  block_header* first_ = nullptr; // kept across resets
  block_header* extra_ = nullptr; // overflow blocks and heap chunks
  std::byte* block_begin_ = nullptr;
  std::byte* cur_ = nullptr;
  std::byte* end_ = nullptr;
  size_t used_before_ = 0; // bytes used in blocks before the current one
  size_t high_water_ = 0;
  size_t limit_ = 0; // most bytes between resets (pool's max by default)
  cleanup_node* cleanups_ = nullptr;
  uint32_t blocks_ = 0;
  uint32_t overflows_ = 0;
};

inline void detail::release_arena(arena& a) noexcept {
  a.release();
}

/// What `arena_pool::stats()` renders under "/arenas" (docs/stats.md).
extern const metric_section arena_pool_metrics;

} // namespace mayfly

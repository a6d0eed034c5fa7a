#pragma once

/// @file
/// mayfly's own calls to the general-purpose allocator.
///
/// Everything mayfly allocates outside its pools goes through these two
/// functions (`std::aligned_alloc` underneath: whatever serves `malloc` in
/// the process, mimalloc when the service links `mayfly::mimalloc`) and is
/// counted, so tests can assert that
/// the datagram path makes no such call in steady state and the stats
/// endpoint can show how often cold paths (dedicated buffers, detached
/// slices, arena overflow beyond the block pool) ran.
///
/// Thread-safety: any thread. Cost: one `aligned_alloc` plus a relaxed add on
/// the calling thread's counter shard.

#include <cstddef>
#include <cstdint>

namespace mayfly {

/// Number of allocations mayfly made from the general heap since start,
/// process-wide.
int64_t heap_allocations() noexcept;

/// Allocations minus frees: live general-heap blocks mayfly holds.
int64_t heap_blocks_live() noexcept;

namespace detail {

/// `n` bytes aligned to `align` (a power of two), or null. Counted.
void* heap_alloc(size_t n, size_t align = alignof(std::max_align_t)) noexcept;

/// Frees a block from `heap_alloc`; null is ignored.
void heap_free(void* ptr) noexcept;

} // namespace detail

} // namespace mayfly

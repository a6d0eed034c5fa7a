#include <mayfly/runtime/heap.hpp>

#include <cstdlib>

#include <mayfly/runtime/counters.hpp>

namespace mayfly {

namespace {

enum { allocs, frees, num_counters };

sharded_counters<num_counters>& heap_counters() noexcept {
  static sharded_counters<num_counters> counters;
  return counters;
}

} // namespace

int64_t heap_allocations() noexcept {
  return heap_counters().sum(allocs);
}

int64_t heap_blocks_live() noexcept {
  return heap_counters().sum(allocs) - heap_counters().sum(frees);
}

namespace detail {

void* heap_alloc(size_t n, size_t align) noexcept {
  // aligned_alloc wants a size that is a multiple of the alignment.
  if (align < alignof(std::max_align_t))
    align = alignof(std::max_align_t);
  size_t rounded = (n + align - 1) & ~(align - 1);
  void* ptr = std::aligned_alloc(align, rounded == 0 ? align : rounded);
  if (ptr != nullptr)
    heap_counters().add(allocs);
  return ptr;
}

void heap_free(void* ptr) noexcept {
  if (ptr == nullptr)
    return;
  heap_counters().add(frees);
  std::free(ptr);
}

} // namespace detail

} // namespace mayfly

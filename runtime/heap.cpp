#include "runtime/heap.hpp"

#include <mimalloc.h>

#include "runtime/counters.hpp"

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
  void* ptr = mi_malloc_aligned(n, align);
  if (ptr != nullptr)
    heap_counters().add(allocs);
  return ptr;
}

void heap_free(void* ptr) noexcept {
  if (ptr == nullptr)
    return;
  heap_counters().add(frees);
  mi_free(ptr);
}

} // namespace detail

} // namespace mayfly

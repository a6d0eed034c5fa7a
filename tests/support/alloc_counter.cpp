#include "tests/support/alloc_counter.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>

#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#  define MAYFLY_TEST_SANITIZED 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)      \
    || __has_feature(memory_sanitizer)
#    define MAYFLY_TEST_SANITIZED 1
#  endif
#endif

#ifndef MAYFLY_TEST_SANITIZED

namespace {

// Constant-initialized: valid before any dynamic initializer runs, which is
// when the first allocations happen.
constinit std::atomic<int64_t> g_allocs{0};
constinit std::atomic<int64_t> g_frees{0};

inline void count_alloc() noexcept {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
}

inline void count_free(void* ptr) noexcept {
  if (ptr != nullptr)
    g_frees.fetch_add(1, std::memory_order_relaxed);
}

} // namespace

// glibc's real allocator entry points (mimalloc exports the same names when
// it is linked and takes them over, so malloc/free stay paired either way).
extern "C" {
void* __libc_malloc(size_t n) noexcept;
void* __libc_calloc(size_t n, size_t size) noexcept;
void* __libc_realloc(void* ptr, size_t n) noexcept;
void* __libc_memalign(size_t align, size_t n) noexcept;
void* __libc_valloc(size_t n) noexcept;
void* __libc_pvalloc(size_t n) noexcept;
void __libc_free(void* ptr) noexcept;
}

// -- C allocation functions ---------------------------------------------------

extern "C" {

void* malloc(size_t n) noexcept {
  count_alloc();
  return __libc_malloc(n);
}

void* calloc(size_t n, size_t size) noexcept {
  count_alloc();
  return __libc_calloc(n, size);
}

void* realloc(void* ptr, size_t n) noexcept {
  count_alloc();
  return __libc_realloc(ptr, n);
}

void* reallocarray(void* ptr, size_t n, size_t size) noexcept {
  size_t bytes = 0;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  count_alloc();
  return __libc_realloc(ptr, bytes);
}

void free(void* ptr) noexcept {
  count_free(ptr);
  __libc_free(ptr);
}

void* memalign(size_t align, size_t n) noexcept {
  count_alloc();
  return __libc_memalign(align, n);
}

void* aligned_alloc(size_t align, size_t n) noexcept {
  count_alloc();
  return __libc_memalign(align, n);
}

int posix_memalign(void** out, size_t align, size_t n) noexcept {
  if (align < sizeof(void*) || (align & (align - 1)) != 0)
    return EINVAL;
  count_alloc();
  void* ptr = __libc_memalign(align, n);
  if (ptr == nullptr)
    return ENOMEM;
  *out = ptr;
  return 0;
}

void* valloc(size_t n) noexcept {
  count_alloc();
  return __libc_valloc(n);
}

void* pvalloc(size_t n) noexcept {
  count_alloc();
  return __libc_pvalloc(n);
}

} // extern "C"

// -- C++ operator new / delete ------------------------------------------------

namespace {

void* new_impl(size_t n, size_t align, bool nothrow) {
  count_alloc();
  if (n == 0)
    n = 1;
  for (;;) {
    void* ptr = align > alignof(std::max_align_t) ? __libc_memalign(align, n)
                                                  : __libc_malloc(n);
    if (ptr != nullptr)
      return ptr;
    auto handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow)
        return nullptr;
      throw std::bad_alloc{};
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

void delete_impl(void* ptr) noexcept {
  count_free(ptr);
  __libc_free(ptr);
}

constexpr size_t kDefault = alignof(std::max_align_t);

} // namespace

void* operator new(size_t n) {
  return new_impl(n, kDefault, false);
}
void* operator new[](size_t n) {
  return new_impl(n, kDefault, false);
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return new_impl(n, kDefault, true);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return new_impl(n, kDefault, true);
}
void* operator new(size_t n, std::align_val_t al) {
  return new_impl(n, static_cast<size_t>(al), false);
}
void* operator new[](size_t n, std::align_val_t al) {
  return new_impl(n, static_cast<size_t>(al), false);
}
void* operator new(size_t n, std::align_val_t al,
                   const std::nothrow_t&) noexcept {
  return new_impl(n, static_cast<size_t>(al), true);
}
void* operator new[](size_t n, std::align_val_t al,
                     const std::nothrow_t&) noexcept {
  return new_impl(n, static_cast<size_t>(al), true);
}

void operator delete(void* p) noexcept {
  delete_impl(p);
}
void operator delete[](void* p) noexcept {
  delete_impl(p);
}
void operator delete(void* p, size_t) noexcept {
  delete_impl(p);
}
void operator delete[](void* p, size_t) noexcept {
  delete_impl(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  delete_impl(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  delete_impl(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  delete_impl(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  delete_impl(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  delete_impl(p);
}
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  delete_impl(p);
}
void operator delete(void* p, std::align_val_t,
                     const std::nothrow_t&) noexcept {
  delete_impl(p);
}
void operator delete[](void* p, std::align_val_t,
                       const std::nothrow_t&) noexcept {
  delete_impl(p);
}

namespace mayfly::test {

bool counting_enabled() noexcept {
  return true;
}

int64_t allocation_count() noexcept {
  return g_allocs.load(std::memory_order_relaxed);
}

int64_t deallocation_count() noexcept {
  return g_frees.load(std::memory_order_relaxed);
}

} // namespace mayfly::test

#else // sanitizer build: the sanitizer owns the allocator

namespace mayfly::test {

bool counting_enabled() noexcept {
  return false;
}

int64_t allocation_count() noexcept {
  return 0;
}

int64_t deallocation_count() noexcept {
  return 0;
}

} // namespace mayfly::test

#endif

#pragma once

/// @file
/// Counting replacements of the C and C++ allocation functions, for tests
/// that assert "this path makes no heap allocation".
///
/// Linked into a test binary (as an OBJECT library, so the overrides are
/// always pulled in), alloc_counter.cpp replaces malloc, calloc, realloc,
/// reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
/// free and every global operator new/delete (plain, nothrow, aligned,
/// sized) with versions that bump one process-wide atomic counter and
/// forward to glibc's `__libc_*` entry points (which mimalloc takes over
/// when it is linked: the pair stays consistent either way).
///
/// Under AddressSanitizer or ThreadSanitizer the sanitizer owns malloc, so
/// nothing is replaced: `counting_enabled()` is false and tests that need the
/// counter must `GTEST_SKIP()`. UBSan alone does not interfere.
///
/// Thread-safety: every function may be called from any thread; the counters
/// are relaxed atomics (exact totals, no ordering).

#include <cstdint>

namespace mayfly::test {

/// Whether this binary counts allocations (false under ASan/TSan).
bool counting_enabled() noexcept;

/// Calls to any allocation function (malloc family and operator new) since
/// start, over all threads; 0 when counting is disabled. `realloc` counts as
/// one allocation call, `free`/`delete` are not allocations.
int64_t allocation_count() noexcept;

/// Calls to `free` and operator delete with a non-null pointer since start.
int64_t deallocation_count() noexcept;

} // namespace mayfly::test

#pragma once

/// @file
/// Assertions that stay on in release builds.
///
/// `MAYFLY_ASSERT(cond)` checks an invariant whose violation is a bug in
/// mayfly or in the caller (never bad input): it prints the condition and
/// location to stderr and aborts. It is cheap enough for hot paths (one
/// predictable branch). Costly invariant walks go under
/// `MAYFLY_RUNTIME_CHECKS` (CMake option of the same name) instead.

#include <cstdio>
#include <cstdlib>

namespace mayfly::detail {

[[noreturn]] inline void assertion_failed(const char* expr, const char* file,
                                          int line) noexcept {
  std::fprintf(stderr, "mayfly: assertion failed: %s (%s:%d)\n", expr, file,
               line);
  std::abort();
}

} // namespace mayfly::detail

#define MAYFLY_ASSERT(cond)                                                    \
  do {                                                                         \
    if (__builtin_expect(!(cond), 0))                                          \
      ::mayfly::detail::assertion_failed(#cond, __FILE__, __LINE__);           \
  } while (false)

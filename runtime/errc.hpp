#pragma once

/// @file
/// The error codes of mayfly.
///
/// Recoverable failures come back as values, never as exceptions: functions
/// that can fail return `mayfly::result<T>` holding either a value or one of
/// these codes. The actor layer registers the enum with CAF
/// (`CAF_ERROR_CODE_ENUM`), so the same codes travel inside `caf::error`.
///
/// A malformed datagram is data, not an error: it is counted and skipped and
/// never produces an `errc`.

#include <cstdint>
#include <string_view>

namespace mayfly {

/// Why an operation failed. Values start at 1 (0 means "no error" in CAF).
enum class errc : uint8_t {
  /// A pool has no free slot (buffer pool, arena pool): capacity reached.
  pool_exhausted = 1,
  /// A request is larger than anything the pool or arena can serve.
  too_large,
  /// The operating system refused memory (mmap failed).
  out_of_memory,
  /// A configuration field holds an invalid value; the message names it.
  invalid_config,
  /// An address could not be parsed or resolved.
  invalid_address,
  /// A system call failed; the accompanying errno says which way.
  system_error,
  /// The runtime is not running (not started yet, or stopped).
  not_running,
  /// A limit on concurrent work (in-flight handlers) was reached.
  overloaded,
  /// A send batch has no room left; flush it first.
  batch_full,
  /// A wait ran past its deadline.
  timeout,
  /// Input from outside the process (a remote message) violates its format.
  malformed,
};

/// Returns the enumerator's name, e.g. "pool_exhausted".
constexpr std::string_view to_string(errc x) noexcept {
  switch (x) {
    case errc::pool_exhausted:
      return "pool_exhausted";
    case errc::too_large:
      return "too_large";
    case errc::out_of_memory:
      return "out_of_memory";
    case errc::invalid_config:
      return "invalid_config";
    case errc::invalid_address:
      return "invalid_address";
    case errc::system_error:
      return "system_error";
    case errc::not_running:
      return "not_running";
    case errc::overloaded:
      return "overloaded";
    case errc::batch_full:
      return "batch_full";
    case errc::timeout:
      return "timeout";
    case errc::malformed:
      return "malformed";
  }
  return "unknown";
}

} // namespace mayfly

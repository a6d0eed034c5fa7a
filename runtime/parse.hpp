#pragma once

/// @file
/// Strict parsing of numbers and ports typed by people: command-line flags,
/// environment variables, anything a service reads as text.
///
/// A number is decimal digits and nothing else: no sign, no spaces, no
/// exponent ("1e3"), no suffix ("12abc"), no hexadecimal; it must lie in the
/// range the caller gives. A port is such a number in 0..65535. (JSON
/// configuration fields are typed by the JSON parser instead and checked by
/// `config_reader`; addresses by `udp_address::parse`.)
///
/// Errors are `errc::invalid_config` values whose `subject` quotes the text
/// ("'12abc': not a whole decimal number"), so a message built from them
/// names the value that was wrong.
///
/// Thread-safe (pure functions). Cold path: an error allocates.

#include <cstdint>
#include <limits>
#include <string_view>

#include <mayfly/runtime/result.hpp>

namespace mayfly {

/// `text` as a whole decimal number in `[min, max]`.
result<uint64_t>
parse_uint(std::string_view text, uint64_t min = 0,
           uint64_t max = std::numeric_limits<uint64_t>::max());

/// `text` as a port number, 0..65535.
result<uint16_t> parse_port(std::string_view text);

} // namespace mayfly

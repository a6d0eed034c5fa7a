#pragma once

// The tally wire format of docs/workloads.md §2, parsed without
// allocation: every view points into the datagram.
//
//   ingest: lines "NAME:VALUE|c" separated by '\n'; a final '\n' ends the
//           last line; an empty datagram has no lines; every other line,
//           empty ones included, must match exactly.
//   query:  "?NAME" or "?*", optionally followed by "\n" or "\r\n".

#include <cstdint>
#include <string_view>

namespace tally {

/// Longest NAME the protocol allows.
inline constexpr size_t kMaxName = 128;

struct line {
  std::string_view name;
  int64_t value = 0;
};

/// Parses one line (without its '\n'). False if malformed. O(length).
bool parse_line(std::string_view text, line& out) noexcept;

/// Calls `f(std::string_view line)` for every line of an ingest datagram,
/// following the rules above. O(length), no allocation.
template <class F>
void for_each_line(std::string_view datagram, F&& f) {
  if (datagram.empty())
    return; // an empty datagram has no lines
  if (datagram.back() == '\n')
    datagram.remove_suffix(1); // the final '\n' ends the last line; a lone
                               // "\n" is thus one empty (malformed) line
  for (;;) {
    auto nl = datagram.find('\n');
    f(datagram.substr(0, nl));
    if (nl == std::string_view::npos)
      return;
    datagram.remove_prefix(nl + 1);
  }
}

enum class query_kind { none, name, summary, malformed };

/// Classifies a datagram: not a query (ingest), "?NAME" (sets `name`),
/// "?*", or a query whose NAME is not a valid name.
query_kind parse_query(std::string_view datagram, std::string_view& name) noexcept;

/// Whether `name` is 1..128 bytes of [A-Za-z0-9._-].
bool valid_name(std::string_view name) noexcept;

} // namespace tally

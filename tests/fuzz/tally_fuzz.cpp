// Fuzz target: the tally wire format (examples/tally/tally_protocol.hpp).
//
// Differential checks on every input: a line the parser accepts must be
// exactly NAME ':' VALUE "|c" with a valid NAME and a VALUE that
// std::from_chars reads to the same int64 (so no '+', no spaces, no
// overflow slips through); no line may contain '\n'; the number of lines
// follows the final-newline rule; a query's NAME is valid.

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "examples/tally/tally_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view d{reinterpret_cast<const char*>(data), size};
  std::string_view name;
  auto kind = tally::parse_query(d, name);
  if (kind == tally::query_kind::name && !tally::valid_name(name))
    std::abort();
  if (kind != tally::query_kind::none && (d.empty() || d.front() != '?'))
    std::abort();
  size_t lines = 0;
  tally::for_each_line(d, [&](std::string_view text) {
    ++lines;
    if (text.find('\n') != std::string_view::npos)
      std::abort();
    tally::line l;
    if (!tally::parse_line(text, l))
      return;
    if (!tally::valid_name(l.name) || text.substr(0, l.name.size()) != l.name
        || text[l.name.size()] != ':' || text.substr(text.size() - 2) != "|c")
      std::abort();
    auto value = text.substr(l.name.size() + 1,
                             text.size() - l.name.size() - 3);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc{} || end != value.data() + value.size() || v != l.value)
      std::abort();
  });
  // Lines: none for an empty datagram, else newlines (+1 unless the last
  // byte is the final newline).
  size_t newlines = 0;
  for (char c : d)
    newlines += c == '\n';
  size_t expected = d.empty() ? 0 : newlines + (d.back() == '\n' ? 0 : 1);
  if (lines != expected)
    std::abort();
  return 0;
}

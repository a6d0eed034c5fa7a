#include "examples/tally/tally_protocol.hpp"

#include <limits>

namespace tally {

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxName)
    return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

namespace {

// Decimal int64 with an optional leading '-'; leading zeros allowed; no
// '+', no spaces; out of range is malformed.
bool parse_value(std::string_view text, int64_t& out) noexcept {
  bool negative = !text.empty() && text.front() == '-';
  if (negative)
    text.remove_prefix(1);
  if (text.empty())
    return false;
  // Accumulate as a negative number: its range includes INT64_MIN.
  int64_t acc = 0;
  constexpr int64_t min = std::numeric_limits<int64_t>::min();
  for (char c : text) {
    if (c < '0' || c > '9')
      return false;
    int digit = c - '0';
    if (acc < (min + digit) / 10)
      return false;
    acc = acc * 10 - digit;
  }
  if (!negative) {
    if (acc == min)
      return false; // 9223372036854775808 does not fit
    acc = -acc;
  }
  out = acc;
  return true;
}

} // namespace

bool parse_line(std::string_view text, line& out) noexcept {
  // NAME ':' VALUE '|' 'c'
  if (text.size() < 5 || text.substr(text.size() - 2) != "|c")
    return false;
  text.remove_suffix(2);
  auto colon = text.find(':');
  if (colon == std::string_view::npos)
    return false;
  auto name = text.substr(0, colon);
  if (!valid_name(name))
    return false;
  int64_t value;
  if (!parse_value(text.substr(colon + 1), value))
    return false;
  out.name = name;
  out.value = value;
  return true;
}

query_kind parse_query(std::string_view datagram,
                       std::string_view& name) noexcept {
  if (datagram.empty() || datagram.front() != '?')
    return query_kind::none;
  datagram.remove_prefix(1);
  if (!datagram.empty() && datagram.back() == '\n') {
    datagram.remove_suffix(1);
    if (!datagram.empty() && datagram.back() == '\r')
      datagram.remove_suffix(1);
  }
  if (datagram == "*")
    return query_kind::summary;
  if (!valid_name(datagram))
    return query_kind::malformed;
  name = datagram;
  return query_kind::name;
}

} // namespace tally

#include <mayfly/runtime/parse.hpp>

#include <charconv>
#include <string>

namespace mayfly {

namespace {

error_info bad_value(std::string_view text, const char* what) {
  return {errc::invalid_config, what, 0, "'" + std::string{text} + "'"};
}

} // namespace

result<uint64_t> parse_uint(std::string_view text, uint64_t min,
                            uint64_t max) {
  if (text.empty())
    return bad_value(text, "empty, expected a number");
  for (char c : text)
    if (c < '0' || c > '9')
      return bad_value(text, "not a whole decimal number");
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(),
                                   value);
  if (ec == std::errc::result_out_of_range || value < min || value > max)
    return bad_value(text, "number out of range");
  if (ec != std::errc{} || end != text.data() + text.size())
    return bad_value(text, "not a whole decimal number");
  return value;
}

result<uint16_t> parse_port(std::string_view text) {
  auto value = parse_uint(text, 0, 65535);
  if (!value) {
    auto err = value.error();
    err.what = "not a port number (0..65535)";
    return err;
  }
  return static_cast<uint16_t>(*value);
}

} // namespace mayfly

#include <mayfly/runtime/metrics.hpp>

namespace mayfly {

std::string_view to_string(metric_kind k) noexcept {
  switch (k) {
    case metric_kind::counter:
      return "counter";
    case metric_kind::gauge:
      return "gauge";
    case metric_kind::config:
      return "config";
    case metric_kind::peak:
      return "peak";
    case metric_kind::distribution:
      return "distribution";
    case metric_kind::histogram:
      return "histogram";
    case metric_kind::text:
      return "string";
    case metric_kind::flag:
      return "bool";
    case metric_kind::identifier:
      return "id";
  }
  return "?";
}

bool valid_metric_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || name[0] < 'a' || name[0] > 'z')
    return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

double units_per_second(std::string_view unit) noexcept {
  if (unit == "s")
    return 1.0;
  if (unit == "ms")
    return 1e3;
  if (unit == "us")
    return 1e6;
  if (unit == "ns")
    return 1e9;
  return 0.0;
}

std::string markdown_table(const metric_section& section) {
  std::string out = "| field | kind | meaning |\n|---|---|---|\n";
  for (auto& m : section.metrics) {
    // `{label}` parts are written `<label>`, a distribution with its keys.
    std::string field;
    for (char c : m.name)
      field += c == '{' ? '<' : c == '}' ? '>' : c;
    if (m.kind == metric_kind::distribution)
      field += field.ends_with('_') ? "{p50,p99,max}" : ".{p50,p99,max}";
    out.append("| `").append(field).append("` | ");
    out.append(to_string(m.kind));
    if (!m.unit.empty())
      out.append(", ").append(m.unit);
    out.append(" | ").append(m.help).append(" |\n");
  }
  return out;
}

} // namespace mayfly

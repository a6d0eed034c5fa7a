#pragma once

/// @file
/// Descriptions of statistics: every figure in the statistics document
/// (docs/stats.md) is declared once, as a `metric_info` (name, kind, unit,
/// help) in a `metric_section`, next to the code that renders it. From these
/// lists come the Prometheus TYPE, HELP and unit (net/prometheus.hpp) and
/// the tables of docs/stats.md (generated, `net.StatsDoc.*` checks them).
///
/// **Names** are paths relative to the section, parts joined by `.`:
/// `"balance.zero"` is the key `zero` of the object `balance`. A part
/// `{label}` is a key chosen at run time (a pool, a status code): in
/// Prometheus it becomes the label `label`. A `distribution` named `x`
/// covers the keys `x.p50`, `x.p99`, `x.max` (an object); named `x_` (trailing
/// underscore) it covers the flat keys `x_p50`, `x_p99`, `x_max`.
///
/// **Sections** name where they sit in the document: `"/handlers/{handler}"`
/// (every handler type's object, label `handler`). Several sections may
/// share a path (a UDP and an HTTP endpoint both under `/net/{endpoint}`);
/// a name must then mean the same in each.
///
/// Adding a figure: one line in the component's list (X-macro
/// `X(name, kind, unit, help)` or array entry `{name, kind, unit, help}`),
/// then `MAYFLY_REGENERATE_STATS_DOC=1 build/dev/tests/mayfly_net_tests
/// --gtest_filter='StatsDoc.*'` to refresh docs/stats.md. Converting an old
/// two-column entry `X(name, "help")`: `X(name, counter, "", "help")`; pick
/// `gauge` for a current value, `config` for a setting, `histogram` for a
/// latency histogram object, a unit such as
/// "bytes", "s", "ms", "us" when the value has one.
///
/// Thread-safety: plain constant data. Cost: none at run time; descriptions
/// are read when /metrics is rendered and when the docs are checked.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mayfly {

/// What a figure is; decides its Prometheus type and its docs column.
enum class metric_kind : uint8_t {
  counter,      ///< monotonic since start: take differences
  gauge,        ///< a current value, may go down
  config,       ///< a setting, constant for the runtime's life (a gauge)
  peak,         ///< highest value seen since start (a gauge)
  distribution, ///< quantiles p50, p99 and max over all samples
  histogram,    ///< a latency histogram object (runtime/latency_histogram.hpp):
                ///< `bounds_us`, `counts`, `count`, `sum_us`; a Prometheus
                ///< histogram
  text,         ///< a string: a label of the section's `_info` gauge
  flag,         ///< a boolean: a 0/1 gauge
  identifier,   ///< a tag or name that is not a measurement: not exported
};

/// "counter", "gauge", "config", "peak", "distribution", "histogram",
/// "string", "bool", "id": the kind column of docs/stats.md.
std::string_view to_string(metric_kind k) noexcept;

/// One figure. Views only: the strings live as long as the description
/// (static lists, or storage owned by whoever registered it).
struct metric_info {
  std::string_view name; ///< path in its section, see file comment
  metric_kind kind;
  std::string_view unit; ///< "bytes", "s", "ms", "us", "ns", ... or ""
  std::string_view help; ///< one sentence (Markdown allowed, one line)
};

/// The figures of one object of the document.
struct metric_section {
  std::string_view id;   ///< the docs marker: `<!-- metrics:id -->`
  std::string_view path; ///< JSON pointer with `{label}` parts
  std::span<const metric_info> metrics;
};

/// Whether `name` may name a user statistic: 1 to 64 characters from
/// `[a-z0-9_]`, starting with a letter. Prometheus and JSON safe.
bool valid_metric_name(std::string_view name) noexcept;

/// The seconds in one `unit` ("s", "ms", "us", "ns"), or 0 if `unit` is
/// not a time unit.
double units_per_second(std::string_view unit) noexcept;

/// The Markdown table of `section` as docs/stats.md shows it: columns
/// field, kind (with the unit), meaning. Ends with a newline. Allocates.
std::string markdown_table(const metric_section& section);

} // namespace mayfly

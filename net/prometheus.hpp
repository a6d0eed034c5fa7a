#pragma once

/// @file
/// `to_prometheus`: the statistics document (docs/stats.md) in the Prometheus
/// text exposition format, version 0.0.4, as served at `GET /metrics` by the
/// stats endpoint (net/stats_endpoint.hpp).
///
/// Every figure is looked up in its *description* (runtime/metrics.hpp),
/// which gives its type, HELP text and unit; nothing is guessed from names.
/// The family is `mayfly_` plus the literal parts of the figure's path
/// joined by `_`, characters outside `[a-zA-Z0-9_]` replaced by `_`
/// (docs/stats.md, "Prometheus" has the same list with examples):
///
/// - **Dynamic keys become labels**: a `{label}` part of the description
///   (`/handlers/{handler}`, `/net/{endpoint}`, `/pools/{pool}`,
///   `binaries.refs.{refs}`, `responses.{code}`, `threads.{thread}`,
///   `by_holder.{holder}`: at most `runtime.top_holders` names plus
///   "(other)", so the label set stays bounded) gives the label:
///   `mayfly_handlers_spawned_total{handler="echo"} 12`.
/// - **Kinds**: `counter` → counter, suffix `_total`; `gauge`, `config`,
///   `peak` → gauge; `flag` → 0/1 gauge; `distribution` → one gauge family
///   with a `quantile` label (0.5, 0.99, and 1 for the maximum);
///   `histogram` → a Prometheus histogram (below);
///   `text` → a label of the object's single `<object>_info` gauge of value
///   1 (`mayfly_runtime_info{state="running",overload="pause"} 1`);
///   `identifier` → left out.
/// - **Units**: a time unit ("s", "ms", "us", "ns") makes the name end in
///   `_seconds` (replacing the key's own `_s`, `_ms`... suffix) and scales
///   the value (`uptime_s` → `mayfly_runtime_uptime_seconds`); other units
///   are named in HELP.
/// - **Histograms.** A figure of kind `histogram` is an object with
///   `bounds_us`, `counts` (one more entry than bounds) and `sum_us` (a
///   latency histogram, runtime/latency_histogram.hpp); it becomes one
///   Prometheus histogram named after its path plus `_seconds`: cumulative
///   `_bucket{le="..."}` series with the bounds in seconds and `le="+Inf"`
///   last, `_sum` in seconds and `_count`, with `# TYPE ... histogram`:
///   `mayfly_handlers_latency_run_seconds_bucket{handler="echo",le="1e-05"}`.
/// - A figure **without a description** is a defect: it is exported as
///   `untyped` under its full path and counted in a trailing comment
///   (`net.StatsEndpoint.EveryFigureIsDescribed` checks a real one). Strings
///   without one are left out and counted too. Arrays and nulls are left out.
///
/// Each family is written once, with one `# HELP` (naming the JSON path it
/// comes from) and one `# TYPE` line, its samples together; families are
/// sorted by name. Should two paths map to the same family with different
/// types, or to the same series, the later one is skipped and counted in a
/// trailing comment, so the output always parses.
///
/// Thread-safety: a pure function. Cost: O(size of the document); allocates
/// (the stats endpoint's thread, never the datagram path).

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mayfly/runtime/metrics.hpp>

namespace mayfly {

/// Renders `stats` (a `runtime::collect_stats()` document) in the Prometheus
/// text format 0.0.4, typed by `described` (`stats_registry::descriptions()`
/// of the runtime that made it). See file comment for the mapping. Accepts
/// a JSON value of any shape (a non-object yields only a comment); throws
/// nothing but `std::bad_alloc`.
std::string to_prometheus(const nlohmann::json& stats,
                          std::span<const metric_section> described);

/// The descriptions of every built-in component: schema, runtime, pools,
/// arenas, binaries, remote, handlers, UDP and HTTP endpoints (not the user
/// statistics of a runtime, nor a service's own sources). docs/stats.md's
/// tables are generated from these. Allocates.
std::vector<metric_section> builtin_metric_sections();

} // namespace mayfly

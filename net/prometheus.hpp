#pragma once

/// @file
/// `to_prometheus`: the statistics document (docs/stats.md) in the Prometheus
/// text exposition format, version 0.0.4, as served at `GET /metrics` by the
/// stats endpoint (net/stats_endpoint.hpp).
///
/// The document is flattened: every numeric leaf becomes one sample of a
/// metric family named `mayfly_` plus its JSON path joined by `_`, with every
/// character outside `[a-zA-Z0-9_]` replaced by `_`. The rules, in full
/// (docs/stats.md, "Prometheus" has the same list with examples):
///
/// - **Dynamic keys become labels**, not parts of the name: handler names
///   under `/handlers` (label `handler`), endpoint names under `/net`
///   (`endpoint`), size classes under `/pools` (`pool`), reference-count
///   buckets under `/pools/<pool>/binaries/refs` (`refs`), status codes
///   under `/net/<endpoint>/responses` (`code`), receive threads under
///   `/net/<endpoint>/threads` (`thread`) and holder names under
///   `/holders/by_holder` (`holder`: at most `runtime.top_holders` names
///   plus "(other)", so the label set stays bounded):
///   `mayfly_handlers_spawned_total{handler="echo"} 12`.
/// - **Quantiles** (`p50`, `p99`, `max`, or `<name>_p50`... next to each
///   other) become one gauge family with a `quantile` label: 0.5, 0.99, and
///   1 for the maximum: `mayfly_arenas_bytes_used{quantile="0.99"}`.
/// - **Counter or gauge.** A leaf is a gauge if it lies under `/runtime`
///   (configuration and current state) or `/holders` (a census), if its key
///   is one of `capacity`, `in_use`, `in_flight`, `live`, `leases_out`,
///   `blocks_in_use`, `receive_threads`, `threads`, `schema`, `long_lived`,
///   starts with `peak`, `max_` or
///   `live_`, or ends with `_peak`, `_live`, `_size`, `_limit`, `_avg`,
///   `_per_datagram`, `_bytes` (a current size; byte *counters* are named
///   `bytes_in`/`bytes_out`) or a time unit. Every other number is a
///   monotonic counter and gets the suffix `_total`.
/// - **Units** already in a name are kept, time in base units: `_s` becomes
///   `_seconds`; `_ms`, `_us` and `_ns` become `_seconds` and the value is
///   scaled (`uptime_s` → `mayfly_runtime_uptime_seconds`).
/// - **Histograms.** An object with `bounds_us`, `counts` (one more entry
///   than bounds) and `sum_us` (a latency histogram,
///   runtime/latency_histogram.hpp) becomes one Prometheus histogram named
///   after its path plus `_seconds`: cumulative `_bucket{le="..."}` series
///   with the bounds in seconds and `le="+Inf"` last, `_sum` in seconds and
///   `_count`, with `# TYPE ... histogram`:
///   `mayfly_handlers_latency_run_seconds_bucket{handler="echo",le="1e-05"}`.
/// - **Booleans** are gauges 0/1. **Strings** of one object become the
///   labels of a single `<object>_info` gauge with value 1
///   (`mayfly_runtime_info{state="running",overload="pause"} 1`). Arrays,
///   nulls and opaque identifiers (`oldest_holder`, a thread's `cpu`) are
///   left out.
///
/// Each family is written once, with one `# HELP` (naming the JSON path it
/// comes from) and one `# TYPE` line, its samples together; families are
/// sorted by name. Should two paths map to the same family with different
/// types, or to the same series, the later one is skipped and counted in a
/// trailing comment, so the output always parses.
///
/// Thread-safety: a pure function. Cost: O(size of the document); allocates
/// (the stats endpoint's thread, never the datagram path).

#include <string>

#include <nlohmann/json.hpp>

namespace mayfly {

/// Renders `stats` (a `runtime::collect_stats()` document) in the Prometheus
/// text format 0.0.4. See file comment for the mapping. Accepts a JSON
/// value of any shape (a non-object yields only a comment); throws nothing
/// but `std::bad_alloc`.
std::string to_prometheus(const nlohmann::json& stats);

} // namespace mayfly

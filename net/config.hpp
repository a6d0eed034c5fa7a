#pragma once

/// @file
/// `mayfly::config`: the whole configuration of a service, one member per
/// section of the JSON document, and the one function that reads it.
///
/// ```json
/// {
///   "runtime": { ... },                      // config::runtime
///   "memory":  { "buffers": { ... },         // config::runtime.memory
///                "arenas":  { ... } },
///   "net":     { ... },                      // config::net
///   "stats":   { ... },                      // config::stats
///   "service": { ... }                       // the service's own: not read
/// }
/// ```
///
/// The `memory` section lives in `runtime_config::memory` because a runtime
/// owns the pools it sizes (actors/ must not depend on net/). Handler-type
/// settings are not in the file: they are given in code, where the type is
/// added (`handler_options`); the runtime's `max_in_flight` and `overload`
/// and the endpoint's `handler_start` are their defaults.
///
/// Every field of every section, its default and its range:
/// docs/guide.md, "Configuration". Errors name the field by its path
/// (`net.batch: value out of range`). Test-only switches (CAF's test
/// coordinator) are not part of it: tests/support/small_runtime.hpp.
///
/// Cold path; not thread-safe (a value type).

#include <optional>

#include <nlohmann/json.hpp>

#include <mayfly/actors/config.hpp>
#include <mayfly/net/stats_endpoint.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include <mayfly/runtime/result.hpp>

namespace mayfly {

/// A service's configuration, section by section (see file comment).
struct config {
  /// "runtime" and "memory": workers, in-flight bound, pools.
  runtime_config runtime;
  /// "net": the UDP endpoint (its address comes from flags or code).
  endpoint_config net;
  /// "stats": where and how the statistics endpoint serves.
  stats_config stats;
  /// "net.source_limit": the per-source limit of the service's handler type
  /// (`handler_options::source_limit`); none when the file has none.
  std::optional<source_limit_options> source_limit;
};

/// Reads a whole document on top of `defaults`: every section, unknown
/// sections and fields rejected, errors naming the field. The section
/// parsers it calls (`parse_runtime_config`, `parse_endpoint_config`,
/// `parse_stats_config`) remain for code that reads one section.
result<config> parse_config(const nlohmann::json& doc, config defaults = {});

/// `read_config_file(path)` then `parse_config`; errors name the file
/// ("FILE: runtime.workers: value out of range").
result<config> load_config(const std::string& path, config defaults = {});

} // namespace mayfly

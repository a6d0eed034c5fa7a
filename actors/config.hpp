#pragma once

/// @file
/// `runtime_config`: everything a `mayfly::runtime` is configured with.
///
/// Set fields in code, or read them from JSON (a file or a string); the
/// examples additionally apply command-line and `MAYFLY_*` environment
/// overrides. A configuration file has one section per layer:
///
/// ```json
/// {
///   "runtime": { "workers": 2, "max_throughput": 64, "max_in_flight": 4096,
///                "overload": "pause", "shutdown_deadline_ms": 5000,
///                "stall_threshold_ms": 10, "latency_histograms": true },
///   "memory":  { "buffers": { ... }, "arenas": { ... } },
///   "net":     { ... },
///   "stats":   { ... }
/// }
/// ```
///
/// Defaults (docs/guide.md, "Configuration"): workers = number of cores,
/// max_throughput = 64 messages per actor per scheduling, max_in_flight =
/// 4096 handlers per handler type, overload = pause, shutdown deadline 5 s,
/// detach = {enabled, max_slice_bytes 128, min_binary_bytes 1024},
/// top_holders = 10, memory as in runtime/config.hpp.
///
/// Errors name the field, e.g. `runtime.max_in_flight: value out of range`.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <caf/fwd.hpp>
#include <nlohmann/json.hpp>

#include <mayfly/runtime/config.hpp>
#include <mayfly/runtime/result.hpp>

namespace mayfly {

/// What the receive path does when a handler type is at `max_in_flight`.
enum class overload_policy : uint8_t {
  /// Stop reading the socket until handlers finish: the kernel queues, then
  /// drops (counted via SO_RXQ_OVFL). Memory stays bounded.
  pause,
  /// Read and drop the datagram at once (counted as a policy drop).
  drop,
};

/// Where a handler spawned for a datagram runs first.
enum class handler_start : uint8_t {
  /// On the IO thread that received the datagram, at once, until the
  /// handler finishes or waits for a message (`inline_runner`); later
  /// activations run on CAF's workers. No thread crossing for a handler
  /// that answers at once; a handler that computes long delays its loop's
  /// reading. Default.
  io_thread,
  /// On CAF's workers: the IO thread only enqueues the handler.
  workers,
};

/// What an idle CAF worker does while it waits for the next handler.
enum class worker_idle : uint8_t {
  /// CAF's default: spin, then nap 50 µs at a time for ~25 ms, then block.
  /// Best throughput under steady load; the naps cost a lone request up to
  /// their length (~100 µs in a VM) and burn CPU on a quiet service.
  poll,
  /// Spin briefly, then block on the worker's condition variable; the next
  /// handler spawned for it wakes it (one futex wake-up). A lone request is
  /// answered ~3× sooner, at ~15% less throughput under full load
  /// (docs/benchmarks.md, "Idle workers").
  block,
};

/// The detach policy's rule (actors/detach_policy.hpp): a slice sent to an
/// actor marked long-lived (`runtime::mark_long_lived`) that views at most
/// `max_slice_bytes` of a binary of at least `min_binary_bytes` is copied
/// out when it is sent. JSON: "runtime": {"detach": {...}}.
struct detach_config {
  /// Off: slices go to long-lived actors as they are (their binaries are
  /// still attributed to the actor in the top-holders report).
  bool enabled = true;
  /// Slices viewing at most this many bytes are copied out; must be below
  /// `min_binary_bytes`.
  uint32_t max_slice_bytes = 128;
  /// ... when their binary holds at least this many bytes (a slot size: the
  /// standard class's 2 KiB slots qualify by default).
  uint32_t min_binary_bytes = 1024;
};

/// Configuration of a runtime. See file comment.
struct runtime_config {
  /// CAF worker threads; 0 means one per core.
  uint32_t workers = 0;
  /// Messages an actor may process before yielding its worker.
  uint32_t max_throughput = 64;
  /// Handlers of one handler type alive at once (the in-flight bound): the
  /// default for types whose `handler_options::max_in_flight` is 0.
  uint32_t max_in_flight = 4096;
  /// The default for types whose `handler_options::overload` is unset.
  overload_policy overload = overload_policy::pause;
  /// How long `stop()` waits for in-flight handlers before killing them.
  uint32_t shutdown_deadline_ms = 5000;
  /// How idle workers wait (owned system only; see `worker_idle`).
  worker_idle idle = worker_idle::poll;
  /// Stall report: a handler activation running longer than this is
  /// reported while it runs (by a watchdog thread) and counted when it ends
  /// (`handlers/<name>/stalls`). 0 turns the report off (no watchdog).
  uint32_t stall_threshold_ms = 10;
  /// Latency histograms per handler type (receive → handler start, handler
  /// run, reply → kernel; docs/stats.md). Off: no clock reads for them.
  bool latency_histograms = true;
  /// The detach policy for slices sent to long-lived actors.
  detach_config detach;
  /// Holders listed by name in the top-holders report ("holders" in the
  /// statistics); the rest are summed as "(other)".
  uint32_t top_holders = 10;
  /// Pool sizes.
  memory_config memory;
  /// Called with the CAF configuration of an owned actor system just before
  /// the system is created, e.g. to load the io module for distribution
  /// (`cfg.load<caf::io::middleman>()`, docs/design/distribution.md) or to
  /// announce message types. Not read from JSON; unused with a borrowed
  /// system. Empty by default: a runtime needs only CAF's core.
  std::function<void(caf::actor_system_config&)> configure_caf;
};

/// Parses a whole configuration document (see file comment) on top of
/// `defaults`. Unknown top-level sections and unknown fields are errors;
/// "net" and "stats" are left to the network layer.
result<runtime_config> parse_runtime_config(const nlohmann::json& doc,
                                            runtime_config defaults = {});

/// Why `cfg` is not a usable rule (`max_slice_bytes` must be below
/// `min_binary_bytes`: a slice copied out is smaller than its binary), or
/// nothing. The error names the field ("runtime.detach.max_slice_bytes").
std::optional<error_info> check_detach_config(const detach_config& cfg);

/// Reads and parses a JSON file. Errors name the file for I/O and syntax
/// errors and the field for invalid values.
result<nlohmann::json> read_config_file(const std::string& path);

/// "pause" or "drop".
const char* to_string(overload_policy x) noexcept;

/// "io_thread" or "workers".
const char* to_string(handler_start s) noexcept;

/// "block" or "poll".
const char* to_string(worker_idle x) noexcept;

} // namespace mayfly

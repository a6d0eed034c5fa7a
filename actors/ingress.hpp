#pragma once

/// @file
/// `ingress`: something that feeds datagrams into a runtime and sends
/// handlers' replies (a UDP endpoint), or serves its statistics (the HTTP
/// stats endpoint). The runtime owns its ingresses and shuts them down in
/// two steps around the drain of in-flight handlers, after telling them
/// when it starts:
///
/// 0. `start_receiving()` in `runtime::start()` (or at once when attached
///    to a running runtime): dispatching may begin. An ingress opened
///    before that reads nothing until then (datagrams wait in the kernel).
/// 1. `drain_kernel_queue()` first thing in `runtime::stop()`, while the
///    runtime still dispatches: take no new datagram from the kernel, but
///    dispatch what it had already queued (bounded by the deadline).
///    `stop_receiving()` next: no new datagram is dispatched; replies are
///    still sent.
/// 2. `close()` after every handler and long-lived actor is gone: flush
///    pending replies, join threads, release every buffer held.
///
/// Because the runtime owns them, a handler can never reply to an endpoint
/// that no longer exists.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mayfly/runtime/metrics.hpp>

namespace mayfly {

/// A source of datagrams owned by the runtime. See file comment.
class ingress {
public:
  virtual ~ingress();

  /// A short name for statistics and logs, e.g. "udp:127.0.0.1:9000".
  virtual std::string name() const = 0;

  /// The runtime runs: dispatching may begin. Idempotent; returns quickly.
  virtual void start_receiving() noexcept {
  }

  /// Stops taking new datagrams from the kernel and dispatches the ones it
  /// already queued for this ingress; returns when they are dispatched or
  /// after `deadline_ms`. Called while the runtime still runs. Default:
  /// nothing to drain.
  virtual void drain_kernel_queue(int64_t deadline_ms) noexcept {
    (void) deadline_ms;
  }

  /// Stops dispatching new datagrams. Idempotent; returns quickly.
  virtual void stop_receiving() noexcept = 0;

  /// Flushes and releases everything; joins threads. Idempotent.
  virtual void close() noexcept = 0;

  /// Statistics as JSON (docs/stats.md, "net").
  virtual nlohmann::json stats() const = 0;

  /// The descriptions of what `stats()` renders, path "/net/{endpoint}"
  /// (runtime/metrics.hpp). None by default: /metrics then reports those
  /// figures as undescribed.
  virtual std::vector<metric_section> stats_sections() const {
    return {};
  }
};

} // namespace mayfly

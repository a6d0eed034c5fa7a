#pragma once

/// @file
/// `stats_endpoint`: the runtime's statistics over HTTP.
///
/// ```cpp
/// auto stats = mayfly::stats_endpoint::open(
///   *rt, *mayfly::udp_address::parse("127.0.0.1:9100"));
/// if (!stats) { report(stats.error().message()); }
/// // curl http://127.0.0.1:9100/stats?pretty
/// ```
///
/// | request              | response                                              |
/// |----------------------|-------------------------------------------------------|
/// | `GET /stats`         | `runtime::collect_stats()`, compact JSON              |
/// | `GET /stats?pretty`  | the same, indented                                    |
/// | `GET /metrics`       | the same figures, Prometheus text 0.0.4 (net/prometheus.hpp) |
/// | `GET /`              | a live page with charts (net/stats_page.hpp)          |
/// | other paths          | 404, `{"error":"not found","path":...}`               |
/// | other methods        | 405, `Allow: GET, HEAD`, JSON error                   |
///
/// `HEAD` is answered like `GET` without a body (HTTP requires servers to
/// support both). The document never contains payload bytes: only counts,
/// sizes, names and configuration (docs/stats.md).
///
/// **Binding.** `address` is a plain IP:port (a `udp_address` reused as a
/// socket address); port 0 picks a free port, `local_address()` returns the
/// real one. Bind to loopback (127.0.0.1 or [::1]) unless the figures may be
/// read by anyone who can reach the port: there is no authentication.
///
/// **Host.** On every bind (loopback, a wildcard such as 0.0.0.0 or [::],
/// or any other address) a request's `Host` must be an IP literal,
/// `localhost` or one of `limits.allowed_hosts`, else 403: this defeats DNS
/// rebinding (a web page in a local browser reading the endpoint through a
/// hostname it controls). More than one `Host` header, or none on HTTP/1.1,
/// gets 400 (RFC 9112, 3.2); HTTP/1.0 may omit it.
///
/// **Threads.** One event thread runs libmicrohttpd (epoll, no thread per
/// client): it accepts, reads, parses and answers every connection without
/// blocking, and calls `runtime::collect_stats()` per request, never on the
/// datagram path (stats_endpoint.cpp).
///
/// **Bounded.** At most `limits.max_connections` connections are open;
/// beyond, an immediate 503. A request must arrive whole within
/// `request_timeout_ms` of its first byte (or, for a connection's first
/// request, of the accept) and hold at most `max_request_bytes`; a response
/// must be written within `request_timeout_ms`; an idle connection is closed
/// after `keep_alive_timeout_ms` or `keep_alive_max` requests (all in ms,
/// enforced by the event loop). A slow client (one header byte a second,
/// say) costs a descriptor and bounded memory, never a thread, until its
/// deadline cuts it: others are answered meanwhile. Malformed requests get
/// 400, 414, 431, 505 or a closed connection (some answered by
/// libmicrohttpd itself, docs/stats.md); none can crash the process.
///
/// **Lifetime.** `open` starts serving and attaches the endpoint to the
/// runtime, which owns it. It keeps serving through `stop_receiving()`, so
/// the figures of a shutdown (handlers draining) can be watched; `close()`,
/// the last step of `runtime::stop()`, stops the server, closes open
/// connections and joins its thread (idempotent; a few milliseconds). Statistics of the endpoint
/// itself appear under `/net/http:<address>` (docs/stats.md).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mayfly/actors/ingress.hpp>
#include <mayfly/actors/address.hpp>
#include <mayfly/runtime/result.hpp>

namespace mayfly {

class runtime;

/// Limits of a stats endpoint. The defaults suit a browser tab, a
/// Prometheus scraper and a few `curl`s at once: a request takes about a
/// millisecond, so one thread serves them in turn while `max_queued` wait.
struct stats_endpoint_limits {
  /// Ignored (1..64 still checked, for old configurations): one event
  /// thread serves every connection.
  uint32_t threads = 4;
  /// Ignored (0..1024 still checked): there is no request queue.
  uint32_t max_queued = 16;
  /// Open connections, served or waiting for a request (1..4096); beyond,
  /// 503. Each costs a descriptor and at most 2 x `max_request_bytes` +
  /// 32 KiB of libmicrohttpd's memory pool, never a thread.
  uint32_t max_connections = 256;
  /// A request (line, headers, body) must arrive within this time, counted
  /// from its first byte; a response must be written within it (ms, >0).
  uint32_t request_timeout_ms = 5000;
  /// How long a connection may wait for its next request (ms, >0).
  uint32_t keep_alive_timeout_ms = 2000;
  /// Requests served on one connection before it is closed (>0).
  uint32_t keep_alive_max = 100;
  /// Largest request (line, headers and body) in bytes (1024..1 MiB).
  uint32_t max_request_bytes = 16384;
  /// Host names a request's `Host` header may carry besides IP literals and
  /// `localhost` (at most 64; letters, digits, '-' and '.'; compared without
  /// case and trailing dot). Any other name gets 403, whatever the bind
  /// address: DNS rebinding (see file comment).
  std::vector<std::string> allowed_hosts;
};

/// The `stats` section of a configuration document:
///
/// ```json
/// "stats": { "address": "127.0.0.1:9100", "threads": 1, "max_queued": 16,
///            "max_connections": 256, "request_timeout_ms": 5000,
///            "keep_alive_timeout_ms": 2000, "keep_alive_max": 100,
///            "max_request_bytes": 16384, "allowed_hosts": ["stats.lan"] }
/// ```
///
/// `address` absent: no stats endpoint (the examples' --stats flag and
/// MAYFLY_STATS still open one). Other fields: `stats_endpoint_limits`.
struct stats_config {
  std::optional<udp_address> address;
  stats_endpoint_limits limits;
};

/// Parses the `stats` section of a whole configuration document on top of
/// `defaults`; errors name the field (`stats.threads: value out of range`).
/// Cold path.
result<stats_config> parse_stats_config(const nlohmann::json& doc,
                                        stats_config defaults = {});

/// The HTTP statistics endpoint. See file comment.
class stats_endpoint final : public ingress {
public:
  /// Binds TCP to `address`, starts serving and attaches the endpoint to
  /// `rt` (which owns it from then on). Fails if the address is not IPv4 or
  /// IPv6 (`errc::invalid_address`) or cannot be bound
  /// (`errc::system_error`).
  static result<stats_endpoint*> open(runtime& rt, const udp_address& address);

  /// As above with explicit limits; fails with `errc::invalid_config`
  /// naming the field when one is out of range.
  static result<stats_endpoint*> open(runtime& rt, const udp_address& address,
                                      const stats_endpoint_limits& limits);

  ~stats_endpoint() override;

  stats_endpoint(const stats_endpoint&) = delete;
  stats_endpoint& operator=(const stats_endpoint&) = delete;

  /// The bound address (the real port after port 0).
  const udp_address& local_address() const noexcept {
    return local_;
  }

  /// "http:" + the bound address, e.g. "http:127.0.0.1:9100".
  std::string name() const override;

  /// Nothing: statistics stay readable while the runtime drains.
  void stop_receiving() noexcept override;

  /// Stops the server and joins its thread (see file comment). Idempotent.
  void close() noexcept override;

  /// The endpoint's own counters (docs/stats.md, "net", HTTP endpoint).
  nlohmann::json stats() const override;
  /// `stats_endpoint_metrics`.
  std::vector<metric_section> stats_sections() const override;

private:
  /// The libmicrohttpd daemon and its event thread (stats_endpoint.cpp).
  struct state;

  stats_endpoint(runtime& rt, const stats_endpoint_limits& limits);

  udp_address local_;
  std::unique_ptr<state> state_;
};

/// What `stats_endpoint::stats()` renders under "/net/{endpoint}"
/// (docs/stats.md, "net", HTTP stats endpoint).
extern const metric_section stats_endpoint_metrics;

} // namespace mayfly

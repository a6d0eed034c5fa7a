#pragma once

/// @file
/// The `mayfly-dns` service, shared by the program (main.cpp) and the
/// in-process tests: `dns::service` holds the zone being served and the
/// service's counters, makes the handler function a runtime runs once per
/// query, and reloads the zone file on request.
///
/// ```cpp
/// auto loaded = dns::load_zone_file(path);          // check loaded.ok
/// dns::service svc{std::move(loaded.value), path};
/// auto& h = rt->add_handler("dns", svc.make_handler());
/// auto ep = mayfly::udp_endpoint::open(*rt, h, endpoint_cfg);
/// ...
/// auto r = svc.reload();                            // e.g. on SIGHUP
/// ```
///
/// **Per query**: one handler actor; the query is parsed and the response
/// built in the handler's arena (`ctx.arena()`), then copied once into a
/// send buffer by `ctx.reply(std::string_view)`. No heap allocation by the
/// service.
///
/// **Zone ownership and reload.** The zone is immutable and shared: the
/// service holds it in a `std::atomic<std::shared_ptr<const zone>>`, and
/// each query takes its own reference when it starts, so a reload swaps the
/// zone for the queries that start after it while the handlers in flight
/// finish with the zone they began with; the old zone is freed by whichever
/// holder lets go of it last. Cost per query: one atomic shared_ptr load (in
/// libstdc++ a spin bit and a reference count increment on a cache line
/// shared by all handler threads) and one decrement. A zone file that does
/// not load leaves the served zone as it was; the reason is returned,
/// logged to stderr, counted (`reload_failures`) and kept for `/dns`
/// (`zone.last_reload_error`) until the next successful reload.
///
/// Thread-safety: `make_handler`'s handlers, `current`, `reload`, `stats`
/// and `to_json` may be used from any threads at once; reloads are
/// serialized. The service must outlive the runtime's handlers (stop the
/// runtime before destroying it).

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <mayfly/runtime/metrics.hpp>
#include <nlohmann/json.hpp>

#include "examples/dns/responder.hpp"
#include "examples/dns/zone.hpp"
#include <mayfly/actors/handler.hpp>
#include <mayfly/runtime/counters.hpp>

namespace dns {

/// Counters of the service, summed over all handler threads. Thread-safe;
/// `record` is a few relaxed adds on the calling thread's shard.
class service_stats {
public:
  enum counter : size_t {
    queries,        ///< datagrams handled
    dropped_short,  ///< shorter than a header: no reply
    dropped_qr,     ///< responses (QR=1) received: no reply
    no_memory,      ///< the handler's arena refused: no reply
    replies,        ///< replies handed to the endpoint
    reply_failures, ///< replies the endpoint refused (queue full, ...)
    truncated,      ///< replies with TC set
    rc_noerror,
    rc_formerr,
    rc_servfail,
    rc_nxdomain,
    rc_notimp,
    rc_refused,
    rc_badvers,
    reloads,         ///< zone reloads that swapped the zone
    reload_failures, ///< reloads that kept the old zone (see `reload`)
    num_counters,
  };

  /// Counts one handled datagram: `out` from `respond`, and whether the
  /// reply (if any) was accepted by the endpoint.
  void record(const outcome& out, bool reply_accepted) noexcept;

  /// Counts one zone reload attempt.
  void record_reload(bool ok) noexcept {
    counters_.add(ok ? reloads : reload_failures);
  }

  int64_t count(counter c) const noexcept {
    return counters_.sum(c);
  }

  /// {"queries": .., "rcodes": {"NOERROR": ..}, ...}
  nlohmann::json to_json() const;

  /// A few lines for the end of a run.
  std::string summary() const;

private:
  mayfly::sharded_counters<num_counters> counters_;
};

/// What `service::reload` did.
struct reload_result {
  /// The new zone is being served.
  bool ok = false;
  /// A line for the log. Success: "zone example.test. reloaded from PATH:
  /// serial 2024060102, 27 records"; failure: why, naming the file, and
  /// that the old zone stays ("PATH: line 3: bad IPv4 address '1.2.3';
  /// still serving zone example.test. serial 2024060101").
  std::string message;
};

/// The DNS service: the zone being served, its counters, its handler. See
/// file comment.
class service {
public:
  /// Serves `z`; `reload` re-reads `zone_file` (empty: reloads fail).
  explicit service(zone z, std::string zone_file = {});

  service(const service&) = delete;
  service& operator=(const service&) = delete;

  /// The handler function: answers each query from the zone current when
  /// the query starts, counts into `stats()`. Holds `this`.
  mayfly::handler_fn make_handler();

  /// The zone new queries are answered from; it lives as long as the
  /// returned pointer. Never null.
  std::shared_ptr<const zone> current() const noexcept {
    return zone_.load(std::memory_order_acquire);
  }

  /// Re-reads the zone file and, if it loads, serves it to every query that
  /// starts from now on. If it does not (missing, unreadable, a syntax
  /// error, no SOA, ...) the current zone stays. Either way the outcome is
  /// logged to stderr, counted and returned. Never throws (out of memory is
  /// a failed reload). Blocks for as long as reading and parsing take.
  reload_result reload() noexcept;

  service_stats& stats() noexcept {
    return stats_;
  }

  const service_stats& stats() const noexcept {
    return stats_;
  }

  /// `stats().to_json()` plus "zone": {"apex", "serial", "records",
  /// "file", "reloads", "reload_failures", "last_reload_error"}.
  nlohmann::json to_json() const;

private:
  std::string zone_file_;
  std::atomic<std::shared_ptr<const zone>> zone_;
  service_stats stats_;
  std::mutex reload_mtx_;        // serializes reloads
  mutable std::mutex error_mtx_; // guards last_error_ (held briefly)
  std::string last_error_;
};

/// The SOA serial of `z` (0 for an empty zone).
uint32_t serial_of(const zone& z) noexcept;

/// What `service::to_json()` renders under "/dns" (mayfly's statistics):
/// register it with the source, `rt.stats().add("/dns", ..., {dns_metrics})`,
/// so that /metrics types and explains every figure.
extern const mayfly::metric_section dns_metrics;

} // namespace dns

#pragma once

/// @file
/// The `mayfly-dns` service logic, shared by the program (main.cpp) and the
/// in-process integration test: the handler function a runtime runs once
/// per query, and the service's own counters.
///
/// ```cpp
/// dns::service_stats stats;
/// auto& h = rt->add_handler("dns", dns::make_handler(&zone, &stats));
/// auto ep = mayfly::udp_endpoint::open(*rt, h, endpoint_cfg);
/// ```
///
/// **Per query**: one handler actor; the query is parsed and the response
/// built in the handler's arena (`ctx.arena()`), then copied once into a
/// send buffer by `ctx.reply(std::string_view)`. No heap allocation by the
/// service. The zone is read-only and shared by all handlers through a
/// const pointer: it must outlive the runtime's handlers (stop the runtime
/// before destroying it).

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include <mayfly/actors/handler.hpp>
#include "examples/dns/responder.hpp"
#include "examples/dns/zone.hpp"
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
    num_counters,
  };

  /// Counts one handled datagram: `out` from `respond`, and whether the
  /// reply (if any) was accepted by the endpoint.
  void record(const outcome& out, bool reply_accepted) noexcept;

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

/// The handler function: answers each query from `z`, counts into `stats`.
/// Both must outlive the handlers (the runtime's `stop()`).
mayfly::handler_fn make_handler(const zone* z, service_stats* stats);

} // namespace dns

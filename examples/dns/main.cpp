// mayfly-dns: a minimal authoritative DNS server for one zone
// (docs/workloads.md §3), answering real clients such as `dig`.
//
// It shows a real protocol on mayfly: the zone is parsed at start-up into
// ordinary containers and then shared read-only by every handler (a reload
// swaps in a new one; queries in flight keep theirs); each query is one
// short-lived handler actor that parses the message and builds the whole
// response (name compression included) in its arena, without touching the heap,
// and replies with `ctx.reply(std::string_view)`, which copies the bytes once
// into a send buffer. Malformed input is data: it is answered FORMERR (or not
// at all when shorter than a header) and counted, never fatal. SIGINT/SIGTERM
// stop the runtime gracefully and a summary of the counters is printed. A zone
// that does not load at start-up exits with status 2, naming the file and
// the reason.
//
//   mayfly-dns --zone examples/dns/example.zone --port 5353
//   dig @127.0.0.1 -p 5353 www.example.test A
//
// Flags: --zone FILE (required) and the flags of every mayfly::serve
// service (<mayfly/net/serve.hpp>): --port (default 5353), --address,
// --stats, --workers, --receive-threads, --config, --exit-after, --help.

#include <cstdio>
#include <optional>
#include <string>

#include "examples/dns/service.hpp"
#include "examples/dns/zone.hpp"
#include <mayfly/net/serve.hpp>
#include <mayfly/runtime/stats_registry.hpp>

namespace {

/// What SIGHUP does to mayfly-dns: re-read the zone file and serve it, or
/// keep the old zone when the new one does not load (`dns::service::reload`
/// logs the outcome and counts it under `/dns` `zone`). Called on serve's
/// signal thread (`serve_options::reload`); safe while handlers run.
void on_reload(dns::service& svc) {
  (void) svc.reload();
}

} // namespace

int main(int argc, char** argv) {
  std::string zone_file;
  auto opts = mayfly::parse_serve_options(
    argc, argv,
    "mayfly-dns: an authoritative DNS server for the zone in --zone FILE\n"
    "(RFC 1035 master format: SOA, NS, A, AAAA, TXT, CNAME, MX).\n"
    "Try: dig @127.0.0.1 -p 5353 www.example.test A",
    5353, {{"zone", "zone file (required)", &zone_file}});
  if (zone_file.empty()) {
    std::fprintf(stderr, "mayfly-dns: --zone FILE is required (see --help)\n");
    return 2;
  }

  // The zone: parsed once, immutable, shared by all handlers; a reload
  // swaps in a new one (see dns::service).
  auto loaded = dns::load_zone_file(zone_file);
  if (!loaded.ok) {
    std::fprintf(stderr, "mayfly-dns: %s\n", loaded.message.c_str());
    return 2;
  }
  dns::service svc{std::move(loaded.value), zone_file};
  {
    auto zone = svc.current();
    char apex[4 * dns::kMaxName + 2];
    size_t apex_len = dns::to_text(zone->apex(), apex, sizeof(apex));
    std::printf("mayfly-dns: zone %.*s, serial %u, %zu records\n",
                static_cast<int>(apex_len), apex, dns::serial_of(*zone),
                zone->record_count());
  }

  // Handlers count into the service; the runtime stops them all before
  // serve() returns, so the service outlives every handler.
  std::optional<mayfly::stats_registry::registration> dns_stats;
  auto setup = [&](mayfly::runtime& rt) -> mayfly::handler_type& {
    dns_stats.emplace(rt.stats().add("/dns", [&] { return svc.to_json(); },
                                     {dns::dns_metrics}));
    return rt.add_handler("dns", svc.make_handler());
  };
  opts.reload = [&svc] { on_reload(svc); }; // SIGHUP
  int code = mayfly::serve(opts, setup, {}, [&] { dns_stats.reset(); });
  std::printf("%s", svc.stats().summary().c_str());
  return code;
}

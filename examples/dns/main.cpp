// mayfly-dns: a minimal authoritative DNS server for one zone
// (shared/WORKLOADS.md §3), answering real clients such as `dig`.
//
// It shows a real protocol on mayfly: the zone is parsed once at start-up
// into ordinary containers and then shared read-only by every handler
// through a const pointer; each query is one short-lived handler actor that
// parses the message and builds the whole response (name compression
// included) in its arena, without touching the heap, and replies with
// `ctx.reply(std::string_view)`, which copies the bytes once into a send
// buffer. Malformed input is data: it is answered FORMERR (or not at all
// when shorter than a header) and counted, never fatal. SIGINT/SIGTERM stop
// the runtime gracefully and a summary of the counters is printed.
//
//   mayfly-dns --zone examples/dns/example.zone --port 5353
//   dig @127.0.0.1 -p 5353 www.example.test A
//
// Options: --zone FILE (required), --port P (5353), --address A (127.0.0.1),
// --workers N, --config FILE (JSON: "runtime", "memory", "net" sections),
// --stats ADDR:PORT (the HTTP statistics endpoint, if built), --help.

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "actors/config.hpp"
#include "actors/runtime.hpp"
#include "examples/dns/service.hpp"
#include "examples/dns/zone.hpp"
#include "net/udp_endpoint.hpp"
#include "runtime/address.hpp"

// Hook for the statistics endpoint (issue 5, written in parallel): used when
// its header is part of this build, otherwise --stats only says so.
#if __has_include("net/stats_endpoint.hpp")
#  include "net/stats_endpoint.hpp"
#  define MAYFLY_DNS_HAVE_STATS_ENDPOINT 1
#else
#  define MAYFLY_DNS_HAVE_STATS_ENDPOINT 0
#endif

namespace {

constexpr const char* kUsage
  = "usage: mayfly-dns --zone FILE [options]\n"
    "\n"
    "A minimal authoritative DNS server for the zone in FILE (RFC 1035 master\n"
    "format: SOA, NS, A, AAAA, TXT, CNAME, MX).\n"
    "\n"
    "  --zone FILE        zone file (required)\n"
    "  --port P           UDP port (default 5353)\n"
    "  --address A        bind address (default 127.0.0.1; ::1 for IPv6)\n"
    "  --workers N        CAF worker threads (default: one per core)\n"
    "  --config FILE      JSON configuration: runtime, memory, net sections\n"
    "  --stats A:P        serve statistics over HTTP on A:P\n"
    "  --help             this text\n";

struct options {
  std::string zone;
  std::string address = "127.0.0.1";
  int port = 5353;
  long workers = -1;
  std::string config;
  std::string stats;
};

[[noreturn]] void usage_error(const char* what, const char* arg = "") {
  std::fprintf(stderr, "mayfly-dns: %s%s\n\n%s", what, arg, kUsage);
  std::exit(2);
}

long number(const char* text, long min, long max, const char* flag) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
    usage_error("bad value for ", flag);
  return v;
}

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc)
      usage_error("missing value or unknown option: ", argv[i]);
    const char* v = argv[++i];
    if (a == "--zone")
      o.zone = v;
    else if (a == "--port")
      o.port = static_cast<int>(number(v, 0, 65535, "--port"));
    else if (a == "--address")
      o.address = v;
    else if (a == "--workers")
      o.workers = number(v, 1, 1024, "--workers");
    else if (a == "--config")
      o.config = v;
    else if (a == "--stats")
      o.stats = v;
    else
      usage_error("unknown option: ", argv[i - 1]);
  }
  if (o.zone.empty())
    usage_error("--zone FILE is required");
  return o;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "mayfly-dns: %s\n", what.c_str());
  std::exit(1);
}

} // namespace

int main(int argc, char** argv) {
  // First thing: every thread created from here on inherits the blocked
  // SIGINT/SIGTERM, so that runtime::run() receives them.
  mayfly::block_termination_signals();
  auto opts = parse_args(argc, argv);

  // The zone: parsed once, immutable from here on, shared by all handlers.
  auto loaded = dns::load_zone_file(opts.zone);
  if (!loaded.ok)
    fail(loaded.message);
  const dns::zone& zone = loaded.value;

  mayfly::runtime_config rt_cfg;
  mayfly::endpoint_config ep_cfg;
  if (!opts.config.empty()) {
    auto doc = mayfly::read_config_file(opts.config);
    if (!doc)
      fail(doc.error().message());
    auto rc = mayfly::parse_runtime_config(*doc);
    if (!rc)
      fail(opts.config + ": " + rc.error().message());
    rt_cfg = *rc;
    auto ec = mayfly::parse_endpoint_config(*doc);
    if (!ec)
      fail(opts.config + ": " + ec.error().message());
    ep_cfg = *ec;
  }
  if (opts.workers > 0)
    rt_cfg.workers = static_cast<uint32_t>(opts.workers);
  auto addr = mayfly::udp_address::parse(opts.address, opts.port);
  if (!addr)
    fail("--address " + opts.address + ": " + addr.error().message());
  ep_cfg.address = *addr;

  auto made = mayfly::runtime::make(rt_cfg);
  if (!made)
    fail(made.error().message());
  auto& rt = **made;

  // Handlers count here; run() stops them all before it returns, so the
  // counters (and the zone) are no longer used when they are destroyed.
  dns::service_stats stats;
  auto& handler = rt.add_handler("dns", dns::make_handler(&zone, &stats));
  auto stats_reg = rt.stats().add("/dns", [&stats] { return stats.to_json(); });

  auto ep = mayfly::udp_endpoint::open(rt, handler, ep_cfg);
  if (!ep)
    fail("cannot listen on " + ep_cfg.address.to_string() + ": "
         + ep.error().message());

  if (!opts.stats.empty()) {
#if MAYFLY_DNS_HAVE_STATS_ENDPOINT
    auto stats_addr = mayfly::udp_address::parse(opts.stats);
    if (!stats_addr)
      fail("--stats " + opts.stats + ": " + stats_addr.error().message());
    auto se = mayfly::stats_endpoint::open(rt, *stats_addr);
    if (!se)
      fail("cannot serve statistics on " + opts.stats + ": "
           + se.error().message());
    std::printf("mayfly-dns: statistics on http://%s/stats\n",
                (*se)->local_address().to_string().c_str());
#else
    std::fprintf(stderr,
                 "mayfly-dns: stats endpoint not available in this build\n");
#endif
  }

  char apex[4 * dns::kMaxName + 2];
  size_t apex_len = dns::to_text(zone.apex(), apex, sizeof(apex));
  std::printf("mayfly-dns: zone %.*s (%zu records) on udp %s; "
              "Ctrl-C to stop\n",
              static_cast<int>(apex_len), apex, zone.record_count(),
              (*ep)->local_address().to_string().c_str());
  std::fflush(stdout);

  rt.run(); // until SIGINT/SIGTERM; stops the runtime gracefully

  std::printf("mayfly-dns: stopped\n%s", stats.summary().c_str());
  std::printf(
    "handler failures: %lld  rejected (overload): %lld\n",
    static_cast<long long>(handler.count(mayfly::handler_type::failed)),
    static_cast<long long>(handler.count(mayfly::handler_type::rejected)));
  auto balance = rt.balance();
  if (!balance.zero())
    std::fprintf(stderr, "mayfly-dns: resources still out: %s\n",
                 balance.to_json().dump().c_str());
  return 0;
}

#include "examples/dns/service.hpp"

#include <cstdio>

namespace dns {

namespace {

service_stats::counter rcode_counter(rcode rc) noexcept {
  switch (rc) {
    case rcode::noerror:
      return service_stats::rc_noerror;
    case rcode::formerr:
      return service_stats::rc_formerr;
    case rcode::servfail:
      return service_stats::rc_servfail;
    case rcode::nxdomain:
      return service_stats::rc_nxdomain;
    case rcode::notimp:
      return service_stats::rc_notimp;
    case rcode::refused:
      return service_stats::rc_refused;
    case rcode::badvers:
      return service_stats::rc_badvers;
  }
  return service_stats::rc_servfail;
}

constexpr rcode kRcodes[] = {rcode::noerror,  rcode::formerr, rcode::servfail,
                             rcode::nxdomain, rcode::notimp,  rcode::refused,
                             rcode::badvers};

} // namespace

void service_stats::record(const outcome& out, bool reply_accepted) noexcept {
  counters_.add(queries);
  switch (out.what) {
    case outcome::kind::dropped_short:
      counters_.add(dropped_short);
      return;
    case outcome::kind::dropped_qr:
      counters_.add(dropped_qr);
      return;
    case outcome::kind::no_memory:
      counters_.add(no_memory);
      return;
    case outcome::kind::answered:
      break;
  }
  counters_.add(rcode_counter(out.code));
  if (out.truncated)
    counters_.add(truncated);
  counters_.add(reply_accepted ? replies : reply_failures);
}

nlohmann::json service_stats::to_json() const {
  nlohmann::json rcodes = nlohmann::json::object();
  for (auto rc : kRcodes)
    rcodes[to_string(rc)] = count(rcode_counter(rc));
  return {{"queries", count(queries)},
          {"replies", count(replies)},
          {"reply_failures", count(reply_failures)},
          {"truncated", count(truncated)},
          {"dropped_short", count(dropped_short)},
          {"dropped_qr", count(dropped_qr)},
          {"no_memory", count(no_memory)},
          {"rcodes", std::move(rcodes)}};
}

std::string service_stats::summary() const {
  std::string s;
  char line[256];
  std::snprintf(line, sizeof(line),
                "queries: %lld  replies: %lld  truncated: %lld\n",
                static_cast<long long>(count(queries)),
                static_cast<long long>(count(replies)),
                static_cast<long long>(count(truncated)));
  s += line;
  s += "answers by rcode:";
  for (auto rc : kRcodes) {
    std::snprintf(line, sizeof(line), " %s %lld", to_string(rc),
                  static_cast<long long>(count(rcode_counter(rc))));
    s += line;
  }
  s += '\n';
  std::snprintf(line, sizeof(line),
                "not answered: %lld too short, %lld responses (QR=1), "
                "%lld out of arena memory; replies refused by the "
                "endpoint: %lld\n",
                static_cast<long long>(count(dropped_short)),
                static_cast<long long>(count(dropped_qr)),
                static_cast<long long>(count(no_memory)),
                static_cast<long long>(count(reply_failures)));
  s += line;
  return s;
}

mayfly::handler_fn make_handler(const zone* z, service_stats* stats) {
  return [z, stats](mayfly::handler_context& ctx, const mayfly::datagram& d) {
    outcome out;
    auto reply = respond(*z, d.payload.view(), ctx.arena(), out);
    bool accepted = reply.empty() || ctx.reply(reply);
    stats->record(out, accepted);
  };
}

} // namespace dns

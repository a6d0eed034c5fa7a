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
  if (count(reloads) + count(reload_failures) > 0) {
    std::snprintf(line, sizeof(line),
                  "zone reloads: %lld, failed (old zone kept): %lld\n",
                  static_cast<long long>(count(reloads)),
                  static_cast<long long>(count(reload_failures)));
    s += line;
  }
  return s;
}

uint32_t serial_of(const zone& z) noexcept {
  const auto& fixed = z.soa().fixed;
  return fixed.size() == 20
           ? get32(reinterpret_cast<const unsigned char*>(fixed.data()))
           : 0;
}

namespace {

std::string apex_text(const zone& z) {
  char buf[4 * kMaxName + 2];
  return std::string(buf, to_text(z.apex(), buf, sizeof(buf)));
}

} // namespace

service::service(zone z, std::string zone_file)
  : zone_file_(std::move(zone_file)),
    zone_(std::make_shared<const zone>(std::move(z))) {
}

mayfly::handler_fn service::make_handler() {
  return [this](mayfly::handler_context& ctx, const mayfly::datagram& d) {
    // This query's own reference: a reload meanwhile does not free it.
    std::shared_ptr<const zone> z = current();
    outcome out;
    auto reply = respond(*z, d.payload.view(), ctx.arena(), out);
    bool accepted = reply.empty() || ctx.reply(reply);
    stats_.record(out, accepted);
  };
}

reload_result service::reload() noexcept {
  reload_result r;
  try {
    std::lock_guard<std::mutex> guard{reload_mtx_};
    auto old = current();
    if (zone_file_.empty()) {
      r.message = "no zone file to reload from";
    } else {
      auto loaded = load_zone_file(zone_file_);
      if (loaded.ok) {
        auto fresh = std::make_shared<const zone>(std::move(loaded.value));
        r.ok = true;
        r.message = "zone " + apex_text(*fresh) + " reloaded from " + zone_file_
                    + ": serial " + std::to_string(serial_of(*fresh)) + ", "
                    + std::to_string(fresh->record_count()) + " records";
        zone_.store(std::move(fresh), std::memory_order_release);
        std::lock_guard<std::mutex> error_guard{error_mtx_};
        last_error_.clear();
      } else {
        r.message = loaded.message;
      }
    }
    if (!r.ok) {
      r.message += "; still serving zone " + apex_text(*old) + " serial "
                   + std::to_string(serial_of(*old));
      std::lock_guard<std::mutex> error_guard{error_mtx_};
      last_error_ = r.message;
    }
  } catch (...) {
    r.ok = false;
    r.message = "out of memory while reloading the zone";
  }
  stats_.record_reload(r.ok);
  std::fprintf(stderr, "mayfly-dns: %s%s\n",
               r.ok ? "" : "zone reload failed: ", r.message.c_str());
  return r;
}

nlohmann::json service::to_json() const {
  auto j = stats_.to_json();
  auto z = current();
  std::string last_error;
  {
    std::lock_guard<std::mutex> guard{error_mtx_};
    last_error = last_error_;
  }
  j["zone"]
    = {{"apex", apex_text(*z)},
       {"serial", serial_of(*z)},
       {"records", z->record_count()},
       {"file", zone_file_},
       {"reloads", stats_.count(service_stats::reloads)},
       {"reload_failures", stats_.count(service_stats::reload_failures)},
       {"last_reload_error", last_error}};
  return j;
}

namespace {

using mayfly::metric_info;
using enum mayfly::metric_kind;

constexpr metric_info kDnsMetrics[] = {
  {"queries", counter, "", "datagrams handled"},
  {"replies", counter, "", "replies handed to the endpoint"},
  {"reply_failures", counter, "",
   "replies the endpoint refused (queue full, ...)"},
  {"truncated", counter, "", "replies with TC set"},
  {"dropped_short", counter, "", "datagrams shorter than a header: no reply"},
  {"dropped_qr", counter, "", "responses (QR=1) received: no reply"},
  {"no_memory", counter, "", "the handler's arena refused: no reply"},
  {"rcodes.{rcode}", counter, "", "replies by response code"},
  {"zone.apex", text, "", "the zone's apex"},
  {"zone.serial", gauge, "", "the SOA serial of the zone served now"},
  {"zone.records", gauge, "", "records in the zone served now"},
  {"zone.file", text, "", "the zone file"},
  {"zone.reloads", counter, "", "zone reloads that swapped the zone"},
  {"zone.reload_failures", counter, "",
   "reloads that kept the old zone"},
  {"zone.last_reload_error", text, "", "why the last reload failed, or \"\""},
};

} // namespace

const mayfly::metric_section dns_metrics{"dns", "/dns", kDnsMetrics};

} // namespace dns

// libFuzzer target: the DNS example's master-file parser on arbitrary text.
//
// parse_zone must never crash, throw or hang, and must return either an
// error with a message or a zone whose invariants hold: nodes sorted by
// unique lowercase keys, all at or below the apex, the apex node holding
// the SOA, no CNAME beside other data. For a valid zone, queries for its
// first names must get well-formed responses.
//
//   build/fuzz/tests/zone_fuzz -dict=tests/fuzz/zone_fuzz.dict \
//     -max_total_time=60 NEW_DIR tests/fuzz/corpus/zone_fuzz

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "examples/dns/message.hpp"
#include "examples/dns/responder.hpp"
#include "examples/dns/zone.hpp"
#include <mayfly/runtime/arena.hpp>

namespace {

void check(bool ok) {
  if (!ok)
    __builtin_trap();
}

mayfly::arena_pool& pool() {
  static auto p = [] {
    mayfly::arena_pool_config cfg;
    cfg.capacity = 8;
    cfg.huge_pages = false;
    cfg.prefault = false;
    auto made = mayfly::arena_pool::make(cfg);
    if (!made)
      std::abort();
    return std::move(*made);
  }();
  return *p;
}

// A query for `name` (wire) and `qtype`, written by hand: the name may hold
// any bytes the zone allowed.
std::string query_for(std::string_view name, uint16_t qtype) {
  std::string q(12, '\0');
  q[5] = 1; // QDCOUNT
  q.append(name);
  q.push_back(static_cast<char>(qtype >> 8));
  q.push_back(static_cast<char>(qtype & 0xFF));
  q.push_back(0);
  q.push_back(1);
  return q;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 256 * 1024)
    return 0;
  std::string_view text{reinterpret_cast<const char*>(data), size};
  auto r = dns::parse_zone(text);
  if (!r.ok) {
    check(!r.message.empty() && r.line >= 0);
    check(r.value.nodes().empty());
    return 0;
  }
  const auto& z = r.value;
  check(r.message.empty());
  const dns::node* apex = z.find(z.apex_key());
  check(apex != nullptr);
  check(z.soa().type == dns::type::soa);
  std::string_view prev;
  for (size_t i = 0; i < z.nodes().size(); ++i) {
    const auto& n = z.nodes()[i];
    check(i == 0 || prev < std::string_view{n.key});
    prev = n.key;
    check(n.key.size() == n.owner.size() && n.key.size() <= dns::kMaxName);
    check(dns::names_equal(n.key, n.owner));
    check(dns::is_at_or_below(n.key, z.apex_key()));
    check(n.cname() == nullptr || n.records.size() == 1);
    check(z.find(n.key) == &n);
    check(z.lookup(n.key).nd == &n && !z.lookup(n.key).synthesized);
  }
  // Answer a few queries against it.
  mayfly::arena arena{pool()};
  size_t asked = 0;
  for (const auto& n : z.nodes()) {
    if (++asked > 8)
      break;
    for (uint16_t t : {dns::type::a, dns::type::txt, dns::type::any}) {
      arena.reset();
      auto q = query_for(n.owner, t);
      dns::outcome out;
      auto reply = dns::respond(z, q, arena, out);
      check(!reply.empty());
      check(dns::check_message(reply) == dns::wire_error::none);
      check(out.code == dns::rcode::noerror
            || out.code == dns::rcode::nxdomain); // after a CNAME
      check(out.authoritative);
    }
    // A name below it that the zone may not hold: a wildcard may
    // synthesize it (RFC 4592), else NXDOMAIN.
    if (n.owner.size() + 3 > dns::kMaxName)
      continue;
    arena.reset();
    auto q = query_for(std::string("\2zz", 3) + n.owner, dns::type::a);
    dns::outcome out;
    auto reply = dns::respond(z, q, arena, out);
    check(!reply.empty());
    check(dns::check_message(reply) == dns::wire_error::none);
    check(out.code == dns::rcode::noerror || out.code == dns::rcode::nxdomain);
  }
  return 0;
}

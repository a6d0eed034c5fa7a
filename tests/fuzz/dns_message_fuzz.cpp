// libFuzzer target: the DNS example's message parser and responder on
// arbitrary bytes, against a small fixed zone.
//
// Every input is parsed as a query (parse_query), checked as a message
// (check_message) and answered (respond), all in one arena, as a handler
// would. Invariants, checked with __builtin_trap so that the fuzzer reports
// them: no reply below 12 bytes; every reply parses back (check_message),
// echoes the ID, has QR set, and stays within the smaller of 1232 bytes and
// the query's EDNS size (512 without a valid OPT record in the query).
//
//   cmake --preset fuzz && cmake --build build/fuzz --target dns_message_fuzz
//   build/fuzz/tests/dns_message_fuzz -max_total_time=60 NEW_DIR \
//     tests/fuzz/corpus/dns_message_fuzz

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "examples/dns/message.hpp"
#include "examples/dns/responder.hpp"
#include "examples/dns/zone.hpp"
#include <mayfly/runtime/arena.hpp>

namespace {

constexpr const char* kZone = R"(
$ORIGIN example.test.
$TTL 3600
@       IN SOA ns1 hostmaster 2024 7200 900 1209600 300
        NS  ns1
        NS  ns2.example.test.
        MX  10 mail
        TXT "v=spf1 -all"
ns1     A   192.0.2.1
ns2     A   192.0.2.2
www     A   192.0.2.80
        A   192.0.2.81
        AAAA 2001:db8::80
mail    A   192.0.2.25
alias   CNAME web
web     CNAME www
ext     CNAME www.example.org.
dangling CNAME nowhere
loop1   CNAME loop2
loop2   CNAME loop1
a.b.deep A  192.0.2.100
*.w     A   192.0.2.9
*.c     CNAME www
x.*.w   TXT "not a wildcard"
big     TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
        TXT "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
        TXT "ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJ"
)";

struct env {
  dns::zone zone;
  std::unique_ptr<mayfly::arena_pool> pool;

  env() {
    auto r = dns::parse_zone(kZone);
    if (!r.ok)
      std::abort();
    zone = std::move(r.value);
    mayfly::arena_pool_config cfg;
    cfg.capacity = 8;
    cfg.huge_pages = false;
    cfg.prefault = false;
    auto p = mayfly::arena_pool::make(cfg);
    if (!p)
      std::abort();
    pool = std::move(*p);
  }
};

env& get_env() {
  static env e;
  return e;
}

void check(bool ok) {
  if (!ok)
    __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& e = get_env();
  std::string_view msg{reinterpret_cast<const char*>(data), size};
  mayfly::arena arena{*e.pool};
  check(arena.leased());

  dns::query q;
  auto status = dns::parse_query(msg, arena, q);
  check(status != dns::parse_status::no_memory);
  if (status == dns::parse_status::ok) {
    check(q.qname.size() <= dns::kMaxName
          && q.qname.size() == q.qname_key.size());
  }
  (void) dns::check_message(msg);

  dns::outcome out;
  auto reply = dns::respond(e.zone, msg, arena, out);
  if (size < dns::kHeaderSize) {
    check(reply.empty() && out.what == dns::outcome::kind::dropped_short);
    return 0;
  }
  if (reply.empty()) {
    check(out.what == dns::outcome::kind::dropped_qr);
    return 0;
  }
  check(dns::check_message(reply) == dns::wire_error::none);
  check(reply.size() <= dns::kAdvertisedUdpSize);
  bool edns = status == dns::parse_status::ok && q.edns;
  check(edns || reply.size() <= dns::kClassicUdpSize);
  check(!edns || reply.size() <= dns::kClassicUdpSize
        || reply.size() <= q.udp_size);
  check(reply[0] == msg[0] && reply[1] == msg[1]);
  dns::header h;
  check(dns::read_header(reply, h));
  check((h.flags & dns::flag::qr) != 0);
  check(h.qdcount <= 1 && h.ancount == out.answers);
  check(((h.flags & dns::flag::tc) != 0) == out.truncated);
  return 0;
}

// Bad input on the wire against the mayfly-dns service, in-process through
// its library (examples/dns/dns_lib.cmake): a runtime, the service's
// handler, a UDP endpoint and a stats endpoint on 127.0.0.1:0, as
// mayfly-dns runs them. Hostile messages (docs/workloads.md §3: FORMERR
// for malformed queries that still carry a header; examples/dns/responder.hpp:
// shorter than a header or QR=1 gets no reply) are each followed by a valid
// query whose answer is checked; the service's counters (/stats, section
// "dns") must account for every datagram; nothing is outstanding at the end.

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "examples/dns/message.hpp"
#include "examples/dns/service.hpp"
#include "examples/dns/zone.hpp"
#include "tests/support/small_runtime.hpp"
#include "wire_support.hpp"
#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/stats_endpoint.hpp>
#include <mayfly/net/udp_endpoint.hpp>

namespace {

using namespace wire;

// A 12-byte header.
std::string header(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an = 0,
                   uint16_t ns = 0, uint16_t ar = 0) {
  std::string h;
  for (uint16_t v : {id, flags, qd, an, ns, ar}) {
    h += static_cast<char>(v >> 8);
    h += static_cast<char>(v & 0xFF);
  }
  return h;
}

// "www.example.test" in wire form, without compression.
const std::string kWww = std::string("\3www\7example\4test\0", 18);
// QTYPE A, QCLASS IN.
const std::string kTypeA = std::string("\0\1\0\1", 4);

uint16_t id_of(const std::string& m) {
  return static_cast<uint16_t>((static_cast<unsigned char>(m[0]) << 8)
                               | static_cast<unsigned char>(m[1]));
}

uint16_t flags_of(const std::string& m) {
  return static_cast<uint16_t>((static_cast<unsigned char>(m[2]) << 8)
                               | static_cast<unsigned char>(m[3]));
}

uint16_t ancount_of(const std::string& m) {
  return static_cast<uint16_t>((static_cast<unsigned char>(m[6]) << 8)
                               | static_cast<unsigned char>(m[7]));
}

class DnsWire : public ::testing::Test {
protected:
  void SetUp() override {
    auto z = dns::load_zone_file(MAYFLY_SOURCE_DIR
                                 "/examples/dns/example.zone");
    ASSERT_TRUE(z.ok) << z.message;
    svc_ = std::make_unique<dns::service>(std::move(z.value));
    auto made = mayfly::runtime::make(mayfly::test::small_runtime_config());
    ASSERT_TRUE(made) << made.error().message();
    rt_ = std::move(*made);
    auto& h = rt_->add_handler("dns", svc_->make_handler());
    reg_ = rt_->stats().add("/dns", [this] { return svc_->to_json(); });
    rt_->start();
    mayfly::endpoint_config ec;
    ec.address = *mayfly::udp_address::parse("127.0.0.1:0");
    auto ep = mayfly::udp_endpoint::open(*rt_, h, ec);
    ASSERT_TRUE(ep) << ep.error().message();
    udp_ = (*ep)->local_address();
    auto se = mayfly::stats_endpoint::open(
      *rt_, *mayfly::udp_address::parse("127.0.0.1:0"));
    ASSERT_TRUE(se) << se.error().message();
    http_ = (*se)->local_address();
    client_ = std::make_unique<client>(udp_);
  }

  void TearDown() override {
    client_.reset();
    if (!rt_)
      return;
    auto s = wait_quiet(http_);
    EXPECT_TRUE(quiet(s)) << s.dump();
    EXPECT_EQ(s["handlers"]["dns"]["failed"], 0) << s.dump();
    rt_->stop();
    EXPECT_TRUE(rt_->balance().zero()) << rt_->balance().to_json().dump();
    reg_.reset();
    rt_.reset();
    EXPECT_EQ(mayfly::slice::live_count(), 0);
  }

  // A valid query; its answer must be the zone's (two A records, AA).
  // Replies with another ID that arrive first (late answers to earlier
  // datagrams) are skipped and counted in `late_`.
  void valid() {
    uint16_t id = next_id_++;
    unsigned char buf[512];
    size_t n = dns::write_query(buf, sizeof(buf), "www.example.test", 1 /* A */,
                                id);
    ASSERT_GT(n, 0u);
    ASSERT_TRUE(client_->send({reinterpret_cast<char*>(buf), n}));
    auto r = client_->receive();
    for (int i = 0; i < 8 && r && r->size() >= 12 && id_of(*r) != id; ++i) {
      ++late_;
      r = client_->receive();
    }
    ASSERT_TRUE(r) << "no answer to valid query " << id;
    ASSERT_GE(r->size(), 12u);
    EXPECT_EQ(id_of(*r), id);
    EXPECT_EQ(flags_of(*r) & 0x800F, 0x8000) << "QR, NOERROR";
    EXPECT_NE(flags_of(*r) & dns::flag::aa, 0);
    EXPECT_EQ(ancount_of(*r), 2);
    ++sent_;
  }

  // A malformed query that still carries a header: FORMERR echoing its ID.
  void formerr(const std::string& msg, const char* what) {
    expect_rcode(msg, 1, what);
    ++formerr_;
  }

  void expect_rcode(const std::string& msg, uint16_t rcode, const char* what) {
    ASSERT_TRUE(client_->send(msg)) << what;
    auto r = client_->receive();
    ASSERT_TRUE(r) << "no reply to " << what;
    ASSERT_GE(r->size(), 12u) << what;
    EXPECT_EQ(id_of(*r), id_of(msg)) << what;
    EXPECT_NE(flags_of(*r) & dns::flag::qr, 0) << what;
    EXPECT_EQ(flags_of(*r) & 0xF, rcode) << what;
    ++sent_;
  }

  // A datagram that must get no reply.
  void dropped(const std::string& msg, const char* what) {
    ASSERT_TRUE(client_->send(msg)) << what;
    auto r = client_->receive_within(300);
    EXPECT_FALSE(r) << what << " got a reply";
    ++sent_;
  }

  // The "dns" section once it counted `queries` datagrams (bounded wait:
  // the reply reaches us before the handler counts it).
  json dns_stats(int64_t queries) {
    json s;
    for (int i = 0; i < 100; ++i) {
      s = get_stats(http_);
      if (!s.is_discarded() && s["dns"]["queries"] == queries)
        break;
      std::this_thread::sleep_for(20ms);
    }
    return s.is_discarded() ? json::object() : s["dns"];
  }

  std::unique_ptr<dns::service> svc_;
  std::unique_ptr<mayfly::runtime> rt_;
  mayfly::stats_registry::registration reg_;
  mayfly::udp_address udp_;
  mayfly::udp_address http_;
  std::unique_ptr<client> client_;
  uint16_t next_id_ = 0x4000;
  int64_t sent_ = 0;
  int64_t formerr_ = 0;
  int64_t late_ = 0;
};

TEST_F(DnsWire, HostileMessagesAmongValidQueries) {
  valid();
  // Shorter than a header: no reply.
  dropped("", "the empty datagram");
  valid();
  dropped("\x12", "1 byte");
  valid();
  dropped(header(0x1111, 0x0100, 1).substr(0, 11), "a truncated header");
  valid();
  // A header and nothing else, though it announces a question.
  formerr(header(0x2001, 0x0100, 1), "QDCOUNT 1 without a question");
  valid();
  formerr(header(0x2002, 0x0100, 0), "QDCOUNT 0");
  valid();
  formerr(header(0x2003, 0x0100, 2) + kWww + kTypeA + kWww + kTypeA,
          "QDCOUNT 2");
  valid();
  // Counts that exceed the packet.
  formerr(header(0x2004, 0x0100, 1, 5) + kWww + kTypeA,
          "ANCOUNT 5, no answers in the packet");
  valid();
  formerr(header(0x2005, 0x0100, 1, 0, 0, 65535) + kWww + kTypeA,
          "ARCOUNT 65535");
  valid();
  formerr(header(0x2006, 0x0100, 1) + kWww + std::string("\0", 1),
          "a question cut inside QTYPE");
  valid();
  formerr(header(0x2007, 0x0100, 1) + std::string("\3www\7exa", 8),
          "a question cut inside a label");
  valid();
  // Compression pointers: to itself, into its own label sequence, forward.
  formerr(header(0x2008, 0x0100, 1) + std::string("\xC0\x0C", 2) + kTypeA,
          "a pointer to itself");
  valid();
  formerr(header(0x2009, 0x0100, 1) + std::string("\3abc\xC0\x0C", 6) + kTypeA,
          "a pointer loop through its own label");
  valid();
  formerr(header(0x200A, 0x0100, 1) + std::string("\xC0\x20", 2) + kTypeA
            + std::string(20, '\0'),
          "a forward pointer");
  valid();
  // Labels: 64 and the reserved types; a name longer than 255 bytes.
  formerr(header(0x200B, 0x0100, 1) + std::string(1, '\x40')
            + std::string(64, 'a') + std::string("\0", 1) + kTypeA,
          "a 64-byte label");
  valid();
  formerr(header(0x200C, 0x0100, 1) + std::string("\x80\x01", 2) + kTypeA,
          "a reserved label type (0x80)");
  valid();
  std::string long_name;
  for (int i = 0; i < 5; ++i)
    long_name += std::string(1, '\x3F') + std::string(63, 'l');
  formerr(header(0x200D, 0x0100, 1) + long_name + std::string("\0", 1) + kTypeA,
          "a 320-byte name");
  valid();
  // The largest UDP payload: a valid question, then 65000+ bytes of junk.
  auto huge = header(0x200E, 0x0100, 1) + kWww + kTypeA;
  huge += random_bytes(65507 - huge.size(), 7);
  formerr(huge, "65507 bytes: trailing bytes after the question");
  valid();
  // Random bytes behind a query header announcing 0x1234 questions.
  formerr(header(0x200F, 0x0100, 0x1234) + random_bytes(300, 8),
          "random bytes, QDCOUNT 0x1234");
  valid();
  // Valid-looking but wrong: a response (QR=1) gets no reply at all, so
  // that two servers can never ping-pong; another opcode is NOTIMP.
  dropped(header(0x3001, 0x8100, 1) + kWww + kTypeA, "a response (QR=1)");
  valid();
  expect_rcode(header(0x3002, 0x1100, 1) + kWww + kTypeA, 4,
               "OPCODE 2 (STATUS)");
  valid();
  ASSERT_FALSE(client_->receive_within(200)) << "a stray reply";
  EXPECT_EQ(late_, 0) << "replies to datagrams that must get none";

  auto d = dns_stats(sent_);
  EXPECT_EQ(d["queries"], sent_) << d.dump();
  EXPECT_EQ(d["dropped_short"], 3) << d.dump();
  EXPECT_EQ(d["dropped_qr"], 1) << d.dump();
  EXPECT_EQ(d["rcodes"]["FORMERR"], formerr_) << d.dump();
  EXPECT_EQ(d["rcodes"]["NOTIMP"], 1) << d.dump();
  EXPECT_EQ(d["no_memory"], 0) << d.dump();
  EXPECT_EQ(d["replies"], sent_ - 4) << d.dump();
}

// Random bytes: a reply, if any, echoes the ID and is a response; the
// valid queries between them are answered; every datagram is counted.
TEST_F(DnsWire, RandomBytesNeverAffectValidQueries) {
  int64_t answered = 0;
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    auto junk = random_bytes(1 + seed * 97 % 1500, 1000 + seed);
    ASSERT_TRUE(client_->send(junk));
    ++sent_;
    if (auto r = client_->receive_within(300)) {
      ASSERT_GE(r->size(), 12u);
      ASSERT_GE(junk.size(), 12u) << "a reply to fewer than 12 bytes";
      EXPECT_EQ(id_of(*r), id_of(junk));
      EXPECT_NE(flags_of(*r) & dns::flag::qr, 0);
      EXPECT_EQ(flags_of(junk) & dns::flag::qr, 0) << "a reply to a response";
      ++answered;
    }
    valid();
  }
  for (int i = 0; i < 60 && client_->receive_within(300); ++i)
    ++late_; // at most one reply per junk datagram
  auto d = dns_stats(sent_);
  EXPECT_EQ(d["queries"], sent_) << d.dump();
  EXPECT_EQ(d["replies"], 60 + answered + late_) << d.dump();
  EXPECT_EQ(d["rcodes"]["NOERROR"].get<int64_t>(), 60) << d.dump();
}

// What an operator hits (issue 18 item 6), as bytes on the wire: types the
// zone cannot hold get NODATA/NXDOMAIN (not NOTIMP), wildcards synthesize,
// and no reply exceeds the smaller of the client's EDNS size and ours.
TEST_F(DnsWire, UnknownTypesWildcardsAndTheSizeCapOnTheWire) {
  auto ask = [&](const char* name, uint16_t qtype, uint16_t edns) {
    unsigned char buf[512];
    uint16_t id = next_id_++;
    size_t n = dns::write_query(buf, sizeof(buf), name, qtype, id,
                                dns::flag::rd, edns);
    std::string reply;
    EXPECT_GT(n, 0u);
    EXPECT_TRUE(client_->send({reinterpret_cast<char*>(buf), n}));
    ++sent_;
    auto r = client_->receive();
    EXPECT_TRUE(r) << name;
    if (r) {
      EXPECT_EQ(dns::check_message(*r), dns::wire_error::none) << name;
      EXPECT_EQ(id_of(*r), id) << name;
      reply = *r;
    }
    return reply;
  };
  auto rcode = [](const std::string& r) { return flags_of(r) & 0xF; };
  auto nscount = [](const std::string& r) {
    return (static_cast<unsigned char>(r[8]) << 8)
           | static_cast<unsigned char>(r[9]);
  };
  for (uint16_t t : {uint16_t{257}, uint16_t{33}, uint16_t{43}, uint16_t{65},
                     uint16_t{999}, uint16_t{65280}}) {
    auto r = ask("www.example.test", t, 0);
    ASSERT_GE(r.size(), 12u);
    EXPECT_EQ(rcode(r), 0) << t;
    EXPECT_EQ(ancount_of(r), 0) << t;
    EXPECT_EQ(nscount(r), 1) << t; // the SOA
    r = ask("nope.example.test", t, 1232);
    ASSERT_GE(r.size(), 12u);
    EXPECT_EQ(rcode(r), 3) << t;
    EXPECT_EQ(nscount(r), 1) << t;
  }
  auto r = ask("some.name.wild.example.test", 1, 0);
  ASSERT_GE(r.size(), 12u);
  EXPECT_EQ(rcode(r), 0);
  EXPECT_EQ(ancount_of(r), 1);
  EXPECT_NE(flags_of(r) & dns::flag::aa, 0);
  EXPECT_NE(r.find(std::string("\xC0\x0C\0\1\0\1", 6)), std::string::npos)
    << "the A record is owned by the question's name (pointer to 12)";
  for (uint16_t offered :
       {uint16_t{0}, uint16_t{1232}, uint16_t{4096}, uint16_t{65535}}) {
    r = ask("big.example.test", 16 /* TXT */, offered);
    ASSERT_GE(r.size(), 12u);
    EXPECT_LE(r.size(), offered == 0 ? 512u : 1232u) << offered;
    EXPECT_NE(flags_of(r) & dns::flag::tc, 0) << offered;
  }
  auto d = dns_stats(sent_);
  EXPECT_EQ(d["queries"], sent_) << d.dump();
  EXPECT_EQ(d["rcodes"]["NOTIMP"], 0) << d.dump();
  EXPECT_EQ(d["truncated"], 4) << d.dump();
}

// mayfly-dns itself with a zone it cannot load (issue 18: `--zone DIR`
// said "no SOA record"): exit status 2 and one line naming the path and the
// reason. Bounded: `--exit-after 5` in case it started serving after all.
TEST(DnsProgram, BadZoneAtStartExitsTwoNamingPathAndReason) {
  std::string bad = ::testing::TempDir() + "mayfly_dns_bad_"
                    + std::to_string(::getpid()) + ".zone";
  {
    FILE* f = std::fopen(bad.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("$ORIGIN bad.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n"
               "www A 192.0.2.300\n",
               f);
    std::fclose(f);
  }
  const std::pair<std::string, std::string> cases[] = {
    {"/tmp", "mayfly-dns: /tmp: cannot read the zone file: Is a directory"},
    {"/nonexistent/x.zone", "mayfly-dns: /nonexistent/x.zone: cannot open "
                            "the zone file: No such file or directory"},
    {bad, "mayfly-dns: " + bad + ": line 4: bad IPv4 address '192.0.2.300'"},
  };
  for (auto& [path, message] : cases) {
    std::string cmd = std::string{MAYFLY_DNS_BIN} + " --zone '" + path
                      + "' --port 0 --exit-after 5 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
      out.append(buf, n);
    int status = ::pclose(p);
    ASSERT_TRUE(WIFEXITED(status)) << path;
    EXPECT_EQ(WEXITSTATUS(status), 2) << path << ": " << out;
    EXPECT_EQ(out, message + "\n") << path;
  }
  ::unlink(bad.c_str());
}

} // namespace

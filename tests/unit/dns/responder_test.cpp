// The DNS responder: every rcode, AA, CNAME chains and loops, negative
// answers with the SOA, compression actually used on the wire, EDNS and
// truncation. Responses are decoded with the message reader, which also
// checks that they are well-formed.

#include "examples/dns/responder.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "dns_test_util.hpp"
#include "tests/support/alloc_counter.hpp"

namespace {

using namespace dns;
using dns::test::decode;
using dns::test::decoded;
using dns::test::make_query;

constexpr const char* kZone = R"(
$ORIGIN example.test.
$TTL 3600
@       IN SOA ns1 hostmaster 2024 7200 900 1209600 300
        NS  ns1
        MX  10 mail
ns1     A   192.0.2.1
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
self    CNAME self
a.b.deep A  192.0.2.100
)";

class DnsResponder : public ::testing::Test {
protected:
  void SetUp() override {
    auto r = parse_zone(kZone);
    ASSERT_TRUE(r.ok) << r.message;
    zone_ = std::move(r.value);
  }

  void TearDown() override {
    arena_.reset();
    EXPECT_EQ(pool_->blocks_in_use(), 0);
    EXPECT_EQ(pool_->leases_out(), 0);
  }

  // Responds in a fresh arena; keeps the bytes.
  std::string raw(const std::string& msg) {
    arena_->reset();
    auto reply = respond(zone_, msg, *arena_, out_);
    return std::string(reply);
  }

  decoded ask(const std::string& msg) {
    auto bytes = raw(msg);
    EXPECT_FALSE(bytes.empty());
    auto d = decode(bytes);
    EXPECT_TRUE(d.ok) << d.error;
    return d;
  }

  decoded ask(std::string_view name, uint16_t qtype, uint16_t flags = flag::rd,
              uint16_t edns = 0) {
    return ask(make_query(name, qtype, 0x1234, flags, edns));
  }

  std::vector<std::string> answers(const decoded& d) {
    std::vector<std::string> out;
    for (auto& r : d.in(section::answer))
      out.push_back(r.owner + " " + std::to_string(r.type) + " " + r.rdata);
    return out;
  }

  zone zone_;
  std::unique_ptr<mayfly::arena_pool> pool_ = dns::test::make_arena_pool();
  std::unique_ptr<mayfly::arena> arena_
    = std::make_unique<mayfly::arena>(*pool_);
  outcome out_;
};

TEST_F(DnsResponder, AnswersAuthoritatively) {
  auto d = ask("www.example.test", type::a);
  EXPECT_EQ(d.hdr.id, 0x1234);
  EXPECT_TRUE(d.has(flag::qr));
  EXPECT_TRUE(d.has(flag::aa));
  EXPECT_TRUE(d.has(flag::rd)); // copied
  EXPECT_FALSE(d.has(flag::ra));
  EXPECT_FALSE(d.has(flag::tc));
  EXPECT_EQ(d.rcode(), 0);
  EXPECT_EQ(d.hdr.qdcount, 1);
  EXPECT_EQ(answers(d),
            (std::vector<std::string>{"www.example.test. 1 192.0.2.80",
                                      "www.example.test. 1 192.0.2.81"}));
  EXPECT_EQ(d.in(section::answer)[0].ttl, 3600u);
  EXPECT_EQ(d.hdr.nscount, 0);
  EXPECT_EQ(d.hdr.arcount, 0); // no OPT without EDNS
  EXPECT_EQ(out_.what, outcome::kind::answered);
  EXPECT_EQ(out_.code, rcode::noerror);
  EXPECT_TRUE(out_.authoritative);
  EXPECT_EQ(out_.answers, 2);
}

TEST_F(DnsResponder, CopiesRdAndCd) {
  auto d = ask("www.example.test", type::aaaa, 0);
  EXPECT_FALSE(d.has(flag::rd));
  EXPECT_EQ(answers(d),
            (std::vector<std::string>{"www.example.test. 28 2001:db8::80"}));
  d = ask("www.example.test", type::a, flag::rd | flag::cd | flag::ad);
  EXPECT_TRUE(d.has(flag::cd));
  EXPECT_FALSE(d.has(flag::ad));
}

TEST_F(DnsResponder, ApexRecords) {
  auto d = ask("example.test", type::soa);
  ASSERT_EQ(d.in(section::answer).size(), 1u);
  EXPECT_EQ(d.in(section::answer)[0].rdata,
            "ns1.example.test. hostmaster.example.test. 2024 7200 900 "
            "1209600 300");
  d = ask("example.test", type::mx);
  EXPECT_EQ(answers(d), (std::vector<std::string>{
                          "example.test. 15 10 mail.example.test."}));
  // Compression is case-insensitive: the target's suffix points to the
  // question's spelling.
  d = ask("EXAMPLE.TEST", type::ns);
  EXPECT_EQ(answers(d),
            (std::vector<std::string>{"EXAMPLE.TEST. 2 ns1.EXAMPLE.TEST."}));
}

TEST_F(DnsResponder, NxdomainCarriesTheSoa) {
  auto d = ask("nope.example.test", type::a);
  EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::nxdomain));
  EXPECT_TRUE(d.has(flag::aa));
  EXPECT_EQ(d.hdr.ancount, 0);
  auto auth = d.in(section::authority);
  ASSERT_EQ(auth.size(), 1u);
  EXPECT_EQ(auth[0].type, type::soa);
  EXPECT_EQ(auth[0].owner, "example.test.");
  EXPECT_EQ(auth[0].ttl, 300u); // min(SOA TTL 3600, MINIMUM 300)
  // Below a name that exists, too.
  d = ask("x.www.example.test", type::a);
  EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::nxdomain));
}

TEST_F(DnsResponder, NodataCarriesTheSoa) {
  for (auto name :
       {"mail.example.test", "b.deep.example.test", "deep.example.test"}) {
    auto d = ask(name, type::txt);
    EXPECT_EQ(d.rcode(), 0) << name;
    EXPECT_TRUE(d.has(flag::aa)) << name;
    EXPECT_EQ(d.hdr.ancount, 0) << name;
    auto auth = d.in(section::authority);
    ASSERT_EQ(auth.size(), 1u) << name;
    EXPECT_EQ(auth[0].type, type::soa);
  }
}

TEST_F(DnsResponder, RefusesNamesOutsideTheZone) {
  for (auto name :
       {"www.example.org", "test", ".", "xexample.test", "example.test.evil"}) {
    auto d = ask(name, type::a);
    EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::refused)) << name;
    EXPECT_FALSE(d.has(flag::aa)) << name;
    EXPECT_EQ(d.hdr.ancount + d.hdr.nscount, 0) << name;
    EXPECT_EQ(d.hdr.qdcount, 1) << name;
  }
  // Class CH (version.bind-style queries).
  auto q = make_query("example.test", type::txt);
  q[q.size() - 1] = 3; // QCLASS = CH
  auto d = ask(q);
  EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::refused));
}

TEST_F(DnsResponder, FormerrEchoesTheId) {
  // QDCOUNT 0: header only.
  std::string h0("\xAB\xCD\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", 12);
  auto d = ask(h0);
  EXPECT_EQ(d.hdr.id, 0xABCD);
  EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::formerr));
  EXPECT_TRUE(d.has(flag::qr));
  EXPECT_TRUE(d.has(flag::rd));
  EXPECT_FALSE(d.has(flag::aa));
  EXPECT_EQ(d.hdr.qdcount, 0);
  // QDCOUNT 2.
  auto q = make_query("www.example.test", type::a, 0x0101);
  q[5] = 2;
  d = ask(q);
  EXPECT_EQ(d.hdr.id, 0x0101);
  EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::formerr));
  // A pointer loop in the question.
  std::string loop = h0 + "\xC0\x0C" + std::string("\x00\x01\x00\x01", 4);
  loop[5] = 1;
  d = ask(loop);
  EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::formerr));
  EXPECT_EQ(d.hdr.qdcount, 0);
  // Trailing garbage after a good question: FORMERR with the question.
  d = ask(make_query("www.example.test", type::a, 0x0202) + "junk");
  EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::formerr));
  EXPECT_EQ(d.hdr.qdcount, 1);
  EXPECT_EQ(d.hdr.arcount, 0); // no OPT in a FORMERR
  EXPECT_EQ(out_.code, rcode::formerr);
}

TEST_F(DnsResponder, NoReplyBelowTwelveBytesOrToResponses) {
  auto q = make_query("www.example.test", type::a);
  for (size_t n : {0, 1, 5, 11}) {
    EXPECT_TRUE(raw(q.substr(0, n)).empty()) << n;
    EXPECT_EQ(out_.what, outcome::kind::dropped_short);
  }
  auto resp = make_query("www.example.test", type::a, 1, flag::qr);
  EXPECT_TRUE(raw(resp).empty());
  EXPECT_EQ(out_.what, outcome::kind::dropped_qr);
  // Twelve bytes are a header: FORMERR.
  EXPECT_FALSE(raw(q.substr(0, 12)).empty());
}

TEST_F(DnsResponder, NotimpForOtherOpcodes) {
  for (uint16_t opcode : {1, 2, 4, 5, 15}) {
    auto d = ask("www.example.test", type::a,
                 static_cast<uint16_t>(flag::rd | (opcode << 11)));
    EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::notimp)) << opcode;
    EXPECT_EQ(opcode_of(d.hdr.flags), opcode);
    EXPECT_EQ(d.hdr.ancount, 0);
  }
  // Zone transfers and the other meta types (RFC 6895 §3.1) but ANY.
  for (uint16_t t : {type::axfr, type::ixfr, type::maila, type::mailb,
                     type::opt, type::tsig, type::tkey}) {
    auto d = ask("example.test", t);
    EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::notimp)) << t;
    EXPECT_FALSE(d.has(flag::aa)) << t;
  }
}

// RFC 3597: a type the zone cannot hold, known or not, is data like any
// other: NODATA at a name that exists, NXDOMAIN at one that does not, the
// SOA in authority either way; never NOTIMP.
TEST_F(DnsResponder, UnknownTypesGetNodataOrNxdomainNotNotimp) {
  const uint16_t kTypes[] = {257 /* CAA */,
                             33 /* SRV */,
                             43 /* DS */,
                             65 /* HTTPS */,
                             999,
                             65280,
                             128,
                             248,
                             0};
  for (uint16_t t : kTypes) {
    auto d = ask("www.example.test", t);
    EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::noerror)) << t;
    EXPECT_TRUE(d.has(flag::aa)) << t;
    EXPECT_EQ(d.hdr.ancount, 0) << t;
    auto auth = d.in(section::authority);
    ASSERT_EQ(auth.size(), 1u) << t;
    EXPECT_EQ(auth[0].type, type::soa) << t;
    EXPECT_EQ(auth[0].ttl, 300u) << t;

    d = ask("nope.example.test", t);
    EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::nxdomain)) << t;
    EXPECT_TRUE(d.has(flag::aa)) << t;
    ASSERT_EQ(d.in(section::authority).size(), 1u) << t;
    EXPECT_EQ(d.in(section::authority)[0].type, type::soa) << t;

    // A CNAME is followed for them as for A.
    d = ask("alias.example.test", t);
    EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::noerror)) << t;
    EXPECT_EQ(d.hdr.ancount, 2) << t;
    EXPECT_EQ(d.in(section::authority).size(), 1u) << t;
  }
  // Outside the zone it is still REFUSED.
  auto d = ask("www.example.org", 257);
  EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::refused));
}

TEST_F(DnsResponder, FollowsCnameChains) {
  auto d = ask("alias.example.test", type::a);
  EXPECT_EQ(d.rcode(), 0);
  EXPECT_TRUE(d.has(flag::aa));
  EXPECT_EQ(answers(d),
            (std::vector<std::string>{"alias.example.test. 5 web.example.test.",
                                      "web.example.test. 5 www.example.test.",
                                      "www.example.test. 1 192.0.2.80",
                                      "www.example.test. 1 192.0.2.81"}));
  // Asking for the CNAME itself does not follow it.
  d = ask("alias.example.test", type::cname);
  EXPECT_EQ(answers(d), (std::vector<std::string>{
                          "alias.example.test. 5 web.example.test."}));
  // A chain to a type the target does not have: NODATA with the chain.
  d = ask("alias.example.test", type::mx);
  EXPECT_EQ(d.hdr.ancount, 2);
  EXPECT_EQ(d.in(section::authority).size(), 1u);
}

TEST_F(DnsResponder, CnameOutOfZoneOrDangling) {
  auto d = ask("ext.example.test", type::a);
  EXPECT_EQ(d.rcode(), 0);
  EXPECT_EQ(answers(d),
            (std::vector<std::string>{"ext.example.test. 5 www.example.org."}));
  EXPECT_EQ(d.hdr.nscount, 0);
  d = ask("dangling.example.test", type::a);
  EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::nxdomain));
  EXPECT_EQ(d.hdr.ancount, 1);
  EXPECT_EQ(d.in(section::authority).size(), 1u);
}

TEST_F(DnsResponder, CnameLoopsEnd) {
  auto d = ask("loop1.example.test", type::a);
  EXPECT_EQ(d.rcode(), 0);
  EXPECT_EQ(answers(d), (std::vector<std::string>{
                          "loop1.example.test. 5 loop2.example.test.",
                          "loop2.example.test. 5 loop1.example.test."}));
  d = ask("self.example.test", type::a);
  EXPECT_EQ(d.hdr.ancount, 1);
}

TEST_F(DnsResponder, LongChainsStopAtTheLimit) {
  std::string text = "$ORIGIN c.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n";
  for (int i = 0; i < 40; ++i) {
    // Appended piecewise: `"n" + std::to_string(i)` trips GCC 12's bogus
    // -Wrestrict (GCC bug 105651) under -O3 -Werror.
    text.append("n").append(std::to_string(i)).append(" CNAME n");
    text.append(std::to_string(i + 1)).append("\n");
  }
  text += "n40 A 192.0.2.1\n";
  auto r = parse_zone(text);
  ASSERT_TRUE(r.ok) << r.message;
  zone_ = std::move(r.value);
  auto d = ask("n0.c.test", type::a, 0, 4096);
  EXPECT_EQ(d.hdr.ancount, kMaxCnameChain);
  d = ask("n30.c.test", type::a, 0, 4096);
  EXPECT_EQ(d.hdr.ancount, 11); // 10 links and the address
}

TEST_F(DnsResponder, AnyReturnsEveryRecordOfTheName) {
  auto d = ask("example.test", type::any);
  EXPECT_EQ(d.hdr.ancount, 3); // SOA, NS, MX
  d = ask("alias.example.test", type::any);
  EXPECT_EQ(answers(d), (std::vector<std::string>{
                          "alias.example.test. 5 web.example.test."}));
  // QCLASS ANY is served like IN.
  auto q = make_query("www.example.test", type::a);
  q[q.size() - 1] = static_cast<char>(255);
  d = ask(q);
  EXPECT_EQ(d.hdr.ancount, 2);
}

TEST_F(DnsResponder, NamesAreCompressedOnTheWire) {
  auto msg = make_query("Alias.Example.Test", type::a);
  auto bytes = raw(msg);
  auto d = decode(bytes);
  ASSERT_TRUE(d.ok) << d.error;
  auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  auto ans = d.in(section::answer);
  ASSERT_EQ(ans.size(), 4u);
  // The first owner is the question's name: a pointer to offset 12, so the
  // client sees its own spelling.
  EXPECT_EQ(get16(b + ans[0].offset), 0xC000 | 12);
  EXPECT_EQ(ans[0].owner, "Alias.Example.Test.");
  // Every later owner was written before (in a CNAME's RDATA): a pointer.
  for (size_t i = 1; i < ans.size(); ++i)
    EXPECT_EQ(b[ans[i].offset] & 0xC0, 0xC0) << i;
  // The CNAME targets share "example.test" with the question: one label
  // and a pointer each (RDLENGTH 4 + 2).
  EXPECT_EQ(get16(b + ans[0].offset + 10), 6);
  EXPECT_EQ(get16(b + ans[1].offset + 10), 6);
  // NXDOMAIN: the SOA's owner (the apex) and its names are compressed too.
  bytes = raw(make_query("nope.example.test", type::a));
  d = decode(bytes);
  auto auth = d.in(section::authority);
  ASSERT_EQ(auth.size(), 1u);
  b = reinterpret_cast<const unsigned char*>(bytes.data());
  EXPECT_EQ(get16(b + auth[0].offset), 0xC000 | 17); // "example.test" in Q
  size_t rdlen = get16(b + auth[0].offset + 10);
  EXPECT_EQ(rdlen, (4 + 2) + (11 + 2) + 20); // ns1+ptr, hostmaster+ptr
}

TEST_F(DnsResponder, EdnsGetsAnOptBack) {
  auto d = ask("www.example.test", type::a, flag::rd, 4096);
  auto add = d.in(section::additional);
  ASSERT_EQ(add.size(), 1u);
  EXPECT_EQ(add[0].type, type::opt);
  EXPECT_EQ(add[0].klass, kAdvertisedUdpSize);
  EXPECT_EQ(add[0].ttl, 0u);
  // DO is copied; version 1 gets BADVERS (extended rcode 1 in the OPT).
  std::string q = make_query("www.example.test", type::a, 9, flag::rd, 1232);
  q[q.size() - 4] = static_cast<char>(0x80); // DO
  d = ask(q);
  ASSERT_EQ(d.in(section::additional).size(), 1u);
  EXPECT_EQ(d.in(section::additional)[0].ttl, 0x8000u);
  EXPECT_EQ(d.hdr.ancount, 2);
  q[q.size() - 5] = 1; // version 1
  d = ask(q);
  EXPECT_EQ(d.rcode(), 0);
  EXPECT_EQ(d.hdr.ancount, 0);
  ASSERT_EQ(d.in(section::additional).size(), 1u);
  EXPECT_EQ(d.in(section::additional)[0].ttl >> 24, 1u); // BADVERS = 16
  EXPECT_EQ(out_.code, rcode::badvers);
  // REFUSED keeps the OPT too.
  d = ask("www.example.org", type::a, flag::rd, 1232);
  EXPECT_EQ(d.in(section::additional).size(), 1u);
}

class DnsResponderBig : public DnsResponder {
protected:
  void SetUp() override {
    // 8 TXT records of 200 bytes each on one name (~1.7 KB), 4 on another
    // (~850 bytes), and a name whose records cross 4096 bytes.
    std::string text = "$ORIGIN big.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n";
    for (int i = 0; i < 8; ++i)
      text += "t TXT \"" + std::to_string(i) + std::string(199, 'x') + "\"\n";
    for (int i = 0; i < 20; ++i)
      text += "huge TXT \"" + std::to_string(i) + std::string(250, 'y')
              + "\"\n";
    for (int i = 0; i < 4; ++i)
      text += "m TXT \"" + std::to_string(i) + std::string(199, 'z') + "\"\n";
    text += "small A 192.0.2.1\n";
    auto r = parse_zone(text);
    ASSERT_TRUE(r.ok) << r.message;
    zone_ = std::move(r.value);
  }
};

TEST_F(DnsResponderBig, TruncatesAt512WithoutEdns) {
  auto bytes = raw(make_query("t.big.test", type::txt));
  EXPECT_LE(bytes.size(), 512u);
  auto d = decode(bytes);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_TRUE(d.has(flag::tc));
  EXPECT_TRUE(d.has(flag::aa));
  EXPECT_EQ(d.hdr.ancount, 0); // a partial RRset is left out
  EXPECT_EQ(d.hdr.qdcount, 1);
  EXPECT_TRUE(out_.truncated);
  // Small answers are not truncated.
  d = ask("small.big.test", type::a);
  EXPECT_FALSE(d.has(flag::tc));
}

TEST_F(DnsResponderBig, EdnsAllowsLargerAnswers) {
  // ~850 bytes: too large for 512, fits our 1232.
  auto bytes = raw(make_query("m.big.test", type::txt, 1, 0, 4096));
  EXPECT_GT(bytes.size(), 512u);
  auto d = decode(bytes);
  EXPECT_FALSE(d.has(flag::tc));
  EXPECT_EQ(d.hdr.ancount, 4);
  // An advertised size below 512 counts as 512.
  bytes = raw(make_query("m.big.test", type::txt, 1, 0, 100));
  EXPECT_LE(bytes.size(), 512u);
  EXPECT_TRUE(decode(bytes).has(flag::tc));
  // Between 512 and ours: the client's size is the limit.
  bytes = raw(make_query("m.big.test", type::txt, 1, 0, 700));
  EXPECT_LE(bytes.size(), 700u);
  d = decode(bytes);
  EXPECT_TRUE(d.has(flag::tc));
  EXPECT_EQ(d.in(section::additional).size(), 1u); // the OPT still fits
}

// The reply is capped at the smaller of the client's EDNS size and the
// size we advertise (1232, RFC 6891 §6.2.5): a client offering 4096 or
// 65535 must not get 1.7 KB from a server that said 1232.
TEST_F(DnsResponderBig, RepliesNeverExceedOurAdvertisedSize) {
  for (uint16_t offered :
       {uint16_t{1232}, uint16_t{1233}, uint16_t{4096}, uint16_t{65535}}) {
    for (const char* name : {"t.big.test", "huge.big.test"}) {
      auto bytes = raw(make_query(name, type::txt, 1, 0, offered));
      EXPECT_LE(bytes.size(), size_t{kAdvertisedUdpSize})
        << name << " " << offered;
      auto d = decode(bytes);
      ASSERT_TRUE(d.ok) << d.error;
      EXPECT_TRUE(d.has(flag::tc)) << name << " " << offered;
      EXPECT_TRUE(out_.truncated);
      EXPECT_EQ(d.hdr.ancount, 0); // a partial RRset is left out
      ASSERT_EQ(d.in(section::additional).size(), 1u);
      EXPECT_EQ(d.in(section::additional)[0].klass, kAdvertisedUdpSize);
    }
  }
}

TEST_F(DnsResponder, RandomQueriesGetWellFormedAnswers) {
  const char* labels[] = {"www",  "alias", "web", "ext",  "dangling", "loop1",
                          "self", "a",     "b",   "deep", "nope",     "example",
                          "test", "org",   "WWW", "mail", "ns1",      "x"};
  const uint16_t types[] = {type::a,   type::aaaa, type::txt, type::cname,
                            type::soa, type::ns,   type::mx,  type::any,
                            99,        type::axfr};
  std::mt19937 gen{7};
  for (int i = 0; i < 3000; ++i) {
    std::string name;
    int n = static_cast<int>(gen() % 5);
    for (int k = 0; k < n; ++k)
      name += std::string(labels[gen() % std::size(labels)]) + ".";
    if (gen() % 2 == 0)
      name += "example.test";
    auto q = make_query(name, types[gen() % std::size(types)],
                        static_cast<uint16_t>(gen()),
                        static_cast<uint16_t>(gen() & 0x0110),
                        gen() % 2 == 0 ? 0 : static_cast<uint16_t>(gen()));
    auto bytes = raw(q);
    ASSERT_FALSE(bytes.empty()) << name;
    EXPECT_EQ(check_message(bytes), wire_error::none) << name;
    EXPECT_EQ(bytes.substr(0, 2), q.substr(0, 2));
  }
}

// The per-query path makes no heap allocation: everything is in the arena.
// Only counted without ASan (the release preset).
TEST_F(DnsResponder, RespondMakesNoHeapAllocation) {
  if (!mayfly::test::counting_enabled())
    GTEST_SKIP() << "allocation counting is off under sanitizers";
  std::string queries[] = {make_query("alias.example.test", type::a),
                           make_query("nope.example.test", type::a, 1, 0, 1232),
                           make_query("www.example.org", type::a),
                           std::string(12, '\0')};
  for (auto& q : queries) {
    arena_->reset();
    auto before = mayfly::test::allocation_count();
    auto reply = respond(zone_, q, *arena_, out_);
    EXPECT_EQ(mayfly::test::allocation_count(), before);
    EXPECT_FALSE(reply.empty());
  }
}

// The zone of RFC 4592 §2.2.1, with two changes: the SRV records are TXT
// (this example loads no SRV), and `subdel` is left out (no delegations
// here, so `host.subdel.example` would not be a referral).
constexpr const char* kRfc4592Zone = R"(
$ORIGIN example.
example.                 3600 IN  SOA   ns.example.com. hostmaster.example.com. (
                                        1 7200 900 1209600 300 )
example.                 3600     NS    ns.example.com.
example.                 3600     NS    ns.example.net.
*.example.               3600     TXT   "this is a wildcard"
*.example.               3600     MX    10 host1.example.
sub.*.example.           3600     TXT   "this is not a wildcard"
host1.example.           3600     A     192.0.2.1
_ssh._tcp.host1.example. 3600     TXT   "srv stand-in"
_ssh._tcp.host2.example. 3600     TXT   "srv stand-in"
; Not in the RFC: a wildcard CNAME, and CNAMEs into synthesized names.
*.w.example.             3600     CNAME host1.example.
alias.example.           3600     CNAME x.w.example.
toall.example.           3600     CNAME foo.example.
)";

class DnsResponderWildcard : public DnsResponder {
protected:
  void SetUp() override {
    auto r = parse_zone(kRfc4592Zone);
    ASSERT_TRUE(r.ok) << r.message;
    zone_ = std::move(r.value);
    ASSERT_TRUE(zone_.has_wildcards());
  }

  void expect_nxdomain(const decoded& d, const char* what) {
    EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::nxdomain)) << what;
    EXPECT_EQ(d.hdr.ancount, 0) << what;
    ASSERT_EQ(d.in(section::authority).size(), 1u) << what;
    EXPECT_EQ(d.in(section::authority)[0].type, type::soa) << what;
  }

  void expect_nodata(const decoded& d, const char* what) {
    EXPECT_EQ(d.rcode(), static_cast<uint8_t>(rcode::noerror)) << what;
    EXPECT_EQ(d.hdr.ancount, 0) << what;
    ASSERT_EQ(d.in(section::authority).size(), 1u) << what;
    EXPECT_EQ(d.in(section::authority)[0].type, type::soa) << what;
  }
};

// RFC 4592 §2.2.1: "The following responses would be synthesized from one
// of the wildcards in the zone". The owner is the query name.
TEST_F(DnsResponderWildcard, Rfc4592ExamplesThatSynthesize) {
  auto d = ask("host3.example", type::mx);
  EXPECT_EQ(d.rcode(), 0);
  EXPECT_TRUE(d.has(flag::aa));
  EXPECT_EQ(answers(d),
            (std::vector<std::string>{"host3.example. 15 10 host1.example."}));
  EXPECT_EQ(d.hdr.nscount, 0);
  // The wildcard matches but owns no A: NODATA.
  d = ask("host3.example", type::a);
  expect_nodata(d, "host3.example A");
  d = ask("foo.bar.example", type::txt);
  EXPECT_EQ(d.rcode(), 0);
  EXPECT_EQ(answers(d), (std::vector<std::string>{
                          "foo.bar.example. 16 \"this is a wildcard\""}));
}

// RFC 4592 §2.2.1: "The following responses would not be synthesized from
// any of the wildcards in the zone".
TEST_F(DnsResponderWildcard, Rfc4592ExamplesThatDoNotSynthesize) {
  // The name exists: its own (missing) data, not the wildcard's.
  expect_nodata(ask("host1.example", type::mx), "host1.example MX");
  expect_nodata(ask("sub.*.example", type::mx), "sub.*.example MX");
  // The closest encloser is the empty non-terminal _tcp.host1.example,
  // which has no wildcard child.
  expect_nxdomain(ask("_telnet._tcp.host1.example", 33 /* SRV */),
                  "_telnet._tcp.host1.example SRV");
  // The closest encloser is *.example itself; *.*.example does not exist.
  expect_nxdomain(ask("ghost.*.example", type::mx), "ghost.*.example MX");
}

TEST_F(DnsResponderWildcard, EmptyNonTerminalsExistAndBlockTheWildcard) {
  // _tcp.host1.example and host2.example exist (empty non-terminals).
  expect_nodata(ask("_tcp.host1.example", type::txt), "_tcp.host1 TXT");
  expect_nodata(ask("host2.example", type::txt), "host2 TXT");
  // Below them there is no wildcard: NXDOMAIN, although *.example exists.
  expect_nxdomain(ask("x.host2.example", type::txt), "x.host2 TXT");
  // A name below an existing one with records: still NXDOMAIN.
  expect_nxdomain(ask("a.host1.example", type::txt), "a.host1 TXT");
}

TEST_F(DnsResponderWildcard, TheWildcardAskedForItselfIsAnOrdinaryName) {
  auto d = ask("*.example", type::txt);
  EXPECT_EQ(answers(d),
            (std::vector<std::string>{"*.example. 16 \"this is a wildcard\""}));
  d = ask("*.example", type::any);
  EXPECT_EQ(d.hdr.ancount, 2);
}

TEST_F(DnsResponderWildcard, SynthesizedAnswersKeepTheQuestionsSpelling) {
  auto bytes = raw(make_query("HoSt3.ExAmple", type::mx));
  auto d = decode(bytes);
  ASSERT_TRUE(d.ok) << d.error;
  auto ans = d.in(section::answer);
  ASSERT_EQ(ans.size(), 1u);
  EXPECT_EQ(ans[0].owner, "HoSt3.ExAmple.");
  // Written as a pointer to the question (offset 12).
  auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  EXPECT_EQ(get16(b + ans[0].offset), 0xC000 | 12);
  // ANY gets every record of the wildcard, under the query name.
  d = ask("any.example", type::any);
  EXPECT_EQ(d.hdr.ancount, 2);
  for (auto& r : d.in(section::answer))
    EXPECT_EQ(r.owner, "any.example.");
}

TEST_F(DnsResponderWildcard, WildcardCnamesAreFollowed) {
  // A synthesized CNAME, then the target's A.
  auto d = ask("x.w.example", type::a);
  EXPECT_EQ(d.rcode(), 0);
  EXPECT_EQ(answers(d),
            (std::vector<std::string>{"x.w.example. 5 host1.example.",
                                      "host1.example. 1 192.0.2.1"}));
  // Asking for the CNAME itself.
  d = ask("deep.er.w.example", type::cname);
  EXPECT_EQ(answers(d),
            (std::vector<std::string>{"deep.er.w.example. 5 host1.example."}));
  // A CNAME whose target is synthesized: by a CNAME, then by data.
  d = ask("alias.example", type::a);
  EXPECT_EQ(answers(d),
            (std::vector<std::string>{"alias.example. 5 x.w.example.",
                                      "x.w.example. 5 host1.example.",
                                      "host1.example. 1 192.0.2.1"}));
  d = ask("toall.example", type::txt);
  EXPECT_EQ(answers(d), (std::vector<std::string>{
                          "toall.example. 5 foo.example.",
                          "foo.example. 16 \"this is a wildcard\""}));
}

TEST_F(DnsResponderWildcard, LookupSaysWhenItSynthesized) {
  auto key = [](const char* text) {
    char buf[kMaxName];
    size_t n = name_from_text(text, buf);
    for (size_t i = 0; i < n; ++i)
      buf[i] = ascii_lower(buf[i]);
    return std::string(buf, n);
  };
  auto m = zone_.lookup(key("host3.example"));
  ASSERT_NE(m.nd, nullptr);
  EXPECT_TRUE(m.synthesized);
  EXPECT_EQ(m.nd, zone_.find(key("*.example")));
  m = zone_.lookup(key("host1.example"));
  EXPECT_FALSE(m.synthesized);
  EXPECT_EQ(m.nd, zone_.find(key("host1.example")));
  m = zone_.lookup(key("ghost.*.example"));
  EXPECT_EQ(m.nd, nullptr);
  EXPECT_FALSE(m.synthesized);
  // A zone without wildcards never synthesizes.
  auto plain = parse_zone(kZone);
  ASSERT_TRUE(plain.ok);
  EXPECT_FALSE(plain.value.has_wildcards());
  EXPECT_EQ(plain.value.lookup(key("x.example.test")).nd, nullptr);
}

} // namespace

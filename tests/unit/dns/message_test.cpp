// The DNS message reader and query parser against hostile input: pointer
// loops, forward pointers, label and name overflows, counts that exceed the
// packet, truncations at every length, random bytes. And the writer's
// compression, limits and rollback.

#include "examples/dns/message.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "dns_test_util.hpp"

namespace {

using namespace dns;
using dns::test::make_query;
using dns::test::text_of;

// A hand-made message: header fields, then raw bytes.
std::string packet(uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar,
                   const std::string& body, uint16_t flags = flag::rd) {
  std::string p(12, '\0');
  auto* b = reinterpret_cast<unsigned char*>(p.data());
  put16(b, 0xBEEF);
  put16(b + 2, flags);
  put16(b + 4, qd);
  put16(b + 6, an);
  put16(b + 8, ns);
  put16(b + 10, ar);
  return p + body;
}

std::string u16(uint16_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)};
}

const std::string kWww = std::string("\x03www\x07"
                                     "example\x04test\x00",
                                     18);
const std::string kQtail = u16(type::a) + u16(klass::in);

class DnsMessage : public ::testing::Test {
protected:
  void TearDown() override {
    arena_.reset();
    EXPECT_EQ(pool_->blocks_in_use(), 0);
  }

  parse_status parse(const std::string& msg, wire_error* why = nullptr) {
    arena_->reset();
    return parse_query(msg, *arena_, q_, why);
  }

  wire_error why(const std::string& msg) {
    wire_error w = wire_error::none;
    EXPECT_EQ(parse(msg, &w), parse_status::malformed);
    return w;
  }

  std::unique_ptr<mayfly::arena_pool> pool_ = dns::test::make_arena_pool();
  std::unique_ptr<mayfly::arena> arena_
    = std::make_unique<mayfly::arena>(*pool_);
  query q_;
};

TEST_F(DnsMessage, ParsesAQuery) {
  auto msg = make_query("WWW.Example.test", type::aaaa, 0x4242, flag::rd);
  ASSERT_EQ(parse(msg), parse_status::ok);
  EXPECT_EQ(q_.hdr.id, 0x4242);
  EXPECT_EQ(q_.hdr.flags, flag::rd);
  EXPECT_EQ(q_.qtype, type::aaaa);
  EXPECT_EQ(q_.qclass, klass::in);
  EXPECT_EQ(text_of(q_.qname), "WWW.Example.test.");
  EXPECT_EQ(text_of(q_.qname_key), "www.example.test.");
  EXPECT_FALSE(q_.edns);
  EXPECT_EQ(check_message(msg), wire_error::none);
}

TEST_F(DnsMessage, ParsesEdns) {
  auto msg = make_query("example.test", type::txt, 1, 0, 4096);
  ASSERT_EQ(parse(msg), parse_status::ok);
  EXPECT_TRUE(q_.edns);
  EXPECT_EQ(q_.udp_size, 4096);
  EXPECT_EQ(q_.edns_version, 0);
  EXPECT_FALSE(q_.dnssec_ok);
  // DO bit, version 1, and an option (a cookie) in the RDATA.
  std::string opt = std::string(1, '\0') + u16(type::opt) + u16(1232)
                    + std::string("\x00\x01\x80\x00", 4) + u16(12) + u16(10)
                    + u16(8) + std::string(8, 'c');
  ASSERT_EQ(parse(packet(1, 0, 0, 1, kWww + kQtail + opt)), parse_status::ok);
  EXPECT_TRUE(q_.dnssec_ok);
  EXPECT_EQ(q_.edns_version, 1);
  EXPECT_EQ(q_.udp_size, 1232);
}

TEST_F(DnsMessage, TooShortForAHeader) {
  std::string full = make_query("www.example.test", type::a);
  for (size_t n : {0, 1, 2, 6, 11}) {
    query q;
    EXPECT_EQ(parse_query(full.substr(0, n), *arena_, q),
              parse_status::too_short)
      << n;
    header h;
    EXPECT_FALSE(read_header(full.substr(0, n), h));
  }
}

TEST_F(DnsMessage, EveryTruncationOfAQueryIsMalformed) {
  auto full = make_query("www.example.test", type::a, 7, flag::rd, 1232);
  ASSERT_EQ(parse(full), parse_status::ok);
  for (size_t n = 12; n < full.size(); ++n) {
    EXPECT_EQ(parse(full.substr(0, n)), parse_status::malformed) << n;
    EXPECT_EQ(q_.hdr.id, 7) << "the header is still read";
  }
}

TEST_F(DnsMessage, QdcountMustBeOne) {
  EXPECT_EQ(why(packet(0, 0, 0, 0, "")), wire_error::bad_count);
  EXPECT_EQ(why(packet(2, 0, 0, 0, kWww + kQtail + kWww + kQtail)),
            wire_error::bad_count);
  EXPECT_EQ(why(packet(1, 0, 0, 0, "")), wire_error::truncated);
}

TEST_F(DnsMessage, PointerLoopsAreRejected) {
  // The question's name is a pointer to itself.
  EXPECT_EQ(why(packet(1, 0, 0, 0, "\xC0\x0C" + kQtail)),
            wire_error::bad_pointer);
  // A label, then a pointer back to that label: a loop through a label.
  EXPECT_EQ(why(packet(1, 0, 0, 0, std::string("\x01x\xC0\x0C", 4) + kQtail)),
            wire_error::bad_pointer);
  // Two records in the additional section whose names point at each
  // other: the second points backwards, to the first, whose pointer points
  // forwards to the second.
  size_t first = 12 + kWww.size() + 4;
  size_t second = first + 2 + 10;
  std::string rr1 = u16(static_cast<uint16_t>(0xC000 | second)) + u16(type::a)
                    + u16(1) + std::string(4, '\0') + u16(0);
  std::string rr2 = u16(static_cast<uint16_t>(0xC000 | first)) + u16(type::a)
                    + u16(1) + std::string(4, '\0') + u16(0);
  EXPECT_EQ(why(packet(1, 0, 0, 2, kWww + kQtail + rr1 + rr2)),
            wire_error::bad_pointer);
}

TEST_F(DnsMessage, ForwardPointersAreRejected) {
  // The name points past itself, to a well-formed name further on.
  std::string body = "\xC0\x12" + kQtail + std::string("\x01z\x00", 3);
  EXPECT_EQ(why(packet(1, 0, 0, 0, body)), wire_error::bad_pointer);
  // A pointer beyond the end of the packet.
  EXPECT_EQ(why(packet(1, 0, 0, 0, "\xC3\xFF" + kQtail)),
            wire_error::bad_pointer);
}

TEST_F(DnsMessage, BackwardPointersAreFine) {
  // An additional record owned by a pointer to the question's name, and one
  // owned by a label plus a pointer into the middle of it.
  std::string rr1 = "\xC0\x0C" + u16(type::a) + u16(1) + std::string(4, '\0')
                    + u16(4) + std::string(4, '\x01');
  std::string rr2 = "\x04mail\xC0\x10" + u16(type::a) + u16(1)
                    + std::string(4, '\0') + u16(4) + std::string(4, '\x02');
  auto msg = packet(1, 0, 0, 2, kWww + kQtail + rr1 + rr2);
  ASSERT_EQ(parse(msg), parse_status::ok);
  ASSERT_EQ(check_message(msg), wire_error::none);
  auto d = dns::test::decode(msg);
  ASSERT_TRUE(d.ok) << d.error;
  ASSERT_EQ(d.rrs.size(), 3u);
  EXPECT_EQ(d.rrs[1].owner, "www.example.test.");
  EXPECT_EQ(d.rrs[2].owner, "mail.example.test.");
}

TEST_F(DnsMessage, LabelsLongerThan63AreRejected) {
  for (unsigned char len : {0x40, 0x41, 0x7F, 0x80, 0xBF}) {
    std::string body = std::string(1, static_cast<char>(len))
                       + std::string(len & 0x3F, 'a') + std::string(1, '\0')
                       + kQtail + std::string(200, 'a');
    EXPECT_EQ(why(packet(1, 0, 0, 0, body)), wire_error::bad_label) << int{len};
  }
  // 63 is fine.
  std::string ok = std::string(1, '\x3F') + std::string(63, 'a')
                   + std::string(1, '\0') + kQtail;
  EXPECT_EQ(parse(packet(1, 0, 0, 0, ok)), parse_status::ok);
}

TEST_F(DnsMessage, NamesLongerThan255AreRejected) {
  auto labels = [](int n, int len) {
    std::string s;
    for (int i = 0; i < n; ++i)
      s += static_cast<char>(len) + std::string(static_cast<size_t>(len), 'a');
    return s;
  };
  // 3 x 64 + 62 + 1 = 255 bytes: the longest legal name.
  std::string longest = labels(3, 63) + labels(1, 61) + std::string(1, '\0');
  ASSERT_EQ(longest.size(), 255u);
  ASSERT_EQ(parse(packet(1, 0, 0, 0, longest + kQtail)), parse_status::ok);
  EXPECT_EQ(q_.qname.size(), 255u);
  // One byte more.
  std::string too_long = labels(3, 63) + labels(1, 62) + std::string(1, '\0');
  EXPECT_EQ(why(packet(1, 0, 0, 0, too_long + kQtail)),
            wire_error::name_too_long);
  // 128 one-byte labels.
  EXPECT_EQ(
    why(packet(1, 0, 0, 0, labels(128, 1) + std::string(1, '\0') + kQtail)),
    wire_error::name_too_long);
  // Too long only once decompressed: a name in the additional section made
  // of 100 bytes of labels plus a pointer to a 200-byte question name.
  std::string q200 = labels(3, 63) + labels(1, 7) + std::string(1, '\0');
  std::string rr = labels(2, 49) + "\xC0\x0C" + u16(type::a) + u16(1)
                   + std::string(4, '\0') + u16(0);
  EXPECT_EQ(why(packet(1, 0, 0, 1, q200 + kQtail + rr)),
            wire_error::name_too_long);
}

TEST_F(DnsMessage, CountsThatExceedThePacket) {
  auto body = kWww + kQtail;
  EXPECT_EQ(why(packet(1, 1, 0, 0, body)), wire_error::truncated);
  EXPECT_EQ(why(packet(1, 0, 65535, 0, body)), wire_error::truncated);
  EXPECT_EQ(why(packet(1, 0, 0, 65535, body)), wire_error::truncated);
  EXPECT_EQ(why(packet(65535, 65535, 65535, 65535, body)),
            wire_error::bad_count);
  // RDLENGTH past the end.
  std::string rr = std::string(1, '\0') + u16(type::a) + u16(1)
                   + std::string(4, '\0') + u16(100) + "abcd";
  EXPECT_EQ(why(packet(1, 0, 0, 1, body + rr)), wire_error::truncated);
}

TEST_F(DnsMessage, TrailingBytesAreRejected) {
  EXPECT_EQ(why(make_query("www.example.test", type::a) + "x"),
            wire_error::trailing_bytes);
}

TEST_F(DnsMessage, BadOptRecords) {
  auto body = kWww + kQtail;
  std::string opt = std::string(1, '\0') + u16(type::opt) + u16(1232)
                    + std::string(4, '\0') + u16(0);
  EXPECT_EQ(parse(packet(1, 0, 0, 1, body + opt)), parse_status::ok);
  // Two OPTs.
  EXPECT_EQ(why(packet(1, 0, 0, 2, body + opt + opt)), wire_error::bad_opt);
  // Not owned by the root.
  std::string named = "\xC0\x0C" + opt.substr(1);
  EXPECT_EQ(why(packet(1, 0, 0, 1, body + named)), wire_error::bad_opt);
  // In the answer section.
  EXPECT_EQ(why(packet(1, 1, 0, 0, body + opt)), wire_error::bad_opt);
  // An option longer than the RDATA.
  std::string bad_option = std::string(1, '\0') + u16(type::opt) + u16(1232)
                           + std::string(4, '\0') + u16(4) + u16(10) + u16(9);
  EXPECT_EQ(why(packet(1, 0, 0, 1, body + bad_option)), wire_error::bad_opt);
}

TEST_F(DnsMessage, RandomBytesNeverCrash) {
  std::mt19937 gen{4242};
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    size_t n = gen() % 80;
    std::string msg(n, '\0');
    for (auto& c : msg)
      c = static_cast<char>(gen());
    if (n >= 12 && gen() % 2 == 0) {
      // Plausible counts make the parser go deeper.
      msg[4] = 0;
      msg[5] = 1;
      for (int k = 6; k < 12; ++k)
        msg[static_cast<size_t>(k)] = static_cast<char>(gen() % 3 == 0);
    }
    auto st = parse(msg);
    ok += st == parse_status::ok;
    if (st == parse_status::ok) {
      EXPECT_LE(q_.qname.size(), kMaxName);
    }
    check_message(msg); // must not crash either
  }
  (void) ok;
}

TEST_F(DnsMessage, MutatedQueriesNeverCrash) {
  std::mt19937 gen{99};
  auto base = make_query("a.b.example.test", type::txt, 1, flag::rd, 1232);
  for (int i = 0; i < 20000; ++i) {
    auto msg = base;
    int flips = 1 + static_cast<int>(gen() % 4);
    for (int k = 0; k < flips; ++k)
      msg[gen() % msg.size()] = static_cast<char>(gen());
    if (gen() % 4 == 0)
      msg.resize(gen() % (msg.size() + 1));
    parse(msg);
    check_message(msg);
  }
}

TEST_F(DnsMessage, ReadNameLowercases) {
  auto msg = make_query("MiXeD.Example.TEST", type::a);
  char buf[kMaxName];
  size_t len = 0, next = 0;
  ASSERT_EQ(read_name(msg, 12, buf, len, next, true), wire_error::none);
  EXPECT_EQ(text_of({buf, len}), "mixed.example.test.");
  EXPECT_EQ(next, 12 + len);
}

// -- writer -------------------------------------------------------------------

TEST(DnsMessageWriter, CompressesSharedSuffixes) {
  unsigned char buf[512];
  message_writer w{buf, sizeof(buf)};
  w.set_header(1, flag::qr);
  char q[kMaxName];
  size_t qn = name_from_text("www.example.test", q);
  ASSERT_TRUE(w.add_question({q, qn}, type::a, klass::in));
  record cname;
  cname.type = type::cname;
  cname.ttl = 60;
  char t[kMaxName];
  cname.name1.assign(t, name_from_text("WEB.EXAMPLE.TEST", t));
  ASSERT_TRUE(w.add_record(section::answer, {q, qn}, cname));
  auto msg = w.finish();
  // 12 header + 18 name + 4, then the owner is a pointer to offset 12 and
  // the target is "web" + a pointer to "example.test" (offset 16).
  size_t rr = 12 + 18 + 4;
  EXPECT_EQ(static_cast<unsigned char>(msg[rr]), 0xC0);
  EXPECT_EQ(static_cast<unsigned char>(msg[rr + 1]), 12);
  size_t rdata = rr + 2 + 10;
  EXPECT_EQ(
    get16(reinterpret_cast<const unsigned char*>(msg.data()) + rdata - 2),
    6); // \3WEB + pointer
  EXPECT_EQ(msg.substr(rdata, 4), "\x03WEB");
  EXPECT_EQ(static_cast<unsigned char>(msg[rdata + 4]), 0xC0);
  EXPECT_EQ(static_cast<unsigned char>(msg[rdata + 5]), 16);
  auto d = dns::test::decode(msg);
  ASSERT_TRUE(d.ok) << d.error;
  // Suffixes match case-insensitively: the target now reads in the case of
  // the name it points to (the same name, RFC 4343).
  EXPECT_EQ(d.rrs[1].rdata, "WEB.example.test.");
  EXPECT_EQ(msg.size(), rdata + 6);
}

TEST(DnsMessageWriter, RespectsTheLimitAndRollsBack) {
  unsigned char buf[100];
  message_writer w{buf, sizeof(buf)};
  char q[kMaxName];
  size_t qn = name_from_text("example.test", q);
  ASSERT_TRUE(w.add_question({q, qn}, type::txt, klass::in));
  record txt;
  txt.type = type::txt;
  txt.fixed = std::string(1, '\x28') + std::string(40, 't');
  ASSERT_TRUE(w.add_record(section::answer, {q, qn}, txt));
  size_t before = w.size();
  auto m = w.mark();
  EXPECT_FALSE(w.add_record(section::answer, {q, qn}, txt)); // 53 > room
  EXPECT_EQ(w.size(), before);
  EXPECT_EQ(w.count(section::answer), 1);
  w.rollback(m);
  auto msg = w.finish();
  EXPECT_LE(msg.size(), sizeof(buf));
  EXPECT_EQ(check_message(msg), wire_error::none);
}

TEST(DnsMessageWriter, NameFromText) {
  char out[kMaxName];
  EXPECT_EQ(name_from_text("", out), 1u);
  EXPECT_EQ(name_from_text(".", out), 1u);
  EXPECT_EQ(name_from_text("a.b.", out), 5u);
  EXPECT_EQ(std::string(out, 5), std::string("\x01"
                                             "a\x01"
                                             "b\x00",
                                             5));
  EXPECT_EQ(name_from_text("a\\.b", out), 5u);
  EXPECT_EQ(std::string(out, 5), std::string("\x03"
                                             "a.b\x00",
                                             5));
  EXPECT_EQ(name_from_text("\\065", out), 3u);
  EXPECT_EQ(out[1], 'A');
  EXPECT_EQ(name_from_text("a..b", out), 0u);
  EXPECT_EQ(name_from_text(".a", out), 0u);
  EXPECT_EQ(name_from_text(std::string(64, 'x'), out), 0u);
  EXPECT_EQ(name_from_text(std::string(63, 'x'), out), 65u);
  std::string l63(63, 'a');
  EXPECT_EQ(name_from_text(
              l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b'), out),
            255u);
  EXPECT_EQ(name_from_text(
              l63 + "." + l63 + "." + l63 + "." + std::string(62, 'b'), out),
            0u);
}

} // namespace

// The mayfly-dns service in-process: a runtime, the service's handler and a
// UDP endpoint on 127.0.0.1:0 (and [::1]:0), queried by the real `dig`
// (Debian package dnsutils) and by a raw UDP client for what dig cannot
// send. Skipped with a message when dig is not installed.

#include "examples/dns/service.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "dns_test_util.hpp"
#include "tests/support/small_runtime.hpp"
#include "tests/support/net_clients.hpp"
#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/udp_endpoint.hpp>

namespace {

using namespace mayfly;

bool have_dig() {
  return std::system("command -v dig >/dev/null 2>&1") == 0;
}

// Runs a command, returns its standard output (and error).
std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr)
    return "popen failed";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
    out.append(buf, n);
  ::pclose(p);
  return out;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

class DnsService : public ::testing::Test {
protected:
  void SetUp() override {
    auto z = dns::load_zone_file(MAYFLY_SOURCE_DIR
                                 "/examples/dns/example.zone");
    ASSERT_TRUE(z.ok) << z.message;
    svc_ = std::make_unique<dns::service>(std::move(z.value));
  }

  void start(const char* address = "127.0.0.1:0") {
    auto made = runtime::make(test::small_runtime_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    handler = &rt->add_handler("dns", svc_->make_handler());
    endpoint_config ec;
    ec.address = *udp_address::parse(address);
    auto ep = udp_endpoint::open(*rt, *handler, ec);
    ASSERT_TRUE(ep) << ep.error().message();
    endpoint = *ep;
    rt->start();
  }

  // Stops the runtime: every handler has finished, so the service's
  // counters are final (a reply reaches the client before its handler
  // counts it).
  void settle() {
    rt->stop();
  }

  void TearDown() override {
    if (rt) {
      rt->stop();
      EXPECT_TRUE(rt->balance().zero()) << rt->balance().to_json().dump();
      EXPECT_EQ(handler->count(handler_type::failed), 0);
      rt.reset();
    }
    EXPECT_EQ(slice::live_count(), 0);
  }

  // `dig @server -p port ARGS +tries=1 +time=2`.
  std::string dig(const std::string& args) {
    auto& a = endpoint->local_address();
    std::string server = a.to_string();
    server = a.is_v6() ? server.substr(1, server.rfind(']') - 1)
                       : server.substr(0, server.rfind(':'));
    return run("dig @" + server + " -p " + std::to_string(a.port()) + " " + args
               + " +tries=1 +time=2");
  }

  std::unique_ptr<dns::service> svc_;
  dns::service_stats& stats() {
    return svc_->stats();
  }
  std::unique_ptr<runtime> rt;
  handler_type* handler = nullptr;
  udp_endpoint* endpoint = nullptr;
};

#define REQUIRE_DIG()                                                          \
  if (!have_dig())                                                             \
  GTEST_SKIP() << "dig is not installed (Debian: apt-get install dnsutils)"

TEST_F(DnsService, DigGetsAnAuthoritativeAnswer) {
  REQUIRE_DIG();
  start();
  auto out = dig("www.example.test A");
  EXPECT_TRUE(contains(out, "status: NOERROR")) << out;
  EXPECT_TRUE(contains(out, "flags: qr aa rd;")) << out;
  EXPECT_TRUE(contains(out, "ANSWER: 2,")) << out;
  EXPECT_TRUE(contains(out, "www.example.test.\t3600\tIN\tA\t192.0.2.80"))
    << out;
  EXPECT_TRUE(contains(out, "192.0.2.81")) << out;
  // dig sends EDNS: the OPT comes back.
  EXPECT_TRUE(contains(out, "udp: 1232")) << out;
  settle();
  EXPECT_EQ(stats().count(dns::service_stats::rc_noerror), 1);
}

TEST_F(DnsService, DigShortAnswers) {
  REQUIRE_DIG();
  start();
  EXPECT_EQ(dig("www.example.test AAAA +short"), "2001:db8::80\n");
  EXPECT_EQ(dig("ns2.example.test A +short"), "192.0.2.2\n");
  EXPECT_EQ(dig("example.test MX +short"), "10 mail.example.test.\n");
  EXPECT_EQ(dig("host.sub.example.test A +short"), "192.0.2.200\n");
  EXPECT_EQ(dig("info.example.test TXT +short"),
            "\"first string\" \"second \\\"quoted\\\" string\" \"semicolon; "
            "and backslash \\\\ inside\" \"unquoted-word\" \"ABC\"\n");
  EXPECT_EQ(dig("alias.example.test A +short"),
            "web.example.test.\nwww.example.test.\n192.0.2.80\n192.0.2.81\n");
  EXPECT_EQ(dig("example.test SOA +short"),
            "ns1.example.test. hostmaster.example.test. 2024060101 7200 900 "
            "1209600 300\n");
}

TEST_F(DnsService, DigSeesNegativeAnswersAndRefusals) {
  REQUIRE_DIG();
  start();
  auto out = dig("nope.example.test A");
  EXPECT_TRUE(contains(out, "status: NXDOMAIN")) << out;
  EXPECT_TRUE(contains(out, "AUTHORITY: 1")) << out;
  EXPECT_TRUE(contains(out, "example.test.\t\t300\tIN\tSOA")) << out;
  out = dig("b.deep.example.test A");
  EXPECT_TRUE(contains(out, "status: NOERROR")) << out;
  EXPECT_TRUE(contains(out, "ANSWER: 0, AUTHORITY: 1")) << out;
  out = dig("www.example.org A");
  EXPECT_TRUE(contains(out, "status: REFUSED")) << out;
  EXPECT_TRUE(contains(out, "flags: qr rd;")) << out;
  out = dig("dangling.example.test A");
  EXPECT_TRUE(contains(out, "status: NXDOMAIN")) << out;
  EXPECT_TRUE(contains(out, "CNAME\tnowhere.example.test.")) << out;
  settle();
  EXPECT_EQ(stats().count(dns::service_stats::rc_nxdomain), 2);
  EXPECT_EQ(stats().count(dns::service_stats::rc_refused), 1);
}

TEST_F(DnsService, DigFlagsAndVariants) {
  REQUIRE_DIG();
  start();
  // RD is copied: +norec clears it.
  auto out = dig("www.example.test A +norec");
  EXPECT_TRUE(contains(out, "flags: qr aa;")) << out;
  // Without EDNS: no OPT pseudo-section; the long TXT still fits 512.
  out = dig("long.example.test TXT +noedns");
  EXPECT_TRUE(contains(out, "status: NOERROR")) << out;
  EXPECT_FALSE(contains(out, "OPT PSEUDOSECTION")) << out;
  EXPECT_FALSE(contains(out, " tc")) << out;
  // Case is preserved from the question.
  out = dig("WwW.ExAmPlE.TeSt A");
  EXPECT_TRUE(contains(out, "WwW.ExAmPlE.TeSt.\t3600\tIN\tA")) << out;
  // ANY over UDP (dig would use TCP for ANY otherwise).
  out = dig("example.test ANY +notcp");
  EXPECT_TRUE(contains(out, "ANSWER: 5,")) << out;
  // The CNAME loop ends.
  out = dig("loop1.example.test A");
  EXPECT_TRUE(contains(out, "ANSWER: 2,")) << out;
  // Other opcodes are not implemented.
  out = dig("example.test A +opcode=status");
  EXPECT_TRUE(contains(out, "opcode: STATUS, status: NOTIMP")) << out;
  // A header without a question: FORMERR.
  out = dig("example.test A +header-only");
  EXPECT_TRUE(contains(out, "status: FORMERR")) << out;
}

TEST_F(DnsService, DigOverIpv6) {
  REQUIRE_DIG();
  start("[::1]:0");
  EXPECT_EQ(dig("mail.example.test AAAA +short"), "2001:db8::25\n");
}

// What dig cannot send: short datagrams (no reply), malformed ones
// (FORMERR echoing the ID), responses (no reply).
TEST_F(DnsService, RawDatagrams) {
  start();
  test::udp_client client{endpoint->local_address(), 300};
  ASSERT_TRUE(client.send(std::string(11, 'x')));
  EXPECT_FALSE(client.receive()); // too short: silence
  ASSERT_TRUE(client.send(std::string("\x77\x66\x01\x00\x00\x00\x00\x00\x00"
                                      "\x00\x00\x00",
                                      12)));
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  auto d = dns::test::decode(*reply);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.hdr.id, 0x7766);
  EXPECT_EQ(d.rcode(), static_cast<uint8_t>(dns::rcode::formerr));
  auto resp = dns::test::make_query("www.example.test", dns::type::a, 5,
                                    dns::flag::qr);
  ASSERT_TRUE(client.send(resp));
  EXPECT_FALSE(client.receive()); // a response: silence
  ASSERT_TRUE(
    client.send(dns::test::make_query("www.example.test", dns::type::a, 6)));
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(dns::test::decode(*reply).hdr.ancount, 2);
  settle();
  EXPECT_EQ(stats().count(dns::service_stats::dropped_short), 1);
  EXPECT_EQ(stats().count(dns::service_stats::dropped_qr), 1);
  EXPECT_EQ(stats().count(dns::service_stats::rc_formerr), 1);
  EXPECT_EQ(stats().count(dns::service_stats::queries), 4);
  EXPECT_EQ(stats().count(dns::service_stats::replies), 2);
}

TEST_F(DnsService, ManyQueriesInFlight) {
  start();
  test::udp_client client{endpoint->local_address()};
  constexpr int total = 200;
  for (int i = 0; i < total; ++i)
    ASSERT_TRUE(client.send(
      dns::test::make_query(i % 2 ? "alias.example.test" : "nope.example.test",
                            dns::type::a, static_cast<uint16_t>(i))));
  int got = 0;
  for (int i = 0; i < total; ++i) {
    auto reply = client.receive();
    if (!reply)
      break;
    auto d = dns::test::decode(*reply);
    ASSERT_TRUE(d.ok) << d.error;
    EXPECT_EQ(d.hdr.ancount, d.hdr.id % 2 ? 4 : 0);
    ++got;
  }
  EXPECT_EQ(got, total);
  settle();
  EXPECT_EQ(stats().count(dns::service_stats::queries), total);
  EXPECT_EQ(stats().count(dns::service_stats::rc_noerror), total / 2);
  EXPECT_EQ(stats().count(dns::service_stats::rc_nxdomain), total / 2);
  EXPECT_EQ(handler->count(handler_type::replies), total);
}

// RFC 3597 (issue 18: CAA, SRV, DS, HTTPS, TYPE999, TYPE65280 got
// NOTIMP): types the zone cannot hold are answered NODATA or NXDOMAIN.
TEST_F(DnsService, DigGetsNodataForTypesTheZoneCannotHold) {
  REQUIRE_DIG();
  start();
  for (std::string t : {"CAA", "SRV", "DS", "HTTPS", "TYPE999", "TYPE65280"}) {
    auto out = dig("www.example.test " + t);
    EXPECT_TRUE(contains(out, "status: NOERROR")) << t << out;
    EXPECT_TRUE(contains(out, "flags: qr aa rd;")) << t << out;
    EXPECT_TRUE(contains(out, "ANSWER: 0, AUTHORITY: 1")) << t << out;
    out = dig("nope.example.test " + t);
    EXPECT_TRUE(contains(out, "status: NXDOMAIN")) << t << out;
    EXPECT_TRUE(contains(out, "AUTHORITY: 1")) << t << out;
  }
  settle();
  EXPECT_EQ(stats().count(dns::service_stats::rc_notimp), 0);
  EXPECT_EQ(stats().count(dns::service_stats::rc_noerror), 6);
  EXPECT_EQ(stats().count(dns::service_stats::rc_nxdomain), 6);
}

// RFC 4592 wildcards in example.zone (*.wild.example.test).
TEST_F(DnsService, DigSeesWildcardsSynthesized) {
  REQUIRE_DIG();
  start();
  auto out = dig("anything.wild.example.test A");
  EXPECT_TRUE(contains(out, "status: NOERROR")) << out;
  EXPECT_TRUE(contains(out, "flags: qr aa rd;")) << out;
  EXPECT_TRUE(
    contains(out, "anything.wild.example.test. 3600 IN\tA\t192.0.2.99"))
    << out;
  EXPECT_EQ(dig("a.b.wild.example.test TXT +short"),
            "\"synthesized from *.wild.example.test\"\n");
  // exists.wild exists: its own records only.
  EXPECT_EQ(dig("exists.wild.example.test A +short"), "192.0.2.98\n");
  out = dig("exists.wild.example.test TXT");
  EXPECT_TRUE(contains(out, "ANSWER: 0, AUTHORITY: 1")) << out;
  // Below it there is no wildcard.
  out = dig("x.exists.wild.example.test A");
  EXPECT_TRUE(contains(out, "status: NXDOMAIN")) << out;
}

// RFC 6891 §6.2.5 (issue 18: replies up to 4096 bytes while advertising
// 1232): a client offering 4096 gets at most 1232 bytes and TC.
TEST_F(DnsService, DigNeverGetsMoreThanOurAdvertisedSize) {
  REQUIRE_DIG();
  start();
  auto out = dig("big.example.test TXT +bufsize=4096 +ignore");
  EXPECT_TRUE(contains(out, "flags: qr aa tc rd;")) << out;
  EXPECT_TRUE(contains(out, "udp: 1232")) << out;
  auto at = out.find("MSG SIZE  rcvd: ");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_LE(std::stoi(out.substr(at + 16)), 1232) << out;
  // Without EDNS: 512.
  out = dig("big.example.test TXT +noedns +ignore");
  EXPECT_TRUE(contains(out, " tc ")) << out;
  settle();
  EXPECT_EQ(stats().count(dns::service_stats::truncated), 2);
}

// A reload swaps the zone for new queries on a running service, also with
// queries in flight; a bad file keeps the old zone.
TEST_F(DnsService, ReloadAnswersNewQueriesFromTheNewZone) {
  std::string path = ::testing::TempDir() + "mayfly_dns_service_reload_"
                     + std::to_string(::getpid()) + ".zone";
  auto write = [&](const char* addr) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fprintf(f,
                 "$ORIGIN example.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n"
                 "www A %s\n",
                 addr);
    std::fclose(f);
  };
  write("192.0.2.1");
  auto z = dns::load_zone_file(path);
  ASSERT_TRUE(z.ok) << z.message;
  svc_ = std::make_unique<dns::service>(std::move(z.value), path);
  start();
  test::udp_client client{endpoint->local_address()};
  auto ask = [&](uint16_t id) -> std::string {
    if (!client.send(
          dns::test::make_query("www.example.test", dns::type::a, id)))
      return "send failed";
    auto reply = client.receive();
    if (!reply)
      return "no reply";
    auto d = dns::test::decode(*reply);
    auto ans = d.in(dns::section::answer);
    return ans.size() == 1 ? ans[0].rdata
                           : "answers: " + std::to_string(ans.size());
  };
  EXPECT_EQ(ask(1), "192.0.2.1");
  write("192.0.2.2");
  EXPECT_TRUE(svc_->reload().ok);
  EXPECT_EQ(ask(2), "192.0.2.2");
  write("192.0.2.999");
  EXPECT_FALSE(svc_->reload().ok);
  EXPECT_EQ(ask(3), "192.0.2.2");
  // Reloads while queries are in flight: every query is answered from one
  // zone or the other, whole.
  constexpr int total = 100;
  for (int i = 0; i < total; ++i) {
    ASSERT_TRUE(client.send(dns::test::make_query(
      "www.example.test", dns::type::a, static_cast<uint16_t>(100 + i))));
    if (i % 10 == 0) {
      write(i % 20 == 0 ? "192.0.2.3" : "192.0.2.2");
      EXPECT_TRUE(svc_->reload().ok);
    }
  }
  int got = 0;
  for (int i = 0; i < total; ++i) {
    auto reply = client.receive();
    if (!reply)
      break;
    auto ans = dns::test::decode(*reply).in(dns::section::answer);
    ASSERT_EQ(ans.size(), 1u);
    EXPECT_TRUE(ans[0].rdata == "192.0.2.2" || ans[0].rdata == "192.0.2.3")
      << ans[0].rdata;
    ++got;
  }
  EXPECT_EQ(got, total);
  settle();
  EXPECT_EQ(stats().count(dns::service_stats::reloads), 11);
  EXPECT_EQ(stats().count(dns::service_stats::reload_failures), 1);
  EXPECT_EQ(stats().count(dns::service_stats::rc_noerror), total + 3);
  ::unlink(path.c_str());
}

} // namespace

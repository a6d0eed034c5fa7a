// The stats endpoint's security properties (docs/stats.md "Security",
// docs/reliability.md), beyond what stats_endpoint_test.cpp checks for
// /stats alone: only GET (and HEAD) of "/", "/stats" and "/metrics" answer
// 200; every other path is 404 and every other method is refused on every
// path, with no statistics in the refusal; no payload bytes and no peer
// address appear in any response, whether the datagram fit a standard slot
// or spilled into a jumbo one.
//
// Requests are written by hand over TCP with timeouts: every wait is
// bounded and nothing asserts on time.

#include <mayfly/net/stats_endpoint.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include "tests/support/small_runtime.hpp"
#include "tests/support/loopback_endpoints.hpp"
#include "tests/support/net_clients.hpp"

namespace {

using namespace mayfly;

class StatsSecurity : public ::testing::Test {
protected:
  void SetUp() override {
    auto made = runtime::make(test::small_runtime_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    auto& h = test::add_echo_handler(*rt);
    rt->start();
    udp = test::open_udp_on_loopback(*rt, h);
    ASSERT_NE(udp, nullptr);
    auto* st = test::open_stats_on_loopback(*rt);
    ASSERT_NE(st, nullptr);
    http = st->local_address();
  }

  void TearDown() override {
    test::stop_and_expect_balanced(rt);
  }

  std::unique_ptr<runtime> rt;
  udp_endpoint* udp = nullptr;
  udp_address http;
};

TEST_F(StatsSecurity, OnlyTheThreePathsAnswer) {
  for (auto target : {"/", "/stats", "/stats?pretty", "/metrics"}) {
    EXPECT_EQ(test::http_request(http, "GET", target).status, 200) << target;
    EXPECT_EQ(test::http_request(http, "HEAD", target).status, 200) << target;
  }
  for (auto target :
       {"/stats.json", "/STATS", "/Stats", "/metrics/", "/stats/x", "//stats",
        "/index.html", "/favicon.ico", "/config", "/debug", "/admin",
        "/shutdown", "/stop", "/stats/../metrics/x"}) {
    auto r = test::http_request(http, "GET", target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.body.find("\"schema\""), std::string::npos) << target;
    EXPECT_EQ(test::http_request(http, "HEAD", target).status, 404) << target;
  }
  // Traversal and junk: refused one way or another, never served.
  for (auto target : {"/..", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                      "/stats%00", "*"}) {
    auto r = test::http_request(http, "GET", target);
    EXPECT_NE(r.status, 200) << target;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << target;
    EXPECT_EQ(r.body.find("\"schema\""), std::string::npos) << target;
  }
}

TEST_F(StatsSecurity, EveryOtherMethodIsRefusedOnEveryPath) {
  for (auto target : {"/", "/stats", "/metrics", "/nope"}) {
    for (auto method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"}) {
      auto r = test::http_request(http, method, target, "x=1");
      EXPECT_EQ(r.status, 405) << method << " " << target;
      EXPECT_NE(r.head.find("Allow: GET, HEAD"), std::string::npos)
        << method << " " << target << ": " << r.head;
      EXPECT_EQ(r.body.find("\"schema\""), std::string::npos)
        << method << " " << target;
      EXPECT_EQ(r.body.find("mayfly_"), std::string::npos)
        << method << " " << target;
    }
    // Methods HTTP does not define: a bad request, never the document.
    for (auto method : {"FOO", "get", "GETT"}) {
      auto r = test::http_request(http, method, target);
      EXPECT_NE(r.status, 200) << method << " " << target;
      EXPECT_EQ(r.body.find("\"schema\""), std::string::npos)
        << method << " " << target;
    }
  }
  // The endpoint still serves after all that.
  EXPECT_EQ(test::http_request(http, "GET", "/stats").status, 200);
}

TEST_F(StatsSecurity, NoPayloadBytesOrPeerAddressesInAnyResponse) {
  test::udp_client small{udp->local_address()};
  test::udp_client large{udp->local_address()};
  const std::string marker = "MAYFLY-PAYLOAD-MARKER-5b1e";
  ASSERT_TRUE(small.send(marker));
  ASSERT_TRUE(small.receive());
  // A jumbo datagram (spilled past a standard slot), the marker at its end.
  ASSERT_TRUE(large.send(std::string(5000, 'p') + marker));
  ASSERT_TRUE(large.receive());
  // The clients' own addresses, as the server saw them.
  std::vector<std::string> peers;
  for (int fd : {small.fd(), large.fd()}) {
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    peers.push_back("127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
  }
  for (auto target : {"/", "/stats", "/stats?pretty", "/metrics"}) {
    auto r = test::http_request(http, "GET", target);
    ASSERT_EQ(r.status, 200) << target;
    EXPECT_EQ(r.body.find("MAYFLY-PAYLOAD"), std::string::npos) << target;
    EXPECT_EQ(r.body.find("ppppppppppppppppp"), std::string::npos) << target;
    for (auto& p : peers)
      EXPECT_EQ(r.body.find(p), std::string::npos) << target << " shows " << p;
  }
}

} // namespace

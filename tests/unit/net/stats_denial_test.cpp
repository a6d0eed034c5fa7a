// Issue 18, item 3: the stats endpoint under slow clients and with Host
// headers that must be refused, on real loopback sockets.
//
// - 64 clients sending a header byte a second do not stall a GET: it is
//   answered while they are all still connected (before the fix, 4 of them
//   held every pool thread and 20–30 made the endpoint answer 503 to all).
// - A client that keeps sending but never finishes its head is cut at the
//   request deadline, counted under `timeouts`.
// - Duplicate Host headers, a missing Host on HTTP/1.1 and a foreign Host on
//   a wildcard bind are refused (DNS rebinding).
//
// Every wait is bounded; nothing asserts on time beyond bounds only a stall
// would exceed.

#include <mayfly/net/stats_endpoint.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <mayfly/actors/runtime.hpp>
#include "tests/support/net_clients.hpp"
#include "tests/support/small_runtime.hpp"

namespace {

using namespace mayfly;
using json = nlohmann::json;

/// A raw TCP connection to the endpoint, with 10 s send and receive
/// timeouts (the slow clients outlast the request deadline).
struct raw_client : test::tcp_client {
  explicit raw_client(const udp_address& to) : tcp_client(to, 10000) {
  }
};

using test::status_of;

/// The JSON body of a whole response (discarded if none).
json body_of(const std::string& response) {
  auto end = response.find("\r\n\r\n");
  if (end == std::string::npos)
    return json(json::value_t::discarded);
  return json::parse(response.substr(end + 4), nullptr, false);
}

/// One request (Connection: close) with the given header lines.
std::string round_trip(const udp_address& to, const std::string& request) {
  raw_client c{to};
  EXPECT_TRUE(c.connected());
  EXPECT_TRUE(c.send(request));
  return c.read_all();
}

class StatsDenial : public ::testing::Test {
protected:
  void SetUp() override {
    auto made = runtime::make(test::small_runtime_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    rt->start();
  }

  void TearDown() override {
    test::stop_and_expect_balanced(rt);
  }

  stats_endpoint& open(const char* address, stats_endpoint_limits lim = {}) {
    auto ep = stats_endpoint::open(*rt, *udp_address::parse(address), lim);
    EXPECT_TRUE(ep) << ep.error().message();
    return **ep;
  }

  /// `at` with its host replaced by loopback (a wildcard bind's port).
  static udp_address loopback_of(const stats_endpoint& ep) {
    auto port = std::to_string(ep.local_address().port());
    return *udp_address::parse(ep.local_address().is_v6() ? "[::1]:" + port
                                                          : "127.0.0.1:" + port);
  }

  std::unique_ptr<runtime> rt;
};

// -- slow clients --------------------------------------------------------------

TEST_F(StatsDenial, GetSucceedsWhile64SlowClientsAreConnected) {
  stats_endpoint_limits lim;
  lim.request_timeout_ms = 120000; // the slow clients are not cut meanwhile
  auto& ep = open("127.0.0.1:0", lim);
  auto at = ep.local_address();
  constexpr int kSlow = 64;
  std::vector<std::unique_ptr<raw_client>> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<raw_client>(at));
    ASSERT_TRUE(slow.back()->connected()) << i;
    ASSERT_TRUE(slow.back()->send("G")) << i;
  }
  ASSERT_TRUE(test::eventually(
    [&] { return ep.stats()["connections_live"].get<int64_t>() == kSlow; }));
  // One more header byte a second from each, as the attack did, until the
  // GET below is done (bounded: 30 rounds).
  std::atomic<bool> done{false};
  std::thread drip{[&] {
    static constexpr char kHead[] = "ET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (size_t round = 0; round < 30 && !done; ++round) {
      for (auto& c : slow)
        c->send(std::string(1, kHead[round % (sizeof(kHead) - 1)]));
      for (int i = 0; i < 10 && !done; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }};
  // The GET: answered whole while the slow clients hold their connections.
  auto response = round_trip(
    at, "GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  done = true;
  drip.join();
  EXPECT_EQ(status_of(response), 200) << response.substr(0, 200);
  EXPECT_FALSE(body_of(response).is_discarded());
  int still_open = 0;
  for (auto& c : slow)
    still_open += !c->closed_by_peer(false);
  EXPECT_EQ(still_open, kSlow);
  auto mine = ep.stats();
  EXPECT_EQ(mine["rejected"], 0);
  EXPECT_EQ(mine["timeouts"], 0);
  EXPECT_EQ(mine["connections_live"].get<int64_t>(), kSlow);
}

TEST_F(StatsDenial, SlowClientsAreCutAfterTheHeaderDeadline) {
  stats_endpoint_limits lim;
  lim.request_timeout_ms = 300;
  auto& ep = open("127.0.0.1:0", lim);
  constexpr int kSlow = 8;
  std::vector<std::unique_ptr<raw_client>> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<raw_client>(ep.local_address()));
    ASSERT_TRUE(slow.back()->connected());
  }
  // Never idle (a byte every 100 ms), never a whole head: only a deadline
  // on the whole request cuts them. Bounded: 100 rounds (10 s).
  std::vector<bool> cut(kSlow, false);
  int left = kSlow;
  for (int round = 0; round < 100 && left > 0; ++round) {
    for (int i = 0; i < kSlow; ++i) {
      if (cut[i])
        continue;
      if (slow[i]->closed_by_peer(false) || !slow[i]->send("X")) {
        cut[i] = true;
        --left;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(left, 0) << "slow clients still connected after 10 s";
  EXPECT_GE(ep.stats()["timeouts"].get<int64_t>(), kSlow);
  EXPECT_TRUE(test::eventually(
    [&] { return ep.stats()["connections_live"].get<int64_t>() == 0; }));
  // And the endpoint serves on.
  auto response = round_trip(
    ep.local_address(),
    "GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(response), 200);
}

TEST_F(StatsDenial, IdleKeepAliveClosingIsNotATimeout) {
  // Browsers keep connections open between polls: one closing after
  // keep_alive_timeout_ms without a new request is not an attack.
  stats_endpoint_limits lim;
  lim.keep_alive_timeout_ms = 100;
  auto& ep = open("127.0.0.1:0", lim);
  raw_client c{ep.local_address()};
  ASSERT_TRUE(c.send("GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  auto response = c.read_all(); // up to the server's close (keep-alive end)
  EXPECT_EQ(status_of(response), 200);
  EXPECT_TRUE(test::eventually(
    [&] { return ep.stats()["connections_live"].get<int64_t>() == 0; }));
  EXPECT_EQ(ep.stats()["timeouts"], 0);
}

TEST_F(StatsDenial, MoreConnectionsThanTheLimitGet503) {
  stats_endpoint_limits lim;
  lim.max_connections = 2;
  auto& ep = open("127.0.0.1:0", lim);
  raw_client a{ep.local_address()};
  raw_client b{ep.local_address()};
  ASSERT_TRUE(a.send("GET /stats HTTP/1.1\r\nHost: 127.0"));
  ASSERT_TRUE(test::eventually(
    [&] { return ep.stats()["connections_live"].get<int64_t>() == 2; }));
  auto refused = raw_client{ep.local_address()}.read_all();
  EXPECT_EQ(status_of(refused), 503) << refused;
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos);
  EXPECT_EQ(body_of(refused)["error"], "busy");
  EXPECT_GE(ep.stats()["rejected"].get<int64_t>(), 1);
}

// -- Host ----------------------------------------------------------------------------

TEST_F(StatsDenial, DuplicateHostIs400) {
  auto& ep = open("127.0.0.1:0");
  for (auto second : {"evil.example", "127.0.0.1"}) {
    auto response = round_trip(ep.local_address(),
                             std::string{"GET /stats HTTP/1.1\r\n"
                                         "Host: 127.0.0.1\r\nHost: "}
                               + second + "\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(status_of(response), 400) << second;
    EXPECT_EQ(body_of(response)["error"], "bad request") << response;
  }
}

TEST_F(StatsDenial, MissingHostOnHttp11Is400) {
  auto& ep = open("127.0.0.1:0");
  auto response = round_trip(ep.local_address(),
                           "GET /stats HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(response), 400);
  EXPECT_EQ(body_of(response)["error"], "bad request") << response;
  // HTTP/1.0 may omit it.
  EXPECT_EQ(status_of(round_trip(ep.local_address(), "GET /stats HTTP/1.0\r\n\r\n")),
            200);
}

TEST_F(StatsDenial, WildcardBindRefusesForeignHost) {
  for (auto address : {"0.0.0.0:0", "[::]:0"}) {
    auto& ep = open(address);
    auto at = loopback_of(ep);
    auto port = std::to_string(at.port());
    auto with_host = [&](const std::string& host) {
      return status_of(round_trip(at, "GET /stats HTTP/1.1\r\nHost: " + host
                                      + "\r\nConnection: close\r\n\r\n"));
    };
    EXPECT_EQ(with_host("evil.example:" + port), 403) << address;
    EXPECT_EQ(with_host("evil.example"), 403) << address;
    EXPECT_EQ(with_host("127.0.0.1.evil.example"), 403) << address;
    EXPECT_EQ(with_host("127.0.0.1:" + port), 200) << address;
    EXPECT_EQ(with_host("localhost:" + port), 200) << address;
    EXPECT_EQ(with_host("[::1]:" + port), 200) << address;
  }
}

TEST_F(StatsDenial, AllowedHostsAreAcceptedOthersRefused) {
  stats_endpoint_limits lim;
  lim.allowed_hosts = {"Stats.Example."};
  auto& ep = open("0.0.0.0:0", lim);
  auto at = loopback_of(ep);
  auto with_host = [&](const std::string& host) {
    return status_of(round_trip(at, "GET /stats HTTP/1.1\r\nHost: " + host
                                    + "\r\nConnection: close\r\n\r\n"));
  };
  EXPECT_EQ(with_host("stats.example:" + std::to_string(at.port())), 200);
  EXPECT_EQ(with_host("STATS.EXAMPLE"), 200);
  EXPECT_EQ(with_host("other.example"), 403);
  EXPECT_EQ(with_host("stats.example.evil"), 403);
}

TEST_F(StatsDenial, OpenRefusesBadAllowedHostsAndConnectionLimits) {
  stats_endpoint_limits lim;
  lim.allowed_hosts = {"bad name/"};
  auto r = stats_endpoint::open(*rt, *udp_address::parse("127.0.0.1:0"), lim);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "stats.allowed_hosts");
  lim = {};
  lim.max_connections = 0;
  r = stats_endpoint::open(*rt, *udp_address::parse("127.0.0.1:0"), lim);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "stats.max_connections");
}

} // namespace

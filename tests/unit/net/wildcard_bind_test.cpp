// Issue 16: an endpoint bound to a wildcard (0.0.0.0, [::]) answers each
// datagram from the address it arrived at, as a connected client (dig)
// requires: real loopback sockets connected to 127.0.0.2, 127.0.0.3, ::1
// and, through a dual-stack [::], to 127.0.0.2 as v4-mapped; on every
// receive path, with GSO, with handlers on the IO thread and on workers.
// The handler answers with `d.local_address()` as text, so each reply shows
// what the handler saw; that the connected client receives it at all shows
// the reply's source. Every test ends balanced.

#include <mayfly/net/udp_endpoint.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include <mayfly/actors/runtime.hpp>
#include "tests/support/small_runtime.hpp"
#include "tests/support/net_clients.hpp"

namespace {

using namespace mayfly;

/// Whether ::1 is configured (it is, unless IPv6 is disabled).
bool has_ipv6_loopback() {
  int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  auto any = *udp_address::parse("[::1]:0");
  bool ok = ::bind(fd, any.sockaddr_ptr(), any.size()) == 0;
  ::close(fd);
  return ok;
}

#define SKIP_WITHOUT_IPV6_LOOPBACK()                                           \
  do {                                                                         \
    if (!has_ipv6_loopback())                                                  \
      GTEST_SKIP() << "::1 is not configured on this machine (IPv6 "           \
                      "disabled): nothing to bind an IPv6 client to";          \
  } while (false)

class WildcardBind : public ::testing::Test {
protected:
  /// An endpoint on `address` (port 0) whose handler replies `copies`
  /// times with its datagram's local address as text.
  void start(endpoint_config ec, const char* address, int copies = 1) {
    auto cfg = test::small_runtime_config();
    cfg.memory.buffers.jumbo_capacity = 32; // GRO receives into jumbo slots
    auto made = runtime::make(cfg);
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    // --8<-- [start:local-address]
    auto& h = rt->add_handler("where", [copies](handler_context& ctx,
                                               const datagram& d) {
      // Where `d` arrived, e.g. "127.0.0.2:5353"; its replies leave from it.
      auto text = d.local_address().to_string();
      for (int i = 0; i < copies; ++i)
        ctx.reply(std::string_view{text});
    });
    // --8<-- [end:local-address]
    ec.address = *udp_address::parse(address);
    auto ep = udp_endpoint::open(*rt, h, ec);
    ASSERT_TRUE(ep) << ep.error().message();
    endpoint = *ep;
    rt->start();
  }

  void TearDown() override {
    test::stop_and_expect_balanced(rt);
  }

  nlohmann::json net_stats() {
    return rt->collect_stats()["net"][endpoint->name()];
  }

  /// `host` at the endpoint's port.
  udp_address at(const char* host) const {
    return *udp_address::parse(host, endpoint->local_address().port());
  }

  /// A client connected to `host`:port sends one request and must get
  /// `copies` replies (a connected socket drops any from another source),
  /// each naming `expected_local` (default: what it connected to).
  void expect_answered_from(const char* host, int copies = 1,
                            const char* expected_local = nullptr) {
    auto to = at(host);
    auto expected = expected_local != nullptr
                      ? at(expected_local).to_string()
                      : to.to_string();
    test::udp_client client{to};
    ASSERT_TRUE(client.send("where did this arrive?"));
    for (int i = 0; i < copies; ++i) {
      auto reply = client.receive();
      ASSERT_TRUE(reply) << "no reply " << i << " from " << to.to_string()
                         << ": it left from another address";
      EXPECT_EQ(*reply, expected);
    }
  }

  /// Waits (bounded) until the IO thread counted `n` replies out.
  void wait_out(int64_t n) {
    for (int i = 0; i < 2000 && net_stats()["datagrams_out"] < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  void expect_every_v4_loopback_address() {
    for (const char* host : {"127.0.0.2", "127.0.0.3", "127.0.0.1"})
      expect_answered_from(host);
    wait_out(3);
    auto st = net_stats();
    EXPECT_EQ(st["reply_from_destination"], true);
    EXPECT_EQ(st["pktinfo_missing"], 0);
    EXPECT_EQ(st["datagrams_out"], 3);
  }

  std::unique_ptr<runtime> rt;
  udp_endpoint* endpoint = nullptr;
};

TEST_F(WildcardBind, RepliesFromEachDestinationOnRecvmmsg) {
  start({}, "0.0.0.0:0");
  ASSERT_EQ(net_stats()["receive_path"], "recvmmsg");
  expect_every_v4_loopback_address();
}

TEST_F(WildcardBind, RepliesFromEachDestinationOnGro) {
  endpoint_config ec;
  ec.receive_path = receive_path::gro;
  start(ec, "0.0.0.0:0");
  if (net_stats()["receive_path"] != "gro")
    GTEST_SKIP() << "this kernel refused UDP_GRO (needs Linux 5.0+)";
  expect_every_v4_loopback_address();
}

TEST_F(WildcardBind, RepliesFromEachDestinationOnIoUring) {
  endpoint_config ec;
  ec.receive_path = receive_path::io_uring;
  start(ec, "0.0.0.0:0");
  if (net_stats()["receive_path"] != "io_uring")
    GTEST_SKIP() << "io_uring receive is unavailable here (kernel 6.0+ "
                    "with io_uring enabled and liburing needed)";
  expect_every_v4_loopback_address();
}

TEST_F(WildcardBind, RepliesFromEachDestinationWithHandlersOnWorkers) {
  // Replies made on CAF workers cross the reply queue with their source.
  endpoint_config ec;
  ec.handler_start = handler_start::workers;
  start(ec, "0.0.0.0:0");
  expect_every_v4_loopback_address();
}

TEST_F(WildcardBind, GsoRepliesKeepTheirSource) {
  // Eight same-size replies to one peer: one GSO message, with the source
  // address beside UDP_SEGMENT.
  endpoint_config ec;
  ec.gso = true;
  start(ec, "0.0.0.0:0", 8);
  if (net_stats()["gso"] != true)
    GTEST_SKIP() << "this kernel has no UDP GSO";
  expect_answered_from("127.0.0.2", 8);
  expect_answered_from("127.0.0.3", 8);
  wait_out(16);
  auto st = net_stats();
  EXPECT_GE(st["gso_sends"], 2);
  EXPECT_EQ(st["gso_segments"], 16);
  EXPECT_EQ(st["gso_errors"], 0);
}

TEST_F(WildcardBind, OnePeerTwoDestinationsGetsEachReplyFromItsOwn) {
  // One unconnected client socket (one peer address) asks 127.0.0.2 and
  // 127.0.0.3 at once: the replies may share a batch, and must not share
  // a GSO message or a source.
  endpoint_config ec;
  ec.gso = true;
  start(ec, "0.0.0.0:0", 4);
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  for (const char* host : {"127.0.0.2", "127.0.0.3"}) {
    auto to = at(host);
    ASSERT_EQ(::sendto(fd, "q", 1, 0, to.sockaddr_ptr(), to.size()), 1);
  }
  std::map<std::string, int> from_count;
  for (int i = 0; i < 8; ++i) {
    char buf[128];
    udp_address from;
    socklen_t len = udp_address::capacity();
    auto n = ::recvfrom(fd, buf, sizeof(buf), 0, from.sockaddr_ptr(), &len);
    ASSERT_GT(n, 0) << "reply " << i << " missing";
    auto source = udp_address{from.sockaddr_ptr(), len}.to_string();
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), source)
      << "a reply left from another address than its request reached";
    ++from_count[source];
  }
  ::close(fd);
  EXPECT_EQ(from_count[at("127.0.0.2").to_string()], 4);
  EXPECT_EQ(from_count[at("127.0.0.3").to_string()], 4);
}

TEST_F(WildcardBind, Ipv6WildcardRepliesFromLoopback) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  start({}, "[::]:0", 2);
  expect_answered_from("::1", 2);
  EXPECT_EQ(net_stats()["pktinfo_missing"], 0);
}

TEST_F(WildcardBind, DualStackRepliesToIpv4FromTheV4MappedDestination) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  endpoint_config ec;
  ec.dual_stack = true;
  start(ec, "[::]:0", 2);
  // IPv4 clients: the handler sees [::ffff:127.0.0.x], as the peer.
  expect_answered_from("127.0.0.2", 2, "::ffff:127.0.0.2");
  expect_answered_from("127.0.0.3", 2, "::ffff:127.0.0.3");
  expect_answered_from("::1", 2);
  wait_out(6);
  EXPECT_EQ(net_stats()["pktinfo_missing"], 0);
}

TEST_F(WildcardBind, DualStackWithGsoOnIoUring) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  endpoint_config ec;
  ec.dual_stack = true;
  ec.receive_path = receive_path::io_uring;
  start(ec, "[::]:0", 4);
  if (net_stats()["receive_path"] != "io_uring")
    GTEST_SKIP() << "io_uring receive is unavailable here";
  expect_answered_from("127.0.0.2", 4, "::ffff:127.0.0.2");
  expect_answered_from("::1", 4);
}

TEST_F(WildcardBind, ASpecificBindAsksForNoDestinationAddress) {
  start({}, "127.0.0.1:0");
  expect_answered_from("127.0.0.1");
  EXPECT_EQ(net_stats()["reply_from_destination"], false);
}

TEST(WildcardBindConfig, ParsesDualStack) {
  auto cfg = parse_endpoint_config(
    nlohmann::json::parse(R"({"net": {"dual_stack": true}})"));
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_TRUE(cfg->dual_stack);
  EXPECT_FALSE(parse_endpoint_config(nlohmann::json::object())->dual_stack);
}

} // namespace

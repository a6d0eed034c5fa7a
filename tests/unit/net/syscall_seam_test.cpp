// What the kernel can do to the receive and send paths, injected through
// the `socket_calls` seam (net/internal/socket_calls.hpp) under a real
// endpoint on loopback: EAGAIN, EINTR, ENOBUFS, EMSGSIZE, ECONNREFUSED, a
// partial sendmmsg, MSG_TRUNC, MSG_CTRUNC. Each test shows that nothing is
// lost silently: every datagram is delivered, retried, or counted under a
// named reason in the endpoint's statistics. Every test ends balanced.

#include <mayfly/net/udp_endpoint.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include <mayfly/actors/runtime.hpp>
#include "fake_socket_calls.hpp"
#include "tests/support/small_runtime.hpp"
#include "tests/support/net_clients.hpp"

namespace {

using namespace mayfly;
using test::fake_action;
using test::fake_socket_calls;

class SeamTest : public ::testing::Test {
protected:
  /// An endpoint whose handler answers each request `copies` times (the
  /// request's bytes, plus "#i" after the first so the replies differ in
  /// size and never form one GSO message unless `same_size`).
  void start(int copies = 1, endpoint_config ec = {},
             runtime_config cfg = test::small_runtime_config(),
             bool same_size = false) {
    auto made = runtime::make(cfg);
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    auto& h = rt->add_handler("echo", [copies, same_size](handler_context& ctx,
                                                          const datagram& d) {
      ctx.reply(d.payload);
      for (int i = 1; i < copies; ++i) {
        auto text = std::string{d.payload.view()};
        if (!same_size)
          text += "#" + std::string(static_cast<size_t>(i), 'x');
        ctx.reply(std::string_view{text});
      }
    });
    if (ec.address.family() == AF_UNSPEC)
      ec.address = *udp_address::parse("127.0.0.1:0");
    auto ep = udp_endpoint::open(*rt, h, ec);
    ASSERT_TRUE(ep) << ep.error().message();
    endpoint = *ep;
    rt->start();
    client = std::make_unique<test::udp_client>(endpoint->local_address(), 500);
  }

  /// `start` on 0.0.0.0, with the client connected to `host` at its port.
  void start_wildcard(int copies, const char* host) {
    endpoint_config ec;
    ec.address = *udp_address::parse("0.0.0.0:0");
    start(copies, ec);
    auto port = endpoint->local_address().port();
    client = std::make_unique<test::udp_client>(
      *udp_address::parse(host, port), 500);
  }

  void TearDown() override {
    client.reset();
    test::stop_and_expect_balanced(rt);
  }

  nlohmann::json stats() {
    return rt->collect_stats()["net"][endpoint->name()];
  }

  /// Waits (bounded) until the IO thread counted `n` replies out.
  void wait_out(int64_t n) {
    for (int i = 0; i < 2000 && stats()["datagrams_out"] < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  /// Sends `text` and expects it back.
  void round_trip(const std::string& text) {
    ASSERT_TRUE(client->send(text));
    auto reply = client->receive();
    ASSERT_TRUE(reply) << "no reply to " << text;
    EXPECT_EQ(*reply, text);
  }

  test::scoped_socket_calls calls; // before the runtime: outlives its loops
  std::unique_ptr<runtime> rt;
  udp_endpoint* endpoint = nullptr;
  std::unique_ptr<test::udp_client> client;
};

fake_socket_calls& fake() {
  return fake_socket_calls::instance();
}

// -- receive ------------------------------------------------------------------------

TEST_F(SeamTest, ReceiveEagainLeavesTheDatagramForTheNextRound) {
  start();
  fake().on_recv({fake_action::fail, EAGAIN});
  round_trip("after a spurious EAGAIN");
  EXPECT_EQ(fake().left(), 0u);
  auto st = stats();
  EXPECT_EQ(st["datagrams_in"], 1);
  EXPECT_EQ(st["recv_errors"], 0);
}

TEST_F(SeamTest, ReceiveEintrIsRetried) {
  start();
  fake().on_recv({fake_action::fail, EINTR});
  fake().on_recv({fake_action::fail, EINTR});
  round_trip("interrupted twice");
  EXPECT_EQ(fake().left(), 0u);
  EXPECT_EQ(stats()["recv_errors"], 0);
}

TEST_F(SeamTest, ReceiveErrorReportsAreCountedAndLoseNoDatagram) {
  // ECONNREFUSED: the kernel reports an ICMP error for an earlier reply on
  // the next receive; ENOBUFS: no memory for the call. Neither consumes a
  // datagram: the one waiting is read in the next round.
  start();
  fake().on_recv({fake_action::fail, ECONNREFUSED});
  fake().on_recv({fake_action::fail, ENOBUFS});
  round_trip("still here");
  EXPECT_EQ(fake().left(), 0u);
  auto st = stats();
  EXPECT_EQ(st["recv_errors"], 2);
  EXPECT_EQ(st["datagrams_in"], 1);
}

TEST_F(SeamTest, TruncatedDatagramIsCountedNeverDelivered) {
  start();
  fake().on_recv({fake_action::set_flags, 0, 0, MSG_TRUNC});
  ASSERT_TRUE(client->send("cut short"));
  EXPECT_FALSE(client->receive()); // never delivered as if whole
  round_trip("the next one is whole");
  auto st = stats();
  EXPECT_EQ(st["truncated"], 1);
  EXPECT_EQ(st["datagrams_in"], 1);
}

TEST_F(SeamTest, ControlTruncationOnTheDefaultPathDeliversTheWholePayload) {
  // The default path asks for no control message, so a lost one loses
  // nothing: the payload is whole and delivered.
  start();
  fake().on_recv({fake_action::set_flags, 0, 0, MSG_CTRUNC});
  round_trip("payload intact");
  EXPECT_EQ(stats()["control_truncated"], 0);
}

TEST_F(SeamTest, ControlTruncationOnGroIsCountedNeverGuessed) {
  // With GRO the control message carries the segment size: without it a
  // receive cannot be split safely, so it is dropped and counted.
  endpoint_config ec;
  ec.receive_path = receive_path::gro;
  auto cfg = test::small_runtime_config();
  cfg.memory.buffers.jumbo_capacity = 32;
  start(1, ec, cfg);
  if (stats()["receive_path"] != "gro")
    GTEST_SKIP() << "this kernel refused UDP_GRO";
  fake().on_recv({fake_action::set_flags, 0, 0, MSG_CTRUNC});
  ASSERT_TRUE(client->send("segment size lost"));
  EXPECT_FALSE(client->receive());
  round_trip("the next one is fine");
  EXPECT_EQ(stats()["control_truncated"], 1);
}

// -- the destination address on a wildcard bind (issue 16) ---------------------------

TEST_F(SeamTest, DatagramWithoutPktinfoIsAnsweredFromTheDefaultSourceAndCounted) {
  // A wildcard-bound endpoint whose kernel sends no IP_PKTINFO for one
  // datagram (or cut it: MSG_CTRUNC): that datagram is still answered,
  // from the source the kernel picks (127.0.0.1 here), and counted.
  start_wildcard(1, "127.0.0.1");
  fake().on_recv({fake_action::strip_control});
  round_trip("no pktinfo");
  fake().on_recv({fake_action::strip_control, 0, 0, MSG_CTRUNC});
  round_trip("pktinfo cut off");
  round_trip("pktinfo present");
  EXPECT_EQ(fake().left(), 0u);
  auto st = stats();
  EXPECT_EQ(st["pktinfo_missing"], 2);
  EXPECT_EQ(st["datagrams_in"], 3);
  EXPECT_EQ(st["control_truncated"], 0);
}

TEST_F(SeamTest, PartialSendmmsgKeepsEachReplysSource) {
  // Replies that wait for the next sendmmsg keep the address they leave
  // from: a client connected to 127.0.0.2 gets all three.
  start_wildcard(3, "127.0.0.2");
  fake().on_send({fake_action::partial, 0, 1});
  fake().on_send({fake_action::fail, EAGAIN});
  ASSERT_TRUE(client->send("abc"));
  for (const char* want : {"abc", "abc#x", "abc#xx"}) {
    auto reply = client->receive();
    ASSERT_TRUE(reply) << want << " lost or sent from another address";
    EXPECT_EQ(*reply, want);
  }
  EXPECT_EQ(stats()["pktinfo_missing"], 0);
}

// -- send ---------------------------------------------------------------------------

TEST_F(SeamTest, SendEagainWaitsForTheSocketAndSendsEverything) {
  start(3);
  fake().on_send({fake_action::fail, EAGAIN});
  ASSERT_TRUE(client->send("blocked"));
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(client->receive()) << i;
  wait_out(3);
  auto st = stats();
  EXPECT_EQ(st["send_blocked"], 1);
  EXPECT_EQ(st["datagrams_out"], 3);
  EXPECT_EQ(st["send_errors"], 0);
}

TEST_F(SeamTest, SendEintrIsRetried) {
  start();
  fake().on_send({fake_action::fail, EINTR});
  round_trip("interrupted send");
  EXPECT_EQ(stats()["send_retries"], 1);
}

TEST_F(SeamTest, SendEnobufsBacksOffAndSendsEverything) {
  start(2);
  fake().on_send({fake_action::fail, ENOBUFS});
  fake().on_send({fake_action::fail, ENOBUFS});
  ASSERT_TRUE(client->send("no buffers"));
  ASSERT_TRUE(client->receive());
  ASSERT_TRUE(client->receive());
  wait_out(2);
  auto st = stats();
  EXPECT_EQ(st["send_blocked"], 2);
  EXPECT_EQ(st["datagrams_out"], 2);
  EXPECT_EQ(st["send_errors"], 0);
}

TEST_F(SeamTest, SendEmsgsizeDropsThatReplyCountedAndSendsTheRest) {
  start(3);
  fake().on_send({fake_action::fail, EMSGSIZE});
  ASSERT_TRUE(client->send("too large, said the kernel"));
  ASSERT_TRUE(client->receive());
  ASSERT_TRUE(client->receive());
  EXPECT_FALSE(client->receive()); // the first reply was refused
  wait_out(2);
  auto st = stats();
  EXPECT_EQ(st["send_dropped_too_large"], 1);
  EXPECT_EQ(st["send_errors"], 1);
  EXPECT_EQ(st["datagrams_out"], 2);
}

TEST_F(SeamTest, SendConnectionRefusedOnceIsAnErrorReportAndRetried) {
  start();
  fake().on_send({fake_action::fail, ECONNREFUSED});
  round_trip("an earlier reply's ICMP error");
  auto st = stats();
  EXPECT_EQ(st["send_retries"], 1);
  EXPECT_EQ(st["send_errors"], 0);
}

TEST_F(SeamTest, SendConnectionRefusedTwiceDropsThatReplyCounted) {
  start(2);
  fake().on_send({fake_action::fail, ECONNREFUSED});
  fake().on_send({fake_action::fail, ECONNREFUSED});
  ASSERT_TRUE(client->send("refused"));
  ASSERT_TRUE(client->receive());
  EXPECT_FALSE(client->receive());
  wait_out(1);
  auto st = stats();
  EXPECT_EQ(st["send_dropped_unreachable"], 1);
  EXPECT_EQ(st["send_errors"], 1);
  EXPECT_EQ(st["datagrams_out"], 1);
}

TEST_F(SeamTest, PartialSendmmsgSendsTheRestNext) {
  start(5);
  fake().on_send({fake_action::partial, 0, 2});
  ASSERT_TRUE(client->send("five replies"));
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(client->receive()) << i;
  wait_out(5);
  auto st = stats();
  EXPECT_EQ(st["datagrams_out"], 5);
  EXPECT_EQ(st["send_calls"], 2);
  EXPECT_EQ(st["send_errors"], 0);
}

TEST_F(SeamTest, GsoRefusedByTheKernelIsResentOneByOne) {
  // Five replies of one size to one peer: one GSO message. The kernel
  // refuses it (EIO: no checksum offload): GSO goes off, the same five go
  // out one by one, counted once.
  endpoint_config ec;
  ec.gso = true;
  start(5, ec, test::small_runtime_config(), true);
  if (stats()["gso"] != true)
    GTEST_SKIP() << "this kernel has no UDP GSO";
  fake().on_send({fake_action::fail, EIO});
  ASSERT_TRUE(client->send("segmented"));
  for (int i = 0; i < 5; ++i) {
    auto reply = client->receive();
    ASSERT_TRUE(reply) << i;
    EXPECT_EQ(*reply, "segmented");
  }
  wait_out(5);
  auto st = stats();
  EXPECT_EQ(st["gso_errors"], 1);
  EXPECT_EQ(st["gso"], false);
  EXPECT_EQ(st["datagrams_out"], 5);
  EXPECT_EQ(st["send_errors"], 0);
}

} // namespace

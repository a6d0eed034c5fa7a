// The replier on its own (net/internal/replier.hpp), over a fake sendmmsg
// that records every message: grouping of one batch's replies by (peer,
// source, size) into GSO messages, the source address beside UDP_SEGMENT, the limits of a GSO message, order within a
// group, partial sends, and the pools back at zero afterwards.

#include <mayfly/net/internal/replier.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/unit/runtime/test_util.hpp"

namespace {

using namespace mayfly;
using detail::io_counters;
using detail::replier;
using detail::replier_env;

/// One message as the kernel would have seen it.
struct seen {
  udp_address to;
  uint16_t segment = 0; // UDP_SEGMENT, 0: none
  std::string from;     // IP_PKTINFO / IPV6_PKTINFO source, "": none
  std::vector<std::string> parts;
};

std::vector<std::vector<seen>> calls; // one entry per sendmmsg
unsigned take_at_most = ~0u;          // messages the fake kernel accepts

int fake_recv(int, mmsghdr*, unsigned) noexcept {
  return -EAGAIN;
}

int fake_send(int, mmsghdr* msgs, unsigned n) noexcept {
  n = std::min(n, take_at_most);
  take_at_most = ~0u;
  auto& call = calls.emplace_back();
  for (unsigned i = 0; i < n; ++i) {
    auto& hdr = msgs[i].msg_hdr;
    seen s;
    s.to = udp_address{static_cast<const sockaddr*>(hdr.msg_name),
                       hdr.msg_namelen};
    for (auto* c = CMSG_FIRSTHDR(&hdr); c != nullptr; c = CMSG_NXTHDR(&hdr, c))
      if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_SEGMENT) {
        std::memcpy(&s.segment, CMSG_DATA(c), sizeof(s.segment));
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof(info));
        char text[INET_ADDRSTRLEN];
        s.from = inet_ntop(AF_INET, &info.ipi_spec_dst, text, sizeof(text));
      } else if (c->cmsg_level == IPPROTO_IPV6
                 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof(info));
        char text[INET6_ADDRSTRLEN];
        s.from = inet_ntop(AF_INET6, &info.ipi6_addr, text, sizeof(text));
      }
    size_t bytes = 0;
    for (size_t k = 0; k < hdr.msg_iovlen; ++k) {
      auto& iov = hdr.msg_iov[k];
      s.parts.emplace_back(static_cast<const char*>(iov.iov_base), iov.iov_len);
      bytes += iov.iov_len;
    }
    msgs[i].msg_len = static_cast<unsigned>(bytes);
    call.push_back(std::move(s));
  }
  return static_cast<int>(n);
}

const detail::socket_calls fake_calls{fake_recv, fake_send};

class ReplierTest : public ::testing::Test {
protected:
  void SetUp() override {
    calls.clear();
    take_at_most = ~0u;
    auto cfg = test::small_pools_config(256, 16);
    cfg.standard_slot_size = 2048;
    cfg.jumbo_slot_size = 65536;
    pools = test::make_pools(cfg);
    ASSERT_TRUE(pools);
  }

  std::unique_ptr<replier> make(uint32_t batch, bool gso = true,
                                bool set_source = false) {
    replier_env env;
    env.fd = -1;
    env.pools = pools.get();
    env.calls = &fake_calls;
    env.counters = &counters;
    env.batch = batch;
    env.gso = gso;
    env.gso_max_segment = 1472;
    env.name = "test";
    env.set_source = set_source;
    return std::make_unique<replier>(env);
  }

  void TearDown() override {
    EXPECT_EQ(pools->outstanding(), 0);
  }

  std::unique_ptr<buffer_pools> pools;
  io_counters counters;
  udp_address a = *udp_address::parse("127.0.0.1:1001");
  udp_address b = *udp_address::parse("127.0.0.1:1002");
  udp_address c = *udp_address::parse("[::1]:1001");
};

std::string text(size_t n, char ch) {
  return std::string(n, ch);
}

TEST_F(ReplierTest, GroupsABatchByPeerAndSizeNotOnlyConsecutiveRuns) {
  auto r = make(32);
  // a, b, a, b, ... as replies to a client with two sockets arrive.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(r->add_copy(a, text(100, static_cast<char>('a' + i))));
    ASSERT_TRUE(r->add_copy(b, text(100, static_cast<char>('A' + i))));
  }
  ASSERT_TRUE(r->add_copy(a, text(50, 'z')));
  ASSERT_TRUE(r->add_copy(a, text(50, 'y')));
  ASSERT_TRUE(r->flush());
  ASSERT_EQ(calls.size(), 1u);
  auto& m = calls[0];
  ASSERT_EQ(m.size(), 3u); // (a,100) (b,100) (a,50): three messages
  EXPECT_EQ(m[0].to, a);
  EXPECT_EQ(m[0].segment, 100);
  EXPECT_EQ(m[0].parts,
            (std::vector<std::string>{text(100, 'a'), text(100, 'b'),
                                      text(100, 'c'), text(100, 'd')}));
  EXPECT_EQ(m[1].to, b);
  EXPECT_EQ(m[1].segment, 100);
  EXPECT_EQ(m[1].parts.size(), 4u);
  EXPECT_EQ(m[1].parts[0], text(100, 'A')); // order kept within a group
  EXPECT_EQ(m[2].to, a);
  EXPECT_EQ(m[2].segment, 50);
  EXPECT_EQ(m[2].parts, (std::vector<std::string>{text(50, 'z'),
                                                  text(50, 'y')}));
  EXPECT_EQ(counters.get(detail::gso_sends), 3);
  EXPECT_EQ(counters.get(detail::gso_segments), 10);
  EXPECT_EQ(counters.get(detail::datagrams_out), 10);
  EXPECT_EQ(counters.get(detail::bytes_out), 900);
  r->release_buffer();
}

TEST_F(ReplierTest, SamePortOtherFamilyIsAnotherPeer) {
  auto r = make(8);
  ASSERT_TRUE(r->add_copy(a, "xx"));
  ASSERT_TRUE(r->add_copy(c, "yy"));
  ASSERT_TRUE(r->flush());
  ASSERT_EQ(calls.at(0).size(), 2u);
  EXPECT_EQ(calls[0][0].segment, 0); // a group of one is a plain datagram
  EXPECT_EQ(calls[0][1].to, c);
  r->release_buffer();
}

TEST_F(ReplierTest, AGsoMessageHoldsAtMost64SegmentsAnd64KiB) {
  auto r = make(128);
  for (int i = 0; i < 70; ++i)
    ASSERT_TRUE(r->add_copy(a, text(1000, 'k')));
  ASSERT_TRUE(r->flush());
  ASSERT_EQ(calls.at(0).size(), 2u);
  EXPECT_EQ(calls[0][0].parts.size(), 64u);
  EXPECT_EQ(calls[0][1].parts.size(), 6u);
  calls.clear();
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(r->add_copy(b, text(1400, 'm')));
  ASSERT_TRUE(r->flush());
  ASSERT_EQ(calls.at(0).size(), 2u);
  EXPECT_EQ(calls[0][0].parts.size(), 46u); // 46 x 1400 <= 65507 < 47 x 1400
  EXPECT_EQ(calls[0][1].parts.size(), 4u);
  r->release_buffer();
}

TEST_F(ReplierTest, EmptyAndLargerThanOneMtuGoAlone) {
  auto r = make(16);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(r->add_copy(a, ""));
    ASSERT_TRUE(r->add_copy(a, text(1473, 'o')));
  }
  ASSERT_TRUE(r->flush());
  ASSERT_EQ(calls.at(0).size(), 6u);
  for (auto& m : calls[0]) {
    EXPECT_EQ(m.segment, 0);
    EXPECT_EQ(m.parts.size(), 1u);
  }
  EXPECT_EQ(counters.get(detail::gso_sends), 0);
  r->release_buffer();
}

TEST_F(ReplierTest, WithoutGsoEveryReplyIsItsOwnMessage) {
  auto r = make(16, false);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(r->add_copy(a, "same"));
  ASSERT_TRUE(r->flush());
  ASSERT_EQ(calls.at(0).size(), 5u);
  EXPECT_FALSE(r->gso());
  r->release_buffer();
}

TEST_F(ReplierTest, APartialSendSendsTheRestNextInOrder) {
  auto r = make(16, false);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(r->add_copy(a, std::string(1, static_cast<char>('0' + i))));
  take_at_most = 2;
  ASSERT_TRUE(r->flush());
  ASSERT_EQ(calls.size(), 2u);
  ASSERT_EQ(calls[0].size(), 2u);
  ASSERT_EQ(calls[1].size(), 3u);
  EXPECT_EQ(calls[0][0].parts[0], "0");
  EXPECT_EQ(calls[0][1].parts[0], "1");
  EXPECT_EQ(calls[1][0].parts[0], "2");
  EXPECT_EQ(calls[1][2].parts[0], "4");
  EXPECT_EQ(r->pending(), 0u);
  EXPECT_EQ(counters.get(detail::datagrams_out), 5);
  r->release_buffer();
}

TEST_F(ReplierTest, AFullBatchIsSentToMakeRoom) {
  // A handler that replies more than a batch: nothing is refused while the
  // socket takes what is sent.
  auto r = make(4);
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(r->add(a, slice::copy_of("zero-copy")));
  ASSERT_TRUE(r->flush());
  size_t sent = 0;
  for (auto& call : calls)
    for (auto& m : call)
      sent += m.parts.size();
  EXPECT_EQ(sent, 10u);
}

TEST_F(ReplierTest, ReleaseBufferGivesThePartlyFilledOneBack) {
  auto r = make(8);
  ASSERT_TRUE(r->add_copy(a, "48 bytes of reply, or so, packed in a slot......"));
  ASSERT_TRUE(r->flush());
  EXPECT_EQ(pools->outstanding(), 1); // the packer's current buffer
  r->release_buffer();
  EXPECT_EQ(pools->outstanding(), 0);
}

TEST_F(ReplierTest, DropPendingCountsWhatNeverLeft) {
  auto r = make(8);
  ASSERT_TRUE(r->add_copy(a, "one"));
  ASSERT_TRUE(r->add(b, slice::copy_of("two")));
  r->drop_pending();
  EXPECT_EQ(counters.get(detail::shutdown_reply_drops), 2);
  EXPECT_EQ(r->pending(), 0u);
  EXPECT_TRUE(calls.empty());
}

// -- the source address (issue 16) ---------------------------------------------------

TEST_F(ReplierTest, Issue16SourceSplitsGroupsAndRidesBesideUdpSegment) {
  auto r = make(32, true, true);
  auto s2 = *udp_address::parse("127.0.0.2:53");
  auto s3 = *udp_address::parse("127.0.0.3:53");
  auto v6 = *udp_address::parse("[::1]:53");
  auto mapped = *udp_address::parse("[::ffff:127.0.0.2]:53");
  // One peer, two sources, interleaved: two GSO messages, not one.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(r->add_copy(a, text(100, 'p'), s2));
    ASSERT_TRUE(r->add_copy(a, text(100, 'q'), s3));
  }
  ASSERT_TRUE(r->add_copy(a, "lone", s2));
  ASSERT_TRUE(r->add_copy(b, "kernel's choice")); // no source known
  ASSERT_TRUE(r->add_copy(b, "wildcard", *udp_address::parse("0.0.0.0:53")));
  ASSERT_TRUE(r->add_copy(c, "v6", v6));
  ASSERT_TRUE(r->add_copy(c, "v4-mapped", mapped));
  ASSERT_TRUE(r->flush());
  ASSERT_EQ(calls.size(), 1u);
  auto& m = calls[0];
  ASSERT_EQ(m.size(), 7u);
  EXPECT_EQ(m[0].segment, 100);
  EXPECT_EQ(m[0].from, "127.0.0.2");
  EXPECT_EQ(m[0].parts, std::vector<std::string>(3, text(100, 'p')));
  EXPECT_EQ(m[1].segment, 100);
  EXPECT_EQ(m[1].from, "127.0.0.3");
  EXPECT_EQ(m[1].parts, std::vector<std::string>(3, text(100, 'q')));
  EXPECT_EQ(m[2].segment, 0);
  EXPECT_EQ(m[2].from, "127.0.0.2");
  EXPECT_EQ(m[3].from, ""); // no control message at all
  EXPECT_EQ(m[4].from, ""); // a wildcard is no source to send from
  EXPECT_EQ(m[5].from, "::1");
  EXPECT_EQ(m[6].from, "127.0.0.2"); // IP_PKTINFO: sent as IPv4
}

TEST_F(ReplierTest, Issue16ASocketBoundToOneAddressSendsNoSource) {
  auto r = make(8); // set_source off: the bound address is the source
  auto s2 = *udp_address::parse("127.0.0.2:53");
  auto s3 = *udp_address::parse("127.0.0.3:53");
  ASSERT_TRUE(r->add_copy(a, text(10, 'x'), s2));
  ASSERT_TRUE(r->add_copy(a, text(10, 'y'), s3));
  ASSERT_TRUE(r->flush());
  ASSERT_EQ(calls.size(), 1u);
  ASSERT_EQ(calls[0].size(), 1u); // one GSO message: sources ignored
  EXPECT_EQ(calls[0][0].segment, 10);
  EXPECT_EQ(calls[0][0].from, "");
}

} // namespace

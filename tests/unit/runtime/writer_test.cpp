#include <mayfly/runtime/writer.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstring>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "tests/unit/runtime/test_util.hpp"

using mayfly::datagram_writer;
using mayfly::dedicated_binaries;
using mayfly::slice;
using mayfly::slot_pool;
using mayfly::udp_address;
using mayfly::test::frozen;
using mayfly::test::make_pools;
using mayfly::test::small_pools_config;

using namespace std::literals;

namespace {

udp_address addr(std::string_view text) {
  auto res = udp_address::parse(text);
  return res ? *res : udp_address{};
}

std::string bytes(size_t n, char c) {
  return std::string(n, c);
}

} // namespace

TEST(DatagramWriter, PacksSmallDatagramsIntoOneBuffer) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  datagram_writer w{*pools};
  auto to = addr("10.0.0.1:53");
  ASSERT_TRUE(w.write(to, "first"));
  ASSERT_TRUE(w.write(to, "second"));
  ASSERT_TRUE(w.write(to, "third"));
  EXPECT_EQ(w.pending(), 3u);
  EXPECT_EQ(standard.in_use(), 1);
  EXPECT_EQ(w.stats().buffers, 1u);
  EXPECT_EQ(w.stats().datagrams, 3u);
  EXPECT_EQ(w.stats().copied, 3u);
  EXPECT_EQ(w.stats().bytes, 16u);
  auto it = w.begin();
  EXPECT_EQ(it[0].payload, "first");
  EXPECT_EQ(it[1].payload, "second");
  EXPECT_EQ(it[2].payload, "third");
  EXPECT_EQ(it[1].payload.data(), it[0].payload.data() + 5); // back to back
  EXPECT_EQ(it[2].payload.data(), it[1].payload.data() + 6);
  EXPECT_EQ(it[0].to, to);
  EXPECT_EQ(w.end() - w.begin(), 3);
}

TEST(DatagramWriter, NeverSplitsADatagram) {
  auto pools = make_pools(); // 256-byte standard slots
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  datagram_writer w{*pools};
  auto to = addr("10.0.0.1:53");
  auto a = bytes(200, 'a');
  auto b = bytes(100, 'b');
  ASSERT_TRUE(w.write(to, a));
  ASSERT_TRUE(w.write(to, b)); // 56 bytes left: starts a fresh buffer
  EXPECT_EQ(standard.in_use(), 2);
  EXPECT_EQ(w.stats().buffers, 2u);
  auto it = w.begin();
  EXPECT_EQ(it[0].payload, a);
  EXPECT_EQ(it[1].payload, b);
  EXPECT_NE(standard.slot_of(it[0].payload.data()),
            standard.slot_of(it[1].payload.data()));
  // A datagram filling a slot exactly still fits a fresh one.
  auto c = bytes(156, 'c');
  ASSERT_TRUE(w.write(to, c)); // exactly the rest of the second buffer
  EXPECT_EQ(standard.in_use(), 2);
  auto full = bytes(256, 'd');
  ASSERT_TRUE(w.write(to, full));
  EXPECT_EQ(standard.in_use(), 3);
  EXPECT_EQ(w.begin()[3].payload, full);
  EXPECT_EQ(w.stats().large, 0u);
}

TEST(DatagramWriter, LargerThanAStandardSlotGoesJumbo) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  datagram_writer w{*pools};
  auto to = addr("[::1]:9000");
  auto big = bytes(257, 'j');
  ASSERT_TRUE(w.write(to, big));
  EXPECT_EQ(pools->jumbo()->slots().in_use(), 1);
  EXPECT_EQ(pools->standard().slots().in_use(), 0);
  EXPECT_EQ(w.stats().large, 1u);
  EXPECT_EQ(w.stats().buffers, 0u);
  EXPECT_TRUE(w.begin()->payload.pooled());
  EXPECT_EQ(w.begin()->payload, big);
  ASSERT_TRUE(w.write(to, "small"));
  EXPECT_EQ(pools->standard().slots().in_use(), 1); // not packed with jumbo
}

TEST(DatagramWriter, LargerThanAJumboSlotGoesDedicated) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  datagram_writer w{*pools};
  auto to = addr("10.0.0.2:1");
  auto huge = bytes(1025, 'h');
  auto before = dedicated_binaries::allocations();
  ASSERT_TRUE(w.write(to, huge));
  EXPECT_EQ(dedicated_binaries::allocations(), before + 1);
  EXPECT_EQ(dedicated_binaries::live(), 1);
  EXPECT_FALSE(w.begin()->payload.pooled());
  EXPECT_EQ(w.begin()->payload, huge);
  EXPECT_EQ(w.stats().large, 1u);
  w.consume(1);
  EXPECT_EQ(dedicated_binaries::live(), 0);
}

TEST(DatagramWriter, ZeroCopyWriteHoldsTheSlice) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto reply = frozen(pools->standard(), "echo me");
  {
    datagram_writer w{*pools};
    auto to = addr("10.0.0.3:7");
    ASSERT_TRUE(w.write(to, reply));
    EXPECT_EQ(reply.use_count(), 2u);
    EXPECT_EQ(w.begin()->payload.data(), reply.data()); // not copied
    EXPECT_EQ(w.stats().zero_copy, 1u);
    EXPECT_EQ(w.stats().copied, 0u);
    EXPECT_EQ(w.stats().buffers, 0u);
    EXPECT_EQ(pools->standard().slots().in_use(), 1);
    mmsghdr msg{};
    iovec iov{};
    ASSERT_EQ(w.fill(&msg, &iov, 1), 1u);
    EXPECT_EQ(iov.iov_base, static_cast<const void*>(reply.data()));
    auto* raw = reply.data();
    reply.reset(); // the writer keeps the bytes alive
    EXPECT_EQ(pools->standard().slots().in_use(), 1);
    EXPECT_EQ(w.begin()->payload, "echo me");
    EXPECT_EQ(w.begin()->payload.data(), raw);
    w.consume(1);
    EXPECT_EQ(pools->standard().slots().in_use(), 0);
  }
}

TEST(DatagramWriter, FillBuildsHeadersAndIovecs) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  datagram_writer w{*pools};
  auto v4 = addr("192.0.2.1:5353");
  auto v6 = addr("[2001:db8::7]:443");
  ASSERT_TRUE(w.write(v4, "alpha"));
  ASSERT_TRUE(w.write(v6, "beta!!"));
  ASSERT_TRUE(w.write(v4, ""));
  mmsghdr msgs[4];
  iovec iovs[4];
  std::memset(msgs, 0xff, sizeof(msgs)); // garbage must be overwritten
  ASSERT_EQ(w.fill(msgs, iovs, 4), 3u);
  auto it = w.begin();
  for (size_t i = 0; i < 3; ++i) {
    auto& hdr = msgs[i].msg_hdr;
    EXPECT_EQ(hdr.msg_iov, &iovs[i]);
    EXPECT_EQ(hdr.msg_iovlen, 1u);
    EXPECT_EQ(hdr.msg_control, nullptr);
    EXPECT_EQ(hdr.msg_controllen, 0u);
    EXPECT_EQ(hdr.msg_flags, 0);
    EXPECT_EQ(msgs[i].msg_len, 0u);
    EXPECT_EQ(iovs[i].iov_base, static_cast<const void*>(it[i].payload.data()));
    EXPECT_EQ(iovs[i].iov_len, it[i].payload.size());
    EXPECT_EQ(hdr.msg_namelen, it[i].to.size());
    ASSERT_NE(hdr.msg_name, nullptr);
    EXPECT_EQ(
      std::memcmp(hdr.msg_name, it[i].to.sockaddr_ptr(), hdr.msg_namelen), 0);
  }
  EXPECT_EQ(msgs[0].msg_hdr.msg_namelen, sizeof(sockaddr_in));
  EXPECT_EQ(msgs[1].msg_hdr.msg_namelen, sizeof(sockaddr_in6));
  EXPECT_EQ(udp_address(static_cast<sockaddr*>(msgs[1].msg_hdr.msg_name),
                        msgs[1].msg_hdr.msg_namelen),
            v6);
  EXPECT_EQ(iovs[0].iov_len, 5u);
  EXPECT_EQ(iovs[1].iov_len, 6u);
  EXPECT_EQ(iovs[2].iov_len, 0u);
  EXPECT_EQ(std::string_view(static_cast<char*>(iovs[1].iov_base), 6),
            "beta!!");
  // Fewer slots than datagrams: the oldest ones.
  mmsghdr one[1];
  iovec one_iov[1];
  ASSERT_EQ(w.fill(one, one_iov, 1), 1u);
  EXPECT_EQ(one_iov[0].iov_len, 5u);
  EXPECT_EQ(w.fill(one, one_iov, 0), 0u);
  // After a partial send the next fill starts at the first unsent one.
  w.consume(1);
  ASSERT_EQ(w.fill(msgs, iovs, 4), 2u);
  EXPECT_EQ(iovs[0].iov_len, 6u);
  EXPECT_EQ(msgs[0].msg_hdr.msg_namelen, sizeof(sockaddr_in6));
}

TEST(DatagramWriter, ConsumeReturnsBuffersWhenTheirLastDatagramGoes) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  datagram_writer w{*pools};
  auto to = addr("10.0.0.1:53");
  ASSERT_TRUE(w.write(to, bytes(120, '1')));
  ASSERT_TRUE(w.write(to, bytes(120, '2'))); // buffer 1: 240 of 256
  ASSERT_TRUE(w.write(to, bytes(120, '3'))); // buffer 2
  EXPECT_EQ(standard.in_use(), 2);
  w.consume(1);
  EXPECT_EQ(standard.in_use(), 2); // datagram 2 still in buffer 1
  EXPECT_EQ(w.pending(), 2u);
  EXPECT_EQ(w.begin()->payload, bytes(120, '2'));
  w.consume(1);
  EXPECT_EQ(standard.in_use(), 1); // buffer 1 is back
  w.consume(5);                    // more than pending: clamps
  EXPECT_EQ(w.pending(), 0u);
  // The current (partly filled) buffer stays with the writer for packing.
  EXPECT_EQ(standard.in_use(), 1);
  ASSERT_TRUE(w.write(to, bytes(100, '4')));
  EXPECT_EQ(standard.in_use(), 1);
  EXPECT_EQ(w.stats().buffers, 2u);
  w.clear();
  EXPECT_EQ(w.pending(), 0u);
  EXPECT_EQ(standard.in_use(), 0);
}

TEST(DatagramWriter, FullBatchRefusesWritesAndCountsThem) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  datagram_writer w{*pools, 3};
  auto to = addr("10.0.0.1:53");
  EXPECT_FALSE(w.full());
  ASSERT_TRUE(w.write(to, "a"));
  ASSERT_TRUE(w.write(to, "b"));
  EXPECT_FALSE(w.full());
  ASSERT_TRUE(w.write(to, "c"));
  EXPECT_TRUE(w.full());
  EXPECT_FALSE(w.write(to, "d"));
  EXPECT_EQ(w.stats().batch_full, 1u);
  auto s = slice::copy_of("zero-copy");
  EXPECT_FALSE(w.write(to, s));
  EXPECT_EQ(w.stats().batch_full, 2u);
  EXPECT_EQ(s.use_count(), 1u); // a refused slice is not kept
  EXPECT_EQ(w.pending(), 3u);
  EXPECT_EQ(w.stats().datagrams, 3u);
  w.consume(3);
  EXPECT_FALSE(w.full());
  EXPECT_TRUE(w.write(to, s));
  EXPECT_EQ(s.use_count(), 2u);
}

TEST(DatagramWriter, ZeroBatchMeansOne) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  datagram_writer w{*pools, 0};
  auto to = addr("10.0.0.1:53");
  EXPECT_TRUE(w.write(to, "only"));
  EXPECT_TRUE(w.full());
  EXPECT_FALSE(w.write(to, "no room"));
}

TEST(DatagramWriter, ExhaustedPoolIsCountedNotFallenBackFrom) {
  auto pools = make_pools(small_pools_config(1, 1));
  ASSERT_TRUE(pools);
  auto hold_standard = frozen(pools->standard(), "held");
  auto hold_jumbo = pools->jumbo()->try_acquire();
  ASSERT_TRUE(hold_standard.has_owner() && hold_jumbo);
  datagram_writer w{*pools};
  auto to = addr("10.0.0.1:53");
  auto before = dedicated_binaries::allocations();
  EXPECT_FALSE(w.write(to, "small"));
  EXPECT_FALSE(w.write(to, bytes(500, 'j')));
  EXPECT_EQ(w.stats().no_buffer, 2u);
  EXPECT_EQ(w.pending(), 0u);
  EXPECT_EQ(dedicated_binaries::allocations(), before);
  // A zero-copy write needs no buffer.
  EXPECT_TRUE(w.write(to, hold_standard));
}

TEST(DatagramWriter, ZeroLengthDatagrams) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  datagram_writer w{*pools};
  auto to = addr("10.0.0.1:53");
  ASSERT_TRUE(w.write(to, ""));
  ASSERT_TRUE(w.write(to, std::string_view{}));
  EXPECT_EQ(w.pending(), 2u);
  EXPECT_EQ(w.stats().bytes, 0u);
  EXPECT_TRUE(w.begin()->payload.empty());
  EXPECT_TRUE(w.begin()->payload.has_owner());
  EXPECT_EQ(standard.in_use(), 1);
  // An exactly full buffer still takes empty datagrams.
  ASSERT_TRUE(w.write(to, bytes(256, 'x')));
  ASSERT_TRUE(w.write(to, ""));
  EXPECT_EQ(w.pending(), 4u);
  mmsghdr msgs[4];
  iovec iovs[4];
  ASSERT_EQ(w.fill(msgs, iovs, 4), 4u);
  EXPECT_EQ(iovs[0].iov_len, 0u);
  EXPECT_EQ(iovs[3].iov_len, 0u);
  w.clear();
  EXPECT_EQ(standard.in_use(), 0);
}

TEST(DatagramWriter, DestructionReleasesEverything) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  {
    datagram_writer w{*pools};
    auto to = addr("10.0.0.1:53");
    ASSERT_TRUE(w.write(to, "a"));
    ASSERT_TRUE(w.write(to, bytes(600, 'j')));
    ASSERT_TRUE(w.write(to, bytes(5000, 'd')));
    EXPECT_EQ(pools->outstanding(), 3);
  }
  EXPECT_EQ(pools->outstanding(), 0);
}

// -- send_packer --------------------------------------------------------------

TEST(SendPacker, PacksBackToBackAndNeverSplits) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  mayfly::send_packer packer{*pools};
  auto a = packer.pack("hello");
  auto b = packer.pack("world!");
  ASSERT_TRUE(a.has_owner() && b.has_owner());
  EXPECT_EQ(a, "hello");
  EXPECT_EQ(b, "world!");
  EXPECT_EQ(b.data(), a.data() + 5);
  EXPECT_EQ(packer.buffers(), 1u);
  auto c = packer.pack(bytes(250, 'c')); // 245 left: a fresh buffer
  EXPECT_EQ(c, bytes(250, 'c'));
  EXPECT_EQ(packer.buffers(), 2u);
  EXPECT_EQ(standard.in_use(), 2);
  auto big = packer.pack(bytes(300, 'j'));
  EXPECT_TRUE(big.pooled());
  EXPECT_EQ(pools->jumbo()->slots().in_use(), 1);
  EXPECT_EQ(packer.large(), 1u);
  auto empty = packer.pack("");
  EXPECT_TRUE(empty.has_owner());
  EXPECT_TRUE(empty.empty());
}

TEST(SendPacker, ReleaseGivesTheCurrentBufferBack) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  mayfly::send_packer packer{*pools};
  auto a = packer.pack("x");
  a.reset();
  EXPECT_EQ(standard.in_use(), 1); // still the packer's current buffer
  packer.release();
  EXPECT_EQ(standard.in_use(), 0);
  auto b = packer.pack("y"); // a new buffer
  EXPECT_EQ(packer.buffers(), 2u);
  packer.release();
  EXPECT_EQ(standard.in_use(), 1); // b keeps its buffer alive
  b.reset();
  EXPECT_EQ(standard.in_use(), 0);
}

TEST(SendPacker, NoBufferGivesAnOwnerlessSlice) {
  auto pools = make_pools(small_pools_config(1, 1));
  ASSERT_TRUE(pools);
  auto held = frozen(pools->standard(), "held");
  auto held_jumbo = pools->jumbo()->try_acquire();
  mayfly::send_packer packer{*pools};
  EXPECT_FALSE(packer.pack("small").has_owner());
  EXPECT_FALSE(packer.pack(bytes(500, 'j')).has_owner());
  EXPECT_EQ(packer.buffers(), 0u);
  EXPECT_EQ(packer.large(), 0u);
}

TEST(SendPacker, SlicesOutliveThePacker) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  slice kept;
  {
    mayfly::send_packer packer{*pools};
    kept = packer.pack("survivor");
  }
  EXPECT_EQ(kept, "survivor");
  EXPECT_EQ(pools->standard().slots().in_use(), 1);
  kept.reset();
  EXPECT_EQ(pools->standard().slots().in_use(), 0);
}

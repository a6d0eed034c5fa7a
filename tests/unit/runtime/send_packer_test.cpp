// send_packer: the send side's write arena (runtime/send_packer.hpp).
// Packing, never splitting, the jumbo and dedicated fall-backs, refusal
// when the pool is dry, and buffers going back when their last slice goes.
// How replies are queued and sent is net/'s (tests/unit/net/replier_test).

#include <mayfly/runtime/send_packer.hpp>

#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "tests/unit/runtime/test_util.hpp"

using mayfly::dedicated_binaries;
using mayfly::send_packer;
using mayfly::slice;
using mayfly::test::frozen;
using mayfly::test::make_pools;
using mayfly::test::small_pools_config;

namespace {

std::string bytes(size_t n, char c) {
  return std::string(n, c);
}

} // namespace

TEST(SendPacker, NeverSplitsADatagram) {
  auto pools = make_pools(); // 256-byte standard slots
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  send_packer packer{*pools};
  auto a = bytes(200, 'a');
  auto b = bytes(100, 'b');
  auto pa = packer.pack(a);
  auto pb = packer.pack(b); // 56 bytes left: starts a fresh buffer
  EXPECT_EQ(standard.in_use(), 2);
  EXPECT_EQ(packer.counts().buffers, 2u);
  EXPECT_EQ(pa, a);
  EXPECT_EQ(pb, b);
  EXPECT_NE(standard.slot_of(pa.data()), standard.slot_of(pb.data()));
  // A datagram filling a slot exactly still fits a fresh one.
  auto pc = packer.pack(bytes(156, 'c')); // exactly the rest of buffer 2
  EXPECT_EQ(standard.in_use(), 2);
  auto full = bytes(256, 'd');
  auto pd = packer.pack(full);
  EXPECT_EQ(standard.in_use(), 3);
  EXPECT_EQ(pd, full);
  EXPECT_EQ(packer.counts().large, 0u);
  // Every byte packed into a standard buffer is counted: 200 + 100 + 156 +
  // 256 in 3 buffers of 256 (the send buffers' fill ratio in /stats).
  EXPECT_EQ(packer.counts().bytes, 712u);
  EXPECT_EQ(packer.counts().buffers, 3u);
}

TEST(SendPacker, LargerThanAStandardSlotGoesJumbo) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  send_packer packer{*pools};
  auto big = bytes(257, 'j');
  auto pb = packer.pack(big);
  EXPECT_EQ(pools->jumbo()->slots().in_use(), 1);
  EXPECT_EQ(pools->standard().slots().in_use(), 0);
  EXPECT_EQ(packer.counts().large, 1u);
  EXPECT_EQ(packer.counts().buffers, 0u);
  EXPECT_EQ(packer.counts().bytes, 0u); // jumbo: not in the fill ratio
  EXPECT_TRUE(pb.pooled());
  EXPECT_EQ(pb, big);
  auto ps = packer.pack("small");
  EXPECT_EQ(pools->standard().slots().in_use(), 1); // not packed with jumbo
}

TEST(SendPacker, LargerThanAJumboSlotGoesDedicated) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  send_packer packer{*pools};
  auto huge = bytes(1025, 'h');
  auto before = dedicated_binaries::allocations();
  auto ph = packer.pack(huge);
  EXPECT_EQ(dedicated_binaries::allocations(), before + 1);
  EXPECT_EQ(dedicated_binaries::live(), 1);
  EXPECT_FALSE(ph.pooled());
  EXPECT_EQ(ph, huge);
  EXPECT_EQ(packer.counts().large, 1u);
  ph.reset();
  EXPECT_EQ(dedicated_binaries::live(), 0);
}

TEST(SendPacker, BuffersGoBackWhenTheirLastSliceGoes) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  send_packer packer{*pools};
  auto p1 = packer.pack(bytes(120, '1'));
  auto p2 = packer.pack(bytes(120, '2')); // buffer 1: 240 of 256
  auto p3 = packer.pack(bytes(120, '3')); // buffer 2
  EXPECT_EQ(standard.in_use(), 2);
  p1.reset();
  EXPECT_EQ(standard.in_use(), 2); // p2 still in buffer 1
  p2.reset();
  EXPECT_EQ(standard.in_use(), 1); // buffer 1 is back
  p3.reset();
  // The current (partly filled) buffer stays with the packer for packing.
  EXPECT_EQ(standard.in_use(), 1);
  EXPECT_TRUE(packer.holding());
  auto p4 = packer.pack(bytes(100, '4'));
  EXPECT_EQ(standard.in_use(), 1);
  EXPECT_EQ(packer.counts().buffers, 2u);
  p4.reset();
  packer.release();
  EXPECT_FALSE(packer.holding());
  EXPECT_EQ(standard.in_use(), 0);
}

TEST(SendPacker, ZeroLengthDatagramsOwnTheirBuffer) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  send_packer packer{*pools};
  auto e1 = packer.pack("");
  auto e2 = packer.pack(std::string_view{});
  EXPECT_TRUE(e1.empty() && e2.empty());
  EXPECT_TRUE(e1.has_owner() && e2.has_owner());
  EXPECT_EQ(standard.in_use(), 1);
  // An exactly full buffer still takes empty datagrams.
  auto full = packer.pack(bytes(256, 'x'));
  auto e3 = packer.pack("");
  EXPECT_TRUE(e3.has_owner());
}

// -- send_packer --------------------------------------------------------------

TEST(SendPacker, PacksBackToBackAndNeverSplits) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  send_packer packer{*pools};
  auto a = packer.pack("hello");
  auto b = packer.pack("world!");
  ASSERT_TRUE(a.has_owner() && b.has_owner());
  EXPECT_EQ(a, "hello");
  EXPECT_EQ(b, "world!");
  EXPECT_EQ(b.data(), a.data() + 5);
  EXPECT_EQ(packer.counts().buffers, 1u);
  auto c = packer.pack(bytes(250, 'c')); // 245 left: a fresh buffer
  EXPECT_EQ(c, bytes(250, 'c'));
  EXPECT_EQ(packer.counts().buffers, 2u);
  EXPECT_EQ(standard.in_use(), 2);
  auto big = packer.pack(bytes(300, 'j'));
  EXPECT_TRUE(big.pooled());
  EXPECT_EQ(pools->jumbo()->slots().in_use(), 1);
  EXPECT_EQ(packer.counts().large, 1u);
  auto empty = packer.pack("");
  EXPECT_TRUE(empty.has_owner());
  EXPECT_TRUE(empty.empty());
}

TEST(SendPacker, ReleaseGivesTheCurrentBufferBack) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  auto& standard = pools->standard().slots();
  send_packer packer{*pools};
  auto a = packer.pack("x");
  a.reset();
  EXPECT_EQ(standard.in_use(), 1); // still the packer's current buffer
  packer.release();
  EXPECT_EQ(standard.in_use(), 0);
  auto b = packer.pack("y"); // a new buffer
  EXPECT_EQ(packer.counts().buffers, 2u);
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
  send_packer packer{*pools};
  EXPECT_FALSE(packer.pack("small").has_owner());
  EXPECT_FALSE(packer.pack(bytes(500, 'j')).has_owner());
  EXPECT_EQ(packer.counts().buffers, 0u);
  EXPECT_EQ(packer.counts().large, 0u);
}

TEST(SendPacker, SlicesOutliveThePacker) {
  auto pools = make_pools();
  ASSERT_TRUE(pools);
  slice kept;
  {
    send_packer packer{*pools};
    kept = packer.pack("survivor");
  }
  EXPECT_EQ(kept, "survivor");
  EXPECT_EQ(pools->standard().slots().in_use(), 1);
  kept.reset();
  EXPECT_EQ(pools->standard().slots().in_use(), 0);
}

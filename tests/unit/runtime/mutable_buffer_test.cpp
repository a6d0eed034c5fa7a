#include <cstdint>
#include <cstring>
#include <utility>

#include <gtest/gtest.h>

#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/heap.hpp>
#include "tests/unit/runtime/test_util.hpp"

using mayfly::dedicated_binaries;
using mayfly::mutable_buffer;
using mayfly::slice;
using mayfly::test::make_buffer_pool;

TEST(MutableBuffer, DefaultIsEmpty) {
  mutable_buffer buf;
  EXPECT_FALSE(buf);
  EXPECT_EQ(buf.capacity(), 0u);
  EXPECT_EQ(buf.data(), nullptr);
  EXPECT_FALSE(buf.pooled());
}

TEST(MutableBuffer, AcquireGivesAWholeSlot) {
  auto pool = make_buffer_pool(2, 512);
  ASSERT_TRUE(pool);
  auto buf = pool->try_acquire();
  ASSERT_TRUE(buf);
  EXPECT_TRUE(buf.pooled());
  EXPECT_EQ(buf.capacity(), 512u);
  EXPECT_EQ(pool->slots().slot_of(buf.data()), 0u);
  EXPECT_EQ(pool->slots().in_use(), 1);
  std::memset(buf.data(), 0x5a, buf.capacity()); // all of it is writable
  EXPECT_EQ(slice::live_count(), 0); // a writable buffer is not a slice
}

TEST(MutableBuffer, DroppingAnUnfrozenBufferReturnsTheSlot) {
  auto pool = make_buffer_pool(1);
  ASSERT_TRUE(pool);
  {
    auto buf = pool->try_acquire();
    ASSERT_TRUE(buf);
    EXPECT_FALSE(pool->try_acquire());
  }
  EXPECT_EQ(pool->slots().in_use(), 0);
  EXPECT_TRUE(pool->try_acquire());
}

TEST(MutableBuffer, FreezeMovesTheReferenceIntoTheSlice) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto buf = pool->try_acquire();
  ASSERT_TRUE(buf);
  auto* data = buf.data();
  std::memcpy(data, "datagram", 8);
  auto s = std::move(buf).freeze(8);
  EXPECT_FALSE(buf); // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(buf.capacity(), 0u);
  EXPECT_EQ(s, "datagram");
  EXPECT_EQ(s.data(), data);
  EXPECT_EQ(s.use_count(), 1u);
  EXPECT_TRUE(s.pooled());
  EXPECT_EQ(pool->census().live_bytes, 8u);
  s.reset();
  EXPECT_EQ(pool->slots().in_use(), 0);
}

TEST(MutableBuffer, SplitToLeavesTheRemainderWritable) {
  auto pool = make_buffer_pool(2, 256);
  ASSERT_TRUE(pool);
  auto buf = pool->try_acquire();
  ASSERT_TRUE(buf);
  auto* base = buf.data();
  std::memcpy(buf.data(), "one", 3);
  auto first = buf.split_to(3);
  EXPECT_EQ(first, "one");
  EXPECT_EQ(buf.data(), base + 3);
  EXPECT_EQ(buf.capacity(), 253u);
  std::memcpy(buf.data(), "two!", 4);
  auto second = buf.split_to(3);
  EXPECT_EQ(second, "two");
  EXPECT_EQ(first, "one"); // frozen bytes are untouched
  EXPECT_EQ(second.data(), first.data() + 3);
  EXPECT_EQ(buf.capacity(), 250u);
  EXPECT_EQ(first.use_count(), 3u); // buf + two slices
  EXPECT_EQ(pool->census().live_bytes, 6u);
  auto empty = buf.split_to(0);
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(empty.has_owner());
  // The writable handle may go first; the slices keep the slot.
  buf = mutable_buffer{};
  EXPECT_EQ(first.use_count(), 3u);
  EXPECT_EQ(pool->slots().in_use(), 1);
  first.reset();
  second.reset();
  EXPECT_EQ(pool->slots().in_use(), 1);
  empty.reset();
  EXPECT_EQ(pool->slots().in_use(), 0);
}

TEST(MutableBuffer, SplitToTheWholeCapacityThenFreezeNothing) {
  auto pool = make_buffer_pool(2, 64);
  ASSERT_TRUE(pool);
  auto buf = pool->try_acquire();
  ASSERT_TRUE(buf);
  std::memset(buf.data(), 'x', 64);
  auto all = buf.split_to(64);
  EXPECT_EQ(all.size(), 64u);
  EXPECT_EQ(buf.capacity(), 0u);
  auto tail = std::move(buf).freeze(0);
  EXPECT_TRUE(tail.empty());
  EXPECT_EQ(all.use_count(), 2u);
}

TEST(MutableBuffer, MoveAssignmentDropsTheOldBuffer) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto a = pool->try_acquire();
  auto b = pool->try_acquire();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(pool->slots().in_use(), 2);
  auto* b_data = b.data();
  a = std::move(b);
  EXPECT_EQ(pool->slots().in_use(), 1);
  EXPECT_EQ(a.data(), b_data);
  EXPECT_FALSE(b); // NOLINT(bugprone-use-after-move)
  mutable_buffer c{std::move(a)};
  EXPECT_EQ(c.data(), b_data);
  EXPECT_FALSE(a); // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(pool->slots().in_use(), 1);
}

TEST(MutableBuffer, DedicatedIsOneCountedAllocation) {
  auto allocs = dedicated_binaries::allocations();
  auto heap = mayfly::heap_allocations();
  auto buf = mutable_buffer::dedicated(100000);
  ASSERT_TRUE(buf);
  EXPECT_FALSE(buf.pooled());
  EXPECT_EQ(buf.capacity(), 100000u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buf.data()) % 64, 0u);
  EXPECT_EQ(dedicated_binaries::allocations(), allocs + 1);
  EXPECT_EQ(dedicated_binaries::live(), 1);
  EXPECT_EQ(dedicated_binaries::live_bytes(), 100000);
  EXPECT_EQ(mayfly::heap_allocations(), heap + 1);
  EXPECT_EQ(mayfly::heap_blocks_live(), 1);
  std::memset(buf.data(), 1, buf.capacity());
  auto head = buf.split_to(10);
  auto rest = std::move(buf).freeze(20);
  EXPECT_FALSE(head.pooled());
  EXPECT_EQ(rest.data(), head.data() + 10);
  EXPECT_EQ(head.pinned_bytes(), 100000u);
  head.reset();
  EXPECT_EQ(dedicated_binaries::live(), 1);
  rest.reset();
  EXPECT_EQ(dedicated_binaries::live(), 0);
  EXPECT_EQ(dedicated_binaries::live_bytes(), 0);
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
}

TEST(MutableBuffer, DedicatedOfZeroBytesIsValid) {
  auto buf = mutable_buffer::dedicated(0);
  ASSERT_TRUE(buf);
  EXPECT_EQ(buf.capacity(), 0u);
  auto s = std::move(buf).freeze(0);
  EXPECT_TRUE(s.has_owner());
  EXPECT_TRUE(s.empty());
}

TEST(MutableBuffer, DedicatedLargerThan32BitsIsRefused) {
  auto allocs = dedicated_binaries::allocations();
  auto buf = mutable_buffer::dedicated(size_t{1} << 33);
  EXPECT_FALSE(buf);
  EXPECT_EQ(dedicated_binaries::allocations(), allocs);
}

TEST(MutableBufferDeathTest, SplitPastTheCapacityAborts) {
  auto buf = mutable_buffer::dedicated(8);
  ASSERT_TRUE(buf);
  EXPECT_DEATH((void) buf.split_to(9), "assertion failed");
  EXPECT_DEATH((void) std::move(buf).freeze(9), "assertion failed");
}

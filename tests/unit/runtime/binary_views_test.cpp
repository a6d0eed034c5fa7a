// The bytes viewed per binary (runtime/slice.hpp): the high half of the
// header's reference word holds the sum of the lengths its references view.
// Every slice operation keeps it exact; the census sums it per holder.

#include <atomic>
#include <cstdint>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/slice.hpp>
#include "tests/unit/runtime/test_util.hpp"

using mayfly::holder_usage;
using mayfly::mutable_buffer;
using mayfly::slice;
using mayfly::test::frozen;
using mayfly::test::make_buffer_pool;

using namespace std::literals;

namespace {

constexpr std::string_view kTen = "0123456789";

} // namespace

TEST(BinaryViews, CopyAddsItsLengthAndMoveKeepsIt) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto a = frozen(*pool, kTen);
  EXPECT_EQ(a.binary_viewed_bytes(), 10u);
  {
    auto b = a; // a copy views its length too
    EXPECT_EQ(a.binary_viewed_bytes(), 20u);
    auto c = std::move(b); // a move adds no reference and no view
    EXPECT_EQ(c.binary_viewed_bytes(), 20u);
    EXPECT_EQ(c.use_count(), 2u);
    slice d;
    d = c; // copy assignment
    EXPECT_EQ(a.binary_viewed_bytes(), 30u);
    d = slice{}; // drops its view
    EXPECT_EQ(a.binary_viewed_bytes(), 20u);
  }
  EXPECT_EQ(a.binary_viewed_bytes(), 10u);
  EXPECT_EQ(a.use_count(), 1u);
}

TEST(BinaryViews, SubSliceViewsItsOwnLength) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto a = frozen(*pool, kTen);
  auto b = a.sub(2, 5);
  EXPECT_EQ(a.binary_viewed_bytes(), 13u);
  auto c = a.slice_ref(a.view().substr(7));
  EXPECT_EQ(a.binary_viewed_bytes(), 16u);
  auto empty = a.sub(4, 4); // a reference viewing nothing
  EXPECT_EQ(a.binary_viewed_bytes(), 16u);
  EXPECT_EQ(a.use_count(), 4u);
  b.reset();
  c.reset();
  EXPECT_EQ(a.binary_viewed_bytes(), 10u);
}

TEST(BinaryViews, SplitsMoveBytesBetweenReferences) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto a = frozen(*pool, kTen);
  auto head = a.split_to(3); // [0,3) and [3,10): still 10 in all
  EXPECT_EQ(head.view(), "012");
  EXPECT_EQ(a.view(), "3456789");
  EXPECT_EQ(a.binary_viewed_bytes(), 10u);
  EXPECT_EQ(a.use_count(), 2u);
  auto tail = a.split_off(4); // [3,7) and [7,10)
  EXPECT_EQ(tail.view(), "789");
  EXPECT_EQ(a.binary_viewed_bytes(), 10u);
  EXPECT_EQ(a.use_count(), 3u);
  head.reset();
  EXPECT_EQ(a.binary_viewed_bytes(), 7u);
}

TEST(BinaryViews, AdvanceAndShrinkNarrowTheSum) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto a = frozen(*pool, kTen);
  auto b = a;
  b.advance(4);
  EXPECT_EQ(a.binary_viewed_bytes(), 16u);
  b.shrink(2);
  EXPECT_EQ(a.binary_viewed_bytes(), 12u);
  b.shrink(0); // still a reference, viewing nothing
  EXPECT_EQ(a.binary_viewed_bytes(), 10u);
  EXPECT_EQ(a.use_count(), 2u);
}

TEST(BinaryViews, MutableBufferViewsNothingUntilFrozen) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto buf = pool->try_acquire();
  ASSERT_TRUE(buf);
  auto first = buf.split_to(100); // the buffer's own reference views 0
  EXPECT_EQ(first.binary_viewed_bytes(), 100u);
  EXPECT_EQ(first.use_count(), 2u);
  auto second = std::move(buf).freeze(30);
  EXPECT_EQ(first.binary_viewed_bytes(), 130u);
  EXPECT_EQ(first.use_count(), 2u);
  second.reset();
  EXPECT_EQ(first.binary_viewed_bytes(), 100u);
}

TEST(BinaryViews, DetachedCopyHasItsOwnBinary) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto a = frozen(*pool, kTen);
  auto small = a.sub(1, 3).detach();
  EXPECT_EQ(small.view(), "12");
  EXPECT_FALSE(small.pooled());
  EXPECT_EQ(small.binary_viewed_bytes(), 2u);
  EXPECT_EQ(a.binary_viewed_bytes(), 10u); // the temporary sub is gone
}

TEST(BinaryViews, DropToZeroReturnsTheSlotAndACleanWord) {
  auto pool = make_buffer_pool(1);
  ASSERT_TRUE(pool);
  {
    auto a = frozen(*pool, kTen);
    auto b = a.sub(0, 5);
    auto c = b.split_to(2);
    a.advance(9);
  }
  EXPECT_EQ(pool->slots().in_use(), 0);
  // The slot comes back with a fresh word: a new binary starts at its
  // length, not at a leftover sum.
  auto again = frozen(*pool, "abc");
  EXPECT_EQ(again.binary_viewed_bytes(), 3u);
  EXPECT_EQ(again.use_count(), 1u);
}

TEST(BinaryViews, CensusSumsViewedBytesPerHolder) {
  auto pool = make_buffer_pool(8);
  ASSERT_TRUE(pool);
  auto big = frozen(*pool, std::string(200, 'x'));
  auto kept = big.sub(0, 10);
  big.reset(); // only the 10-byte view remains; the slot stays pinned
  kept.mark_holder(3);
  auto other = frozen(*pool, kTen);
  auto other_copy = other;
  other.mark_holder(1);
  std::vector<holder_usage> by_holder;
  auto c = pool->census(&by_holder);
  EXPECT_EQ(c.live, 2u);
  ASSERT_GE(by_holder.size(), 4u);
  EXPECT_EQ(by_holder[3].binaries, 1u);
  EXPECT_EQ(by_holder[3].viewed_bytes, 10u);
  EXPECT_EQ(by_holder[3].pinned_bytes, pool->slot_size());
  EXPECT_EQ(by_holder[1].viewed_bytes, 20u);
  EXPECT_EQ(by_holder[2].binaries, 0u);
}

// Two threads copy and drop references of one binary, with different
// lengths, as fast as they can; the sum must come back exactly (TSan: the
// word is the only shared state).
TEST(BinaryViews, ConcurrentCopiesAndDropsKeepTheSum) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto root = frozen(*pool, kTen);
  constexpr int kRounds = 20000;
  std::atomic<int> ready{0};
  auto work = [&](size_t len) {
    auto mine = root.sub(0, len); // each thread's own reference
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    for (int i = 0; i < kRounds; ++i) {
      slice copy = mine;
      auto head = copy.split_to(len / 2);
      copy.advance(copy.size() / 2);
      slice sub = head.sub(0, head.size());
    }
  };
  std::thread t1{work, size_t{4}};
  std::thread t2{work, size_t{9}};
  t1.join();
  t2.join();
  EXPECT_EQ(root.binary_viewed_bytes(), 10u);
  EXPECT_EQ(root.use_count(), 1u);
}

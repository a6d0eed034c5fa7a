#include <mayfly/runtime/slice.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include <gtest/gtest.h>

#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/heap.hpp>
#include "tests/unit/runtime/test_util.hpp"

using mayfly::dedicated_binaries;
using mayfly::slice;
using mayfly::test::frozen;
using mayfly::test::make_buffer_pool;

using namespace std::literals;

static_assert(sizeof(slice) == 3 * sizeof(void*));
static_assert(std::is_nothrow_move_constructible_v<slice>);
static_assert(std::is_nothrow_copy_constructible_v<slice>);

TEST(Slice, DefaultOwnsNothing) {
  slice s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_FALSE(s.has_owner());
  EXPECT_FALSE(s.pooled());
  EXPECT_EQ(s.use_count(), 0u);
  EXPECT_EQ(s.pinned_bytes(), 0u);
  EXPECT_EQ(s.view(), ""sv);
  EXPECT_EQ(slice::live_count(), 0);
}

TEST(Slice, CopyOfHoldsBytesInADedicatedBinary) {
  auto s = slice::copy_of("hello");
  EXPECT_EQ(s, "hello");
  EXPECT_EQ(s.size(), 5u);
  EXPECT_TRUE(s.has_owner());
  EXPECT_FALSE(s.pooled());
  EXPECT_EQ(s.use_count(), 1u);
  EXPECT_EQ(s.pinned_bytes(), 5u);
  EXPECT_EQ(s[1], std::byte{'e'});
  EXPECT_EQ(dedicated_binaries::live(), 1);
  EXPECT_EQ(dedicated_binaries::live_bytes(), 5);
  EXPECT_EQ(slice::live_count(), 1);
  EXPECT_EQ(slice::viewed_bytes(), 5);
}

TEST(Slice, CopyOfNothingOwnsNothing) {
  auto before = dedicated_binaries::allocations();
  auto s = slice::copy_of("");
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(s.has_owner());
  EXPECT_EQ(dedicated_binaries::allocations(), before);
}

TEST(Slice, CopyAddsAReference) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto a = frozen(*pool, "abcdef");
  ASSERT_EQ(a.use_count(), 1u);
  slice b = a;
  EXPECT_EQ(a.use_count(), 2u);
  EXPECT_EQ(b.data(), a.data());
  EXPECT_EQ(b, "abcdef");
  EXPECT_EQ(slice::live_count(), 2);
  EXPECT_EQ(slice::viewed_bytes(), 12);
  slice c;
  c = b; // copy assignment
  EXPECT_EQ(a.use_count(), 3u);
  const auto& same = c;
  c = same; // self copy-assignment keeps the reference
  EXPECT_EQ(a.use_count(), 3u);
  EXPECT_EQ(c, "abcdef");
  EXPECT_EQ(pool->slots().in_use(), 1);
}

TEST(Slice, MoveDoesNotAddAReference) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto a = frozen(*pool, "abcdef");
  auto* data = a.data();
  slice b = std::move(a);
  EXPECT_EQ(b.use_count(), 1u);
  EXPECT_EQ(b.data(), data);
  EXPECT_FALSE(a.has_owner()); // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(slice::live_count(), 1);
  EXPECT_EQ(slice::viewed_bytes(), 6);
  slice c;
  c = std::move(b);
  EXPECT_EQ(c.use_count(), 1u);
  EXPECT_EQ(slice::live_count(), 1);
  auto& alias = c;
  c = std::move(alias); // self move-assignment keeps the slice intact
  EXPECT_EQ(c, "abcdef");
  EXPECT_EQ(c.use_count(), 1u);
}

TEST(Slice, AssignmentDropsThePreviousBinary) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  auto a = frozen(*pool, "first");
  auto b = frozen(*pool, "second");
  EXPECT_EQ(pool->slots().in_use(), 2);
  a = b;
  EXPECT_EQ(pool->slots().in_use(), 1);
  EXPECT_EQ(b.use_count(), 2u);
  a = slice::copy_of("third");
  EXPECT_EQ(b.use_count(), 1u);
  EXPECT_EQ(a, "third");
}

TEST(Slice, SwapExchangesViews) {
  auto x = slice::copy_of("x");
  auto y = slice::copy_of("yy");
  x.swap(y);
  EXPECT_EQ(x, "yy");
  EXPECT_EQ(y, "x");
  EXPECT_EQ(slice::live_count(), 2);
  EXPECT_EQ(slice::viewed_bytes(), 3);
}

TEST(Slice, ResetReleasesTheBinary) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto s = frozen(*pool, "abc");
  EXPECT_EQ(pool->slots().in_use(), 1);
  s.reset();
  EXPECT_FALSE(s.has_owner());
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(pool->slots().in_use(), 0);
  s.reset(); // idempotent
  EXPECT_EQ(pool->slots().in_use(), 0);
}

TEST(Slice, SliceKeepsParentAlive) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto whole = frozen(*pool, "key=value");
  auto part = whole.sub(4);
  whole.reset();
  EXPECT_EQ(pool->slots().in_use(), 1); // the sub-slice pins the slot
  EXPECT_EQ(part, "value");
  EXPECT_EQ(part.use_count(), 1u);
  EXPECT_EQ(part.pinned_bytes(), pool->slot_size());
  part.reset();
  EXPECT_EQ(pool->slots().in_use(), 0);
}

TEST(Slice, SubSharesTheBinary) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto s = frozen(*pool, "0123456789");
  auto mid = s.sub(2, 5);
  EXPECT_EQ(mid, "234");
  EXPECT_EQ(mid.data(), s.data() + 2);
  EXPECT_EQ(s.use_count(), 2u);
  EXPECT_TRUE(mid.pooled());
  auto tail = s.sub(7);
  EXPECT_EQ(tail, "789");
  auto none = s.sub(10);
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(none.has_owner()); // zero length, still a reference
  EXPECT_EQ(s.use_count(), 4u);
  auto all = s.sub(0, 10);
  EXPECT_EQ(all, s);
  EXPECT_EQ(pool->slots().in_use(), 1);
  EXPECT_EQ(slice::viewed_bytes(), 10 + 3 + 3 + 0 + 10);
}

TEST(Slice, SplitToTakesTheHead) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto s = frozen(*pool, "GET /path");
  auto* base = s.data();
  auto head = s.split_to(4);
  EXPECT_EQ(head, "GET ");
  EXPECT_EQ(s, "/path");
  EXPECT_EQ(head.data(), base);
  EXPECT_EQ(s.data(), base + 4);
  EXPECT_EQ(s.use_count(), 2u);
  EXPECT_EQ(slice::viewed_bytes(), 9);
  auto rest = s.split_to(s.size());
  EXPECT_EQ(rest, "/path");
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(s.has_owner());
  auto nothing = rest.split_to(0);
  EXPECT_TRUE(nothing.empty());
  EXPECT_EQ(rest, "/path");
}

TEST(Slice, SplitOffTakesTheTail) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto s = frozen(*pool, "name:value");
  auto tail = s.split_off(5);
  EXPECT_EQ(s, "name:");
  EXPECT_EQ(tail, "value");
  EXPECT_EQ(tail.data(), s.data() + 5);
  EXPECT_EQ(s.use_count(), 2u);
  EXPECT_EQ(slice::viewed_bytes(), 10);
  auto empty_tail = s.split_off(s.size());
  EXPECT_TRUE(empty_tail.empty());
  EXPECT_EQ(s, "name:");
}

TEST(Slice, AdvanceAndShrinkMoveTheView) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto s = frozen(*pool, "[payload]");
  s.advance(1);
  EXPECT_EQ(s, "payload]");
  EXPECT_EQ(slice::viewed_bytes(), 8);
  s.shrink(7);
  EXPECT_EQ(s, "payload");
  EXPECT_EQ(slice::viewed_bytes(), 7);
  s.advance(0);
  s.shrink(s.size());
  EXPECT_EQ(s, "payload");
  s.advance(7);
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(s.has_owner());
  EXPECT_EQ(slice::viewed_bytes(), 0);
  EXPECT_EQ(slice::live_count(), 1);
  EXPECT_EQ(pool->slots().in_use(), 1);
}

TEST(Slice, SliceRefTurnsAViewBackIntoASlice) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto s = frozen(*pool, "user=alice;role=admin");
  auto text = s.view();
  auto value = text.substr(text.find('=') + 1, 5);
  ASSERT_EQ(value, "alice");
  auto owned = s.slice_ref(value);
  EXPECT_EQ(owned, "alice");
  EXPECT_EQ(reinterpret_cast<const char*>(owned.data()), value.data());
  EXPECT_EQ(s.use_count(), 2u);
  s.reset();
  EXPECT_EQ(owned, "alice"); // owns its binary now
  EXPECT_EQ(pool->slots().in_use(), 1);
  auto empty = owned.slice_ref(std::string_view{});
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(empty.has_owner());
  EXPECT_EQ(owned.use_count(), 2u);
  auto whole = owned.slice_ref(owned.view());
  EXPECT_EQ(whole, owned);
}

TEST(Slice, ContainsOnlyViewsInsideTheSlice) {
  auto s = slice::copy_of("abcdef");
  auto v = s.view();
  EXPECT_TRUE(s.contains(v));
  EXPECT_TRUE(s.contains(v.substr(2, 3)));
  EXPECT_TRUE(s.contains(v.substr(6)));
  std::string copy{v};
  EXPECT_FALSE(s.contains(copy)); // same bytes elsewhere
  auto inner = s.sub(1, 4);
  EXPECT_FALSE(inner.contains(v));              // overlaps past both ends
  EXPECT_FALSE(inner.contains(v.substr(0, 2))); // starts before
  EXPECT_FALSE(inner.contains(v.substr(3, 3))); // ends after
  EXPECT_TRUE(inner.contains(v.substr(1, 3)));
}

TEST(Slice, ComparesByContent) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto pooled = frozen(*pool, "abc");
  auto dedicated = slice::copy_of("abc");
  auto other = slice::copy_of("abd");
  EXPECT_NE(pooled.data(), dedicated.data());
  EXPECT_TRUE(pooled == dedicated);
  EXPECT_FALSE(pooled != dedicated);
  EXPECT_TRUE(pooled != other);
  EXPECT_TRUE(pooled < other);
  EXPECT_FALSE(other < pooled);
  EXPECT_FALSE(pooled < dedicated);
  EXPECT_TRUE(pooled == "abc"sv);
  EXPECT_TRUE("abc"sv == pooled);
  EXPECT_TRUE(pooled != "ab"sv);
  EXPECT_TRUE(slice{} == ""sv);
  EXPECT_TRUE(slice{} < pooled);
  auto empty_owned = pooled.sub(0, 0);
  EXPECT_TRUE(empty_owned == slice{});
}

TEST(Slice, HashesByContentLikeStringView) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto pooled = frozen(*pool, "some key");
  auto dedicated = slice::copy_of("some key");
  std::hash<slice> h;
  EXPECT_EQ(h(pooled), h(dedicated));
  EXPECT_EQ(h(pooled), std::hash<std::string_view>{}("some key"sv));
  EXPECT_EQ(h(slice{}), std::hash<std::string_view>{}(""sv));
  std::unordered_set<slice> set;
  set.insert(pooled);
  EXPECT_EQ(set.count(dedicated), 1u);
  EXPECT_EQ(set.count(slice::copy_of("other")), 0u);
  EXPECT_FALSE(set.insert(dedicated).second);
  EXPECT_EQ(pooled.use_count(), 2u); // the set holds a copy
  set.clear();
  EXPECT_EQ(pooled.use_count(), 1u);
}

TEST(Slice, DetachCopiesOutAndUnpins) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto datagram = frozen(*pool, "KEY value that pins the slot");
  auto key = datagram.sub(0, 3);
  auto kept = key.detach();
  EXPECT_EQ(kept, "KEY");
  EXPECT_FALSE(kept.pooled());
  EXPECT_TRUE(kept.has_owner());
  EXPECT_NE(kept.data(), key.data());
  EXPECT_EQ(kept.pinned_bytes(), 3u);
  EXPECT_EQ(kept.use_count(), 1u);
  EXPECT_EQ(key.use_count(), 2u); // detach took no reference on the slot
  EXPECT_EQ(dedicated_binaries::live(), 1);
  datagram.reset();
  EXPECT_EQ(pool->slots().in_use(), 1);
  key.reset(); // the original binary goes back to its pool
  EXPECT_EQ(pool->slots().in_use(), 0);
  EXPECT_EQ(kept, "KEY");
}

TEST(Slice, DetachOfAWholeDedicatedBinaryIsItself) {
  auto s = slice::copy_of("exact");
  auto before = dedicated_binaries::allocations();
  auto d = s.detach();
  EXPECT_EQ(d.data(), s.data());
  EXPECT_EQ(s.use_count(), 2u);
  EXPECT_EQ(dedicated_binaries::allocations(), before);
  // Part of a dedicated binary is copied: it would pin the rest.
  auto part = s.sub(1, 3).detach();
  EXPECT_EQ(part, "xa");
  EXPECT_NE(part.data(), s.data() + 1);
  EXPECT_EQ(dedicated_binaries::allocations(), before + 1);
  EXPECT_EQ(part.pinned_bytes(), 2u);
}

TEST(Slice, DetachOfEmptySlicesPinsNothing) {
  EXPECT_FALSE(slice{}.detach().has_owner());
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto s = frozen(*pool, "x");
  auto empty = s.sub(1);
  ASSERT_TRUE(empty.has_owner());
  auto d = empty.detach();
  EXPECT_TRUE(d.empty());
  EXPECT_FALSE(d.has_owner());
  EXPECT_EQ(s.use_count(), 2u);
}

TEST(Slice, OutlivesEveryOtherHandle) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  slice last;
  {
    auto buf = pool->try_acquire();
    ASSERT_TRUE(buf);
    std::memcpy(buf.data(), "abcdef", 6);
    auto first = buf.split_to(3);
    auto second = buf.split_to(3);
    last = second.sub(1);
    EXPECT_EQ(first.use_count(), 4u); // buf, first, second, last
  } // the writable handle and every other slice are gone
  EXPECT_EQ(last.use_count(), 1u);
  EXPECT_EQ(last, "ef");
  EXPECT_EQ(pool->slots().in_use(), 1);
  // ... and may die on another thread.
  std::thread other{[s = std::move(last)]() mutable {
    EXPECT_EQ(s, "ef");
    s.reset();
  }};
  other.join();
  EXPECT_EQ(pool->slots().in_use(), 0);
  EXPECT_EQ(pool->slots().count(mayfly::slot_pool::cross_thread_releases), 1);
}

TEST(Slice, ZeroLengthSliceWithAnOwnerHoldsTheBinary) {
  auto pool = make_buffer_pool(2);
  ASSERT_TRUE(pool);
  auto buf = pool->try_acquire();
  ASSERT_TRUE(buf);
  auto s = std::move(buf).freeze(0); // an empty datagram
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(s.has_owner());
  EXPECT_TRUE(s.pooled());
  EXPECT_EQ(s.use_count(), 1u);
  EXPECT_EQ(s.pinned_bytes(), pool->slot_size());
  EXPECT_EQ(slice::live_count(), 1);
  EXPECT_EQ(slice::viewed_bytes(), 0);
  auto copy = s;
  EXPECT_EQ(s.use_count(), 2u);
  EXPECT_EQ(copy, s);
  EXPECT_EQ(pool->slots().in_use(), 1);
  s.reset();
  copy.reset();
  EXPECT_EQ(pool->slots().in_use(), 0);
}

TEST(Slice, LiveCountAndViewedBytesBalance) {
  auto pool = make_buffer_pool(4);
  ASSERT_TRUE(pool);
  {
    auto a = frozen(*pool, "0123456789"); // 1 slice, 10 bytes
    auto b = a.sub(2, 6);                 // 2, 14
    auto c = b;                           // 3, 18
    auto d = std::move(c);                // 3, 18
    EXPECT_EQ(slice::live_count(), 3);
    EXPECT_EQ(slice::viewed_bytes(), 18);
    d.advance(1);           // 3, 17
    auto e = d.split_to(1); // 4, 17
    EXPECT_EQ(slice::live_count(), 4);
    EXPECT_EQ(slice::viewed_bytes(), 17);
    auto f = a.detach(); // 5, 27
    EXPECT_EQ(slice::live_count(), 5);
    EXPECT_EQ(slice::viewed_bytes(), 27);
    b.reset(); // 4, 23
    EXPECT_EQ(slice::live_count(), 4);
    EXPECT_EQ(slice::viewed_bytes(), 23);
  }
  EXPECT_EQ(slice::live_count(), 0);
  EXPECT_EQ(slice::viewed_bytes(), 0);
  EXPECT_EQ(pool->slots().in_use(), 0);
}

TEST(Slice, MarkHolderOnAnOwnerlessSliceIsHarmless) {
  slice s;
  s.mark_holder(7);
  EXPECT_FALSE(s.has_owner());
}

TEST(SliceDeathTest, SubPastTheEndAborts) {
  auto s = slice::copy_of("abc");
  EXPECT_DEATH((void) s.sub(2, 4), "assertion failed");
  EXPECT_DEATH((void) s.sub(3, 2), "assertion failed");
  EXPECT_DEATH(s.advance(4), "assertion failed");
  EXPECT_DEATH(s.shrink(4), "assertion failed");
}

TEST(SliceDeathTest, SliceRefOfForeignBytesAborts) {
  auto s = slice::copy_of("abc");
  std::string elsewhere = "abc";
  EXPECT_DEATH((void) s.slice_ref(elsewhere), "assertion failed");
}

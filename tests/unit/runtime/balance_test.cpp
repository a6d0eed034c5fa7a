// Every test of this binary must release what it made. A listener checks,
// after each test, that no slice, dedicated binary or mayfly heap block is
// still alive, and fails the test otherwise (pools are per test; a pool
// destroyed with slots out aborts on its own).

#include <atomic>

#include <gtest/gtest.h>

#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/heap.hpp>
#include <mayfly/runtime/slice.hpp>

namespace {

std::atomic<int> tests_started{0};

class balance_listener : public ::testing::EmptyTestEventListener {
public:
  void OnTestStart(const ::testing::TestInfo&) override {
    tests_started.fetch_add(1);
  }

  // Listeners appended after the default printer get OnTestEnd first, so a
  // failure added here is printed as this test's failure.
  void OnTestEnd(const ::testing::TestInfo& info) override {
    auto slices = mayfly::slice::live_count();
    auto bytes = mayfly::slice::viewed_bytes();
    auto dedicated = mayfly::dedicated_binaries::live();
    auto heap = mayfly::heap_blocks_live();
    if (slices != 0 || bytes != 0 || dedicated != 0 || heap != 0)
      ADD_FAILURE() << "balance check after " << info.test_suite_name() << "."
                    << info.name() << ": slice::live_count()=" << slices
                    << " slice::viewed_bytes()=" << bytes
                    << " dedicated_binaries::live()=" << dedicated
                    << " heap_blocks_live()=" << heap
                    << " (all must be 0: the test leaked)";
  }
};

// Installed before main (gtest_main) runs the tests.
const bool installed = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new balance_listener);
  return true;
}();

} // namespace

TEST(Balance, ListenerIsInstalled) {
  ASSERT_TRUE(installed);
  // OnTestStart ran for this test, so the listener is live.
  EXPECT_GE(tests_started.load(), 1);
}

TEST(Balance, CountersAreZeroBetweenTests) {
  EXPECT_EQ(mayfly::slice::live_count(), 0);
  EXPECT_EQ(mayfly::slice::viewed_bytes(), 0);
  EXPECT_EQ(mayfly::dedicated_binaries::live(), 0);
  EXPECT_EQ(mayfly::dedicated_binaries::live_bytes(), 0);
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
}

TEST(Balance, CountersSeeLiveObjects) {
  // The listener's figures move when something is alive, so a leak would be
  // seen (this test releases everything before it ends).
  auto s = mayfly::slice::copy_of("leak?");
  EXPECT_EQ(mayfly::slice::live_count(), 1);
  EXPECT_EQ(mayfly::slice::viewed_bytes(), 5);
  EXPECT_EQ(mayfly::dedicated_binaries::live(), 1);
  EXPECT_EQ(mayfly::heap_blocks_live(), 1);
  s.reset();
  EXPECT_EQ(mayfly::slice::live_count(), 0);
  EXPECT_EQ(mayfly::heap_blocks_live(), 0);
}

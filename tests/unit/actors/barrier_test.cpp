// The order gate behind `handler_context::after_earlier`
// (actors/barrier.hpp): a grace period covers exactly the handlers admitted
// before it was requested, periods are serialized, and concurrent
// admissions and exits never make a period pass early.

#include <mayfly/actors/barrier.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

using mayfly::order_gate;

TEST(OrderGate, APeriodWaitsForEveryHandlerAdmittedBefore) {
  order_gate gate;
  auto a = gate.enter();
  auto b = gate.enter();
  auto target = gate.request();
  EXPECT_FALSE(gate.passed(target));
  gate.leave(a);
  EXPECT_FALSE(gate.passed(target));
  gate.leave(b);
  EXPECT_TRUE(gate.passed(target));
  EXPECT_EQ(gate.counted(), 0);
}

TEST(OrderGate, HandlersAdmittedAfterTheRequestDoNotHoldItUp) {
  order_gate gate;
  auto before = gate.enter();
  auto target = gate.request();
  auto after = gate.enter(); // in the new epoch's bucket
  EXPECT_NE(before, after);
  gate.leave(before);
  EXPECT_TRUE(gate.passed(target));
  gate.leave(after);
}

TEST(OrderGate, NothingInFlightPassesAtOnce) {
  order_gate gate;
  EXPECT_TRUE(gate.passed(gate.request()));
  EXPECT_TRUE(gate.passed(gate.request()));
}

TEST(OrderGate, ARequestDuringAPeriodWaitsForTheNextOne) {
  order_gate gate;
  auto first_handler = gate.enter();
  auto first = gate.request();
  // Admitted during the first period: the first does not cover it, a
  // request made now must.
  auto second_handler = gate.enter();
  auto second = gate.request();
  EXPECT_EQ(second, first + 1);
  gate.leave(first_handler);
  EXPECT_TRUE(gate.passed(first));
  EXPECT_FALSE(gate.passed(second)); // second_handler still runs
  // A third admitted now is after both requests: it holds up neither.
  auto third_handler = gate.enter();
  gate.leave(second_handler);
  EXPECT_TRUE(gate.passed(second));
  gate.leave(third_handler);
  EXPECT_EQ(gate.counted(), 0);
}

TEST(OrderGate, RacingAdmissionsNeverPassAPeriodEarly) {
  // Four threads admit and finish "handlers" as fast as they can, marking
  // each one done in a flag array after it leaves. A checker repeatedly
  // records how many handlers had been admitted, requests a period, waits
  // for it, and then every handler admitted before must be done.
  order_gate gate;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::atomic<uint8_t>> done(kThreads * kPerThread);
  std::vector<std::atomic<int>> admitted(kThreads);
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto bucket = gate.enter();
        admitted[t].store(i + 1, std::memory_order_seq_cst);
        if (i % 7 == 0)
          std::this_thread::yield(); // some handlers run longer
        done[t * kPerThread + i].store(1, std::memory_order_relaxed);
        gate.leave(bucket);
      }
    });
  int checks = 0, failures = 0;
  std::thread checker{[&] {
    while (!stop.load()) {
      int seen[kThreads];
      for (int t = 0; t < kThreads; ++t)
        seen[t] = admitted[t].load(std::memory_order_seq_cst);
      auto target = gate.request();
      for (int spin = 0; !gate.passed(target); ++spin)
        std::this_thread::yield();
      for (int t = 0; t < kThreads; ++t)
        for (int i = 0; i < seen[t]; ++i)
          if (done[t * kPerThread + i].load(std::memory_order_relaxed) == 0)
            ++failures;
      ++checks;
    }
  }};
  for (auto& w : workers)
    w.join();
  stop = true;
  checker.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(checks, 0);
  EXPECT_EQ(gate.counted(), 0);
}

} // namespace

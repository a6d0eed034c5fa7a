#include <mayfly/runtime/stats_registry.hpp>

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/runtime/test_util.hpp"

using mayfly::stats_registry;
using json = nlohmann::json;

TEST(StatsRegistry, EmptyDocumentHasTheSchema) {
  stats_registry reg;
  auto doc = reg.collect();
  EXPECT_EQ(doc, (json{{"schema", stats_registry::kSchema}}));
  EXPECT_EQ(stats_registry::kSchema, 1);
}

TEST(StatsRegistry, SourcesAppearAtTheirPaths) {
  stats_registry reg;
  auto r1 = reg.add("/pools", [] { return json{{"in_use", 3}}; });
  auto r2 = reg.add("/handlers/echo", [] { return json{{"calls", 7}}; });
  auto r3 = reg.add("/uptime_s", [] { return json(12.5); });
  auto doc = reg.collect();
  EXPECT_EQ(doc["schema"], 1);
  EXPECT_EQ(doc["pools"]["in_use"], 3);
  EXPECT_EQ(doc["handlers"]["echo"]["calls"], 7);
  EXPECT_EQ(doc["uptime_s"], 12.5);
}

TEST(StatsRegistry, SourcesAreCalledAtEveryCollect) {
  stats_registry reg;
  int calls = 0;
  auto r = reg.add("/n", [&calls] { return json(++calls); });
  EXPECT_EQ(reg.collect()["n"], 1);
  EXPECT_EQ(reg.collect()["n"], 2);
}

TEST(StatsRegistry, ObjectsAtTheSamePathAreMerged) {
  stats_registry reg;
  auto r1 = reg.add("/pools", [] { return json{{"standard", 1}}; });
  auto r2 = reg.add("/pools", [] { return json{{"jumbo", 2}}; });
  auto doc = reg.collect();
  EXPECT_EQ(doc["pools"], (json{{"standard", 1}, {"jumbo", 2}}));
  // Merging is shallow: a later source's member wins.
  auto r3 = reg.add("/pools", [] { return json{{"jumbo", 3}}; });
  EXPECT_EQ(reg.collect()["pools"]["jumbo"], 3);
}

TEST(StatsRegistry, NonObjectsAtTheSamePathAreReplaced) {
  stats_registry reg;
  auto r1 = reg.add("/x", [] { return json(1); });
  auto r2 = reg.add("/x", [] { return json(2); });
  EXPECT_EQ(reg.collect()["x"], 2);
}

TEST(StatsRegistry, RegistrationUnregistersWhenDestroyed) {
  stats_registry reg;
  {
    auto r = reg.add("/gone", [] { return json(1); });
    EXPECT_TRUE(reg.collect().contains("gone"));
  }
  EXPECT_FALSE(reg.collect().contains("gone"));
}

TEST(StatsRegistry, ResetIsIdempotent) {
  stats_registry reg;
  auto keep = reg.add("/keep", [] { return json(1); });
  auto r = reg.add("/drop", [] { return json(2); });
  r.reset();
  EXPECT_FALSE(reg.collect().contains("drop"));
  r.reset();
  EXPECT_TRUE(reg.collect().contains("keep"));
  stats_registry::registration empty;
  empty.reset(); // a default registration owns nothing
}

TEST(StatsRegistry, MovedRegistrationsTransferOwnership) {
  stats_registry reg;
  stats_registry::registration outer;
  {
    auto r = reg.add("/moved", [] { return json(1); });
    outer = std::move(r);
  } // the moved-from registration unregisters nothing
  EXPECT_TRUE(reg.collect().contains("moved"));
  stats_registry::registration constructed{std::move(outer)};
  EXPECT_TRUE(reg.collect().contains("moved"));
  // Move-assigning over a live registration unregisters the old source.
  auto other = reg.add("/other", [] { return json(2); });
  constructed = std::move(other);
  auto doc = reg.collect();
  EXPECT_FALSE(doc.contains("moved"));
  EXPECT_TRUE(doc.contains("other"));
  auto& self = constructed;
  constructed = std::move(self); // self-move keeps it
  EXPECT_TRUE(reg.collect().contains("other"));
  constructed.reset();
  EXPECT_FALSE(reg.collect().contains("other"));
}

TEST(StatsRegistry, ReportsBufferPoolStats) {
  auto pools = mayfly::test::make_pools();
  ASSERT_TRUE(pools);
  stats_registry reg;
  auto r = reg.add("/pools", [&] { return pools->stats(); });
  auto s = mayfly::test::frozen(pools->standard(), "x");
  auto doc = reg.collect();
  EXPECT_EQ(doc["pools"]["standard"]["in_use"], 1);
  EXPECT_TRUE(doc["pools"].contains("jumbo"));
  EXPECT_TRUE(doc["pools"].contains("dedicated"));
}

TEST(StatsRegistry, ConcurrentRegistrationAndCollection) {
  stats_registry reg;
  auto base = reg.add("/base", [] { return json{{"ok", true}}; });
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  const char* paths[kThreads] = {"/t0", "/t1", "/t2", "/t3"};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        auto r = reg.add(paths[t], [i] { return json(i); });
        auto doc = reg.collect();
        if (!doc.contains(paths[t] + 1) || doc["base"]["ok"] != true)
          bad.fetch_add(1);
      }
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(reg.collect(), (json{{"schema", 1}, {"base", {{"ok", true}}}}));
}

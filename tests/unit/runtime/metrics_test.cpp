// Metric descriptions (runtime/metrics.hpp), the registry's descriptions and
// user statistics (runtime/user_metrics.hpp): names validated, sharded adds
// from many threads, documents and descriptions, no allocation per add.

#include <mayfly/runtime/metrics.hpp>
#include <mayfly/runtime/user_metrics.hpp>

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/alloc_counter.hpp"

namespace {

using namespace mayfly;
using json = nlohmann::json;

TEST(Metrics, NamesAreValidated) {
  for (auto ok : {"lines", "a", "bytes_in2", "x_y_z"})
    EXPECT_TRUE(valid_metric_name(ok)) << ok;
  for (auto bad : {"", "Lines", "2lines", "_x", "a-b", "a.b", "a b", "ä",
                   "lines\n"})
    EXPECT_FALSE(valid_metric_name(bad)) << bad;
  EXPECT_TRUE(valid_metric_name(std::string(64, 'a')));
  EXPECT_FALSE(valid_metric_name(std::string(65, 'a')));
}

TEST(Metrics, TimeUnits) {
  EXPECT_EQ(units_per_second("s"), 1.0);
  EXPECT_EQ(units_per_second("ms"), 1e3);
  EXPECT_EQ(units_per_second("us"), 1e6);
  EXPECT_EQ(units_per_second("ns"), 1e9);
  EXPECT_EQ(units_per_second("bytes"), 0.0);
  EXPECT_EQ(units_per_second(""), 0.0);
}

TEST(Metrics, MarkdownTableShowsKindUnitLabelsAndQuantiles) {
  constexpr metric_info list[] = {
    {"hits", metric_kind::counter, "", "hits"},
    {"size", metric_kind::config, "bytes", "size"},
    {"by_code.{code}", metric_kind::counter, "", "by code"},
    {"wait_us", metric_kind::distribution, "us", "waits"},
    {"arena.bytes_", metric_kind::distribution, "bytes", "arena"},
    {"name", metric_kind::text, "", "its name"},
  };
  auto table = markdown_table({"x", "/x", list});
  EXPECT_EQ(table,
            "| field | kind | meaning |\n"
            "|---|---|---|\n"
            "| `hits` | counter | hits |\n"
            "| `size` | config, bytes | size |\n"
            "| `by_code.<code>` | counter | by code |\n"
            "| `wait_us.{p50,p99,max}` | distribution, us | waits |\n"
            "| `arena.bytes_{p50,p99,max}` | distribution, bytes | arena |\n"
            "| `name` | string | its name |\n");
}

TEST(StatsRegistryDescriptions, SharedSectionsAppearOnceAndGoWithTheirSource) {
  constexpr metric_info list[] = {{"n", metric_kind::gauge, "", "n"}};
  const metric_section section{"h", "/h/{name}", list};
  stats_registry reg;
  EXPECT_EQ(reg.descriptions().size(), 1u); // schema
  EXPECT_EQ(reg.descriptions()[0].metrics[0].name, "schema");
  {
    auto a = reg.add("/h/a", [] { return json{{"n", 1}}; }, {section});
    auto b = reg.add("/h/b", [] { return json{{"n", 2}}; }, {section});
    auto d = reg.descriptions();
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[1].path, "/h/{name}");
    EXPECT_EQ(d[1].metrics.data(), list);
  }
  EXPECT_EQ(reg.descriptions().size(), 1u);
}

TEST(UserMetrics, CountersAndGaugesAppearWithTheirDescriptions) {
  stats_registry reg;
  user_metrics user{reg};
  EXPECT_EQ(reg.collect(), (json{{"schema", 1}})); // nothing until declared
  auto lines = user.counter("lines", "syslog lines received", "lines");
  ASSERT_TRUE(lines) << lines.error().message();
  auto depth = user.gauge("depth", "lines waiting");
  ASSERT_TRUE(depth) << depth.error().message();
  lines->add();
  lines->add(4);
  depth->add(3);
  depth->sub(1);
  EXPECT_EQ(lines->value(), 5);
  EXPECT_EQ(depth->value(), 2);
  auto doc = reg.collect();
  EXPECT_EQ(doc["counters"], (json{{"lines", 5}}));
  EXPECT_EQ(doc["gauges"], (json{{"depth", 2}}));
  auto more = user.counter("bytes", "syslog bytes", "bytes");
  ASSERT_TRUE(more);
  EXPECT_EQ(reg.collect()["counters"], (json{{"bytes", 0}, {"lines", 5}}));
  std::vector<metric_info> seen;
  for (auto& s : reg.descriptions())
    for (auto& m : s.metrics)
      if (s.path == "/counters" || s.path == "/gauges")
        seen.push_back(m);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].name, "lines");
  EXPECT_EQ(seen[0].kind, metric_kind::counter);
  EXPECT_EQ(seen[0].unit, "lines");
  EXPECT_EQ(seen[0].help, "syslog lines received");
  EXPECT_EQ(seen[1].name, "bytes");
  EXPECT_EQ(seen[2].name, "depth");
  EXPECT_EQ(seen[2].kind, metric_kind::gauge);
}

TEST(UserMetrics, BadDuplicateAndTooManyNamesAreClearErrors) {
  stats_registry reg;
  user_metrics user{reg};
  auto bad = user.counter("Lines Received", "x");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::invalid_config);
  EXPECT_NE(bad.error().message().find("\"Lines Received\""),
            std::string::npos)
    << bad.error().message();
  EXPECT_NE(bad.error().message().find("[a-z0-9_]"), std::string::npos);
  EXPECT_FALSE(user.counter("x", "two\nlines"));
  ASSERT_TRUE(user.counter("lines", "x"));
  auto dup = user.gauge("lines", "x");
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message().find("already declared"),
            std::string::npos);
  for (size_t i = 1; i < user_metrics::kMaxMetrics; ++i)
    ASSERT_TRUE(user.counter("c" + std::to_string(i), "x"));
  auto full = user.counter("one_more", "x");
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message().find("too many"), std::string::npos);
  EXPECT_EQ(reg.collect()["counters"].size(), user_metrics::kMaxMetrics);
}

TEST(UserMetrics, AddsFromManyThreadsSumExactly) {
  stats_registry reg;
  user_metrics user{reg};
  auto c = *user.counter("hits", "hits");
  auto g = *user.gauge("level", "level");
  constexpr int kThreads = 4, kAdds = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([c, g] {
      for (int i = 0; i < kAdds; ++i) {
        c.add();
        g.add(2);
        g.sub(1);
      }
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(c.value(), kThreads * kAdds);
  EXPECT_EQ(reg.collect()["gauges"]["level"], kThreads * kAdds);
}

TEST(UserMetrics, AddDoesNotAllocate) {
  if (!test::counting_enabled())
    GTEST_SKIP() << "allocation counting is off in sanitizer builds";
  stats_registry reg;
  user_metrics user{reg};
  auto c = *user.counter("hits", "hits");
  auto g = *user.gauge("level", "level");
  c.add(); // the thread's index is assigned on first use
  auto before = test::allocation_count();
  for (int i = 0; i < 1000; ++i) {
    c.add();
    g.add(1);
    g.sub(1);
  }
  EXPECT_EQ(test::allocation_count(), before);
}

} // namespace

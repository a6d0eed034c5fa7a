// Issue 17 parts 1 and 3 end to end: a real runtime, a UDP endpoint and the
// stats endpoint on loopback, real datagrams. A handler forwards a slice of
// each datagram to a long-lived actor that keeps it; the figures of the
// detach policy ("detach") and of the top holders ("holders") are read from
// GET /stats and GET /metrics over HTTP.

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include <mayfly/actors/messages.hpp>
#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/stats_endpoint.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include "tests/support/small_runtime.hpp"
#include "exposition.hpp"
#include "tests/support/loopback_endpoints.hpp"
#include "tests/support/net_clients.hpp"

namespace {

using namespace mayfly;
using json = nlohmann::json;

/// The body of `GET target`, or "" on any failure.
std::string http_get(const udp_address& server, const std::string& target) {
  return test::http_get(server, target).value_or("");
}

// A long-lived actor keeping every slice it is sent. (The int works around
// CAF 0.17.6's argument-less function-based spawn.)
caf::behavior keeper(caf::event_based_actor*, int,
                     std::shared_ptr<std::atomic<int>> count) {
  auto kept = std::make_shared<std::vector<slice>>();
  return {[kept, count](const slice& s) {
    kept->push_back(s);
    count->fetch_add(1);
  }};
}

class HoldersOverLoopback : public ::testing::Test {
protected:
  // `detach`: the runtime's policy. Handler "fwd" sends the first
  // `kept_bytes` bytes of each datagram to the long-lived "keeper" and
  // replies "ok".
  void start(detach_config detach, uint32_t top_holders,
             size_t kept_bytes = 8) {
    auto cfg = test::small_runtime_config();
    cfg.detach = detach;
    cfg.top_holders = top_holders;
    auto made = runtime::make(cfg);
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    auto k = rt->spawn(keeper, 0, kept);
    ASSERT_NE(rt->mark_long_lived(k, "keeper"), 0u);
    auto& h = rt->add_handler("fwd", [k, kept_bytes](handler_context& ctx,
                                                     const datagram& d) {
      ctx.send(k, d.payload.sub(0, kept_bytes));
      ctx.reply(std::string_view{"ok"});
    });
    udp = test::open_udp_on_loopback(*rt, h);
    ASSERT_NE(udp, nullptr);
    stats = test::open_stats_on_loopback(*rt);
    ASSERT_NE(stats, nullptr);
    rt->start();
  }

  void TearDown() override {
    test::stop_and_expect_balanced(rt);
  }

  // Sends `n` datagrams of `size` bytes, each answered, then waits until
  // the keeper holds them all and no handler is in flight.
  void send_datagrams(int n, size_t size = 100) {
    test::udp_client client{udp->local_address()};
    for (int i = 0; i < n; ++i) {
      std::string d = "key." + std::to_string(1000 + i);
      d.resize(size, '.');
      ASSERT_TRUE(client.send(d));
      ASSERT_TRUE(client.receive()) << "no reply to datagram " << i;
    }
    ASSERT_TRUE(test::eventually([&] {
      return kept->load() == n && rt->in_flight() == 0;
    }));
  }

  json stats_json() {
    return json::parse(http_get(stats->local_address(), "/stats"), nullptr,
                       false);
  }

  test::exposition metrics() {
    auto m = test::parse_exposition(http_get(stats->local_address(),
                                             "/metrics"));
    EXPECT_EQ(m.error, "");
    return m;
  }

  std::unique_ptr<runtime> rt;
  std::shared_ptr<std::atomic<int>> kept = std::make_shared<std::atomic<int>>(0);
  udp_endpoint* udp = nullptr;
  stats_endpoint* stats = nullptr;
};

TEST_F(HoldersOverLoopback, PolicyOnReleasesBinariesEarlyAndCountsIt) {
  start(detach_config{}, 10);
  send_datagrams(20);
  // Every datagram's slot is back once its handler ended: the keeper holds
  // 8-byte copies, not the 2 KiB slots.
  json s;
  ASSERT_TRUE(test::eventually([&] {
    s = stats_json();
    return !s.is_discarded() && s["detach"]["binaries_released_early"] == 20;
  })) << s.dump();
  auto& d = s["detach"];
  EXPECT_EQ(d["enabled"], true);
  EXPECT_EQ(d["max_slice_bytes"], 128);
  EXPECT_EQ(d["min_binary_bytes"], 1024);
  EXPECT_EQ(d["long_lived"], 1);
  EXPECT_EQ(d["slices_detached"], 20);
  EXPECT_EQ(d["bytes_copied"], 20 * 8);
  EXPECT_EQ(d["detach_failures"], 0);
  EXPECT_EQ(d["sent_as_is"], 0);
  EXPECT_EQ(d["mark_refused"], 0);
  EXPECT_GE(s["binaries"]["dedicated_live"].get<int64_t>(), 20) << s.dump();
  // No pool binary is attributed to the keeper.
  EXPECT_FALSE(s["holders"]["by_holder"].contains("keeper")) << s.dump();
  EXPECT_EQ(s["holders"]["top_n"], 10);
  auto m = metrics();
  EXPECT_EQ(m.series["mayfly_detach_slices_detached_total"], 20);
  EXPECT_EQ(m.series["mayfly_detach_bytes_copied_total"], 160);
  EXPECT_EQ(m.series["mayfly_detach_binaries_released_early_total"], 20);
  EXPECT_EQ(m.series["mayfly_detach_long_lived"], 1);
  EXPECT_EQ(m.series["mayfly_detach_enabled"], 1);
  EXPECT_EQ(m.series["mayfly_detach_max_slice_bytes"], 128);
  EXPECT_EQ(m.series["mayfly_detach_min_binary_bytes"], 1024);
  EXPECT_EQ(m.types["mayfly_detach_long_lived"], "gauge");
  EXPECT_EQ(m.types["mayfly_detach_slices_detached_total"], "counter");
  EXPECT_EQ(m.series["mayfly_holders_top_n"], 10);
  EXPECT_EQ(m.types["mayfly_holders_top_n"], "gauge");
}

TEST_F(HoldersOverLoopback, PolicyOffTheKeeperLeadsTheTopHolders) {
  detach_config off;
  off.enabled = false;
  start(off, 1);
  send_datagrams(20);
  json s;
  ASSERT_TRUE(test::eventually([&] {
    s = stats_json();
    return !s.is_discarded()
           && s["holders"]["by_holder"].contains("keeper")
           && s["holders"]["by_holder"]["keeper"]["binaries"] == 20;
  })) << s.dump();
  auto slot = s["pools"]["standard"]["slot_size"].get<int64_t>();
  auto& keeper = s["holders"]["by_holder"]["keeper"];
  EXPECT_EQ(keeper["pinned_bytes"], 20 * slot) << s.dump();
  // Viewed: the keeper's 8-byte slices, not the 100-byte datagrams.
  EXPECT_EQ(keeper["viewed_bytes"], 20 * 8) << s.dump();
  EXPECT_GT(keeper["oldest_age_ms"].get<double>(), 0.0) << s.dump();
  // top_n = 1: at most one name plus "(other)".
  EXPECT_LE(s["holders"]["by_holder"].size(), 2u) << s.dump();
  EXPECT_EQ(s["holders"]["top_n"], 1);
  EXPECT_GE(s["holders"]["holders"].get<int64_t>(), 1);
  EXPECT_EQ(s["detach"]["enabled"], false);
  EXPECT_EQ(s["detach"]["sent_as_is"], 20);
  EXPECT_EQ(s["detach"]["slices_detached"], 0);
  EXPECT_EQ(s["detach"]["binaries_released_early"], 0);
  EXPECT_EQ(s["binaries"]["oldest_holder"], "keeper");
  // /stats never shows payload bytes: the keys sent are nowhere in it.
  EXPECT_EQ(s.dump().find("key.10"), std::string::npos);
  auto m = metrics();
  const std::string k = "{holder=\"keeper\"}";
  EXPECT_EQ(m.series["mayfly_holders_by_holder_binaries" + k], 20);
  EXPECT_EQ(m.series["mayfly_holders_by_holder_pinned_bytes" + k],
            static_cast<double>(20 * slot));
  EXPECT_EQ(m.series["mayfly_holders_by_holder_viewed_bytes" + k], 160);
  EXPECT_EQ(m.types["mayfly_holders_by_holder_viewed_bytes"], "gauge");
  EXPECT_GT(m.series["mayfly_holders_by_holder_oldest_age_seconds" + k], 0);
  EXPECT_EQ(m.types["mayfly_holders_by_holder_pinned_bytes"], "gauge");
  EXPECT_EQ(m.series["mayfly_detach_sent_as_is_total"], 20);
  // The holder label takes at most top_n + 1 values.
  size_t holder_series = 0;
  for (auto& [name, value] : m.series)
    if (name.rfind("mayfly_holders_by_holder_binaries{", 0) == 0)
      ++holder_series;
  EXPECT_GE(holder_series, 1u);
  EXPECT_LE(holder_series, 2u);
}

// The bytes a holder uses against the bytes it keeps: a 10-byte slice of
// each 1000-byte datagram, kept by a long-lived actor as it is (policy
// off), views 10 bytes and pins a whole slot.
TEST_F(HoldersOverLoopback, ViewedBytesAreTheKeptSlicesNotTheDatagrams) {
  detach_config off;
  off.enabled = false;
  start(off, 10, 10);
  send_datagrams(5, 1000);
  json s;
  ASSERT_TRUE(test::eventually([&] {
    s = stats_json();
    return !s.is_discarded()
           && s["holders"]["by_holder"].contains("keeper")
           && s["holders"]["by_holder"]["keeper"]["binaries"] == 5;
  })) << s.dump();
  auto slot = s["pools"]["standard"]["slot_size"].get<int64_t>();
  auto& keeper = s["holders"]["by_holder"]["keeper"];
  EXPECT_EQ(keeper["viewed_bytes"], 5 * 10) << s.dump();
  EXPECT_EQ(keeper["pinned_bytes"], 5 * slot) << s.dump();
  // Frozen: the datagrams' 1000 bytes each, still in the pool's census.
  EXPECT_GE(s["pools"]["standard"]["binaries"]["live_bytes"].get<int64_t>(),
            5 * 1000)
    << s.dump();
  auto m = metrics();
  EXPECT_EQ(m.series["mayfly_holders_by_holder_viewed_bytes{holder=\"keeper\"}"],
            50);
}

} // namespace

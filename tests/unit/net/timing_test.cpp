// Issue 17, parts 4 and 5, with a real runtime and real loopback traffic:
// the stall report (a slow handler reported while it runs, on the IO thread
// and on a worker, and counted after; a fast one never reported) and the
// latency histograms (every figure read back from /stats and /metrics of a
// real stats endpoint: counts equal the datagrams handled, sums plausible,
// Prometheus buckets cumulative), and both switched off.
//
// Log lines are captured through the logger's sink (runtime/log.hpp).
// Nothing asserts on speed: a stall is made by sleeping well past the
// threshold, and the fast-handler test uses a threshold no echo comes near.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/stats_endpoint.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include <mayfly/runtime/latency_histogram.hpp>
#include <mayfly/runtime/log.hpp>
#include "tests/support/small_runtime.hpp"
#include "exposition.hpp"
#include "tests/support/loopback_endpoints.hpp"
#include "tests/support/net_clients.hpp"


namespace {

using namespace mayfly;
using json = nlohmann::json;

/// Captures every log line while alive.
class captured_log {
public:
  captured_log() {
    set_log_sink(&sink_);
  }

  ~captured_log() {
    set_log_sink(nullptr);
  }

  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return lines_;
  }

  /// Lines that contain `what`.
  std::vector<std::string> matching(const std::string& what) const {
    std::vector<std::string> out;
    for (auto& l : lines())
      if (l.find(what) != std::string::npos)
        out.push_back(l);
    return out;
  }

private:
  static void add(void* ctx, const char* line) {
    auto* self = static_cast<captured_log*>(ctx);
    std::lock_guard<std::mutex> guard{self->mtx_};
    self->lines_.emplace_back(line);
  }

  mutable std::mutex mtx_;
  std::vector<std::string> lines_;
  log_sink sink_{&captured_log::add, this};
};

/// The body of `GET target`, or "" on any failure.
std::string http_get(const udp_address& server, const std::string& target) {
  return test::http_get(server, target).value_or("");
}

class Timing : public ::testing::Test {
protected:
  void TearDown() override {
    test::stop_and_expect_balanced(rt);
  }

  /// A runtime with `handler` under "slow"/"echo" behind one UDP endpoint
  /// and a stats endpoint.
  void start(runtime_config cfg, const std::string& name, handler_fn fn,
             handler_start where = handler_start::io_thread) {
    auto made = runtime::make(std::move(cfg));
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    type = &rt->add_handler(name, std::move(fn));
    endpoint_config ec;
    ec.handler_start = where;
    udp = test::open_udp_on_loopback(*rt, *type, ec);
    ASSERT_NE(udp, nullptr);
    stats = test::open_stats_on_loopback(*rt);
    ASSERT_NE(stats, nullptr);
    rt->start();
  }

  json handler_stats() {
    auto body = http_get(stats->local_address(), "/stats");
    auto doc = json::parse(body, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << body;
    return doc["handlers"][type->name()];
  }

  /// A handler that sleeps 30 ms, then waits (bounded, 5 s) until the
  /// watchdog has reported it, noting whether it saw the report while
  /// still running, and its own kernel thread id.
  handler_fn slow_handler() {
    return [this](handler_context& ctx, const datagram& d) {
      handler_tid.store(static_cast<int>(::syscall(SYS_gettid)));
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      for (int i = 0; i < 5000 && log.matching("running for").empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      reported_while_running.store(!log.matching("running for").empty());
      ctx.reply(d.payload);
    };
  }

  void expect_stall_reported_and_counted(const char* thread_name) {
    test::udp_client client{udp->local_address(), 10000};
    ASSERT_TRUE(client.send("slow"));
    ASSERT_TRUE(client.receive());
    EXPECT_TRUE(reported_while_running.load());
    auto live = log.matching("running for");
    ASSERT_EQ(live.size(), 1u) << "once per activation";
    EXPECT_NE(live[0].find("stall: handler 'slow' on thread '"),
              std::string::npos)
      << live[0];
    if (thread_name != nullptr) {
      EXPECT_NE(live[0].find(std::string{"thread '"} + thread_name + "'"),
                std::string::npos)
        << live[0];
    }
    EXPECT_NE(live[0].find("(tid " + std::to_string(handler_tid.load()) + ","),
              std::string::npos)
      << live[0];
    // Counted after: stalls, the live report, the longest, the final line.
    ASSERT_TRUE(test::eventually([&] { return type->count(handler_type::stalls) == 1; }));
    EXPECT_EQ(type->count(handler_type::stall_reports), 1);
    EXPECT_GE(type->stall_max_ns(), 30000000);
    auto h = handler_stats();
    EXPECT_EQ(h["stalls"], 1);
    EXPECT_EQ(h["stall_reports"], 1);
    EXPECT_GE(h["stall_max_us"].get<double>(), 30000.0);
    auto ended = log.matching("ran for");
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_NE(ended[0].find("stall: handler 'slow' on thread '"),
              std::string::npos)
      << ended[0];
    auto metrics = http_get(stats->local_address(), "/metrics");
    auto p = test::parse_exposition(metrics);
    EXPECT_EQ(p.error, "");
    EXPECT_EQ(p.series["mayfly_handlers_stalls_total{handler=\"slow\"}"], 1);
  }

  captured_log log;
  std::unique_ptr<runtime> rt;
  handler_type* type = nullptr;
  udp_endpoint* udp = nullptr;
  stats_endpoint* stats = nullptr;
  std::atomic<bool> reported_while_running{false};
  std::atomic<int> handler_tid{0};
};

// -- stall report ---------------------------------------------------------------

TEST_F(Timing, StallOnTheIoThreadIsReportedWhileRunningAndCountedAfter) {
  start(test::small_runtime_config(), "slow", slow_handler(),
        handler_start::io_thread);
  expect_stall_reported_and_counted("mayfly-io");
}

TEST_F(Timing, StallOnAWorkerIsReportedWhileRunningAndCountedAfter) {
  start(test::small_runtime_config(), "slow", slow_handler(),
        handler_start::workers);
  expect_stall_reported_and_counted(nullptr); // CAF's workers are unnamed
  EXPECT_EQ(log.matching("mayfly-io").size(), 0u);
}

// The watchdog sleeps (no timeout) once nothing has run for a while; the
// first activation after the idle period wakes it, so a stall is still
// reported while it runs.
TEST_F(Timing, StallAfterALongIdlePeriodIsStillReported) {
  start(test::small_runtime_config(), "slow", slow_handler(),
        handler_start::io_thread);
  auto sleeps = [&] {
    return rt->collect_stats()["runtime"]["stall_watchdog_sleeps"]
      .get<int64_t>();
  };
  ASSERT_TRUE(test::eventually([&] { return sleeps() >= 1; }))
    << "the watchdog never went to sleep on an idle runtime";
  std::this_thread::sleep_for(std::chrono::milliseconds(300)); // stays idle
  EXPECT_EQ(sleeps(), 1) << "woke with nothing running";
  expect_stall_reported_and_counted("mayfly-io");
  // Idle again: back to sleep.
  EXPECT_TRUE(test::eventually([&] { return sleeps() >= 2; }));
}

TEST_F(Timing, FastHandlerIsNeverReported) {
  auto cfg = test::small_runtime_config();
  // Far above any echo, even descheduled on a loaded 2-core machine: the
  // test is about the detector not firing, not about this machine's speed.
  cfg.stall_threshold_ms = 500;
  start(cfg, "echo", [](handler_context& ctx, const datagram& d) {
    ctx.reply(d.payload);
  });
  test::udp_client client{udp->local_address()};
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(client.send("ping"));
    ASSERT_TRUE(client.receive());
  }
  // Give the watchdog (every 250 ms here) a few rounds.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(log.matching("stall").size(), 0u);
  auto h = handler_stats();
  EXPECT_EQ(h["stalls"], 0);
  EXPECT_EQ(h["stall_reports"], 0);
  EXPECT_EQ(h["stall_max_us"].get<double>(), 0.0);
}

TEST_F(Timing, ZeroThresholdTurnsTheReportOff) {
  auto cfg = test::small_runtime_config();
  cfg.stall_threshold_ms = 0;
  start(cfg, "slow", [](handler_context& ctx, const datagram& d) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ctx.reply(d.payload);
  });
  test::udp_client client{udp->local_address()};
  ASSERT_TRUE(client.send("slow"));
  ASSERT_TRUE(client.receive());
  ASSERT_TRUE(test::eventually([&] { return type->in_flight() == 0; }));
  EXPECT_EQ(log.matching("stall").size(), 0u);
  EXPECT_EQ(type->count(handler_type::stalls), 0);
}

// -- latency histograms ------------------------------------------------------------

TEST_F(Timing, HistogramsCountEveryDatagramInStatsAndMetrics) {
  for (auto where : {handler_start::io_thread, handler_start::workers}) {
    SCOPED_TRACE(to_string(where));
    start(test::small_runtime_config(), "echo",
          [](handler_context& ctx, const datagram& d) {
            ctx.reply(d.payload);
          },
          where);
    constexpr int kDatagrams = 50;
    test::udp_client client{udp->local_address()};
    for (int i = 0; i < kDatagrams; ++i) {
      ASSERT_TRUE(client.send("ping " + std::to_string(i)));
      ASSERT_TRUE(client.receive());
    }
    // The reply reached us before the replier recorded it: wait for that.
    ASSERT_TRUE(test::eventually([&] {
      return type->latency_of(handler_type::reply_to_kernel).count()
               == kDatagrams
             && type->in_flight() == 0;
    }));
    auto h = handler_stats();
    ASSERT_TRUE(h.contains("latency")) << h.dump();
    for (auto key : {"receive_to_start", "run", "reply_to_kernel"}) {
      SCOPED_TRACE(key);
      auto& lat = h["latency"][key];
      EXPECT_EQ(lat["count"], kDatagrams);
      uint64_t total = 0;
      for (auto& c : lat["counts"])
        total += c.get<uint64_t>();
      EXPECT_EQ(total, uint64_t{kDatagrams});
      ASSERT_EQ(lat["bounds_us"].size(), kLatencyBoundsUs.size());
      // Plausible: positive, and under a second on average.
      auto sum = lat["sum_us"].get<double>();
      EXPECT_GT(sum, 0.0);
      EXPECT_LT(sum / kDatagrams, 1e6);
    }
    auto metrics = http_get(stats->local_address(), "/metrics");
    auto p = test::parse_exposition(metrics);
    EXPECT_EQ(p.error, "") << metrics;
    for (auto key : {"receive_to_start", "run", "reply_to_kernel"}) {
      SCOPED_TRACE(key);
      auto family = std::string{"mayfly_handlers_latency_"} + key + "_seconds";
      EXPECT_EQ(p.types[family], "histogram");
      // Every bucket once, bounds in seconds, counts cumulative.
      auto prefix = family + "_bucket{handler=\"echo\",le=\"";
      std::vector<std::pair<double, double>> buckets; // (le, count)
      for (auto& [series, value] : p.series) {
        if (series.compare(0, prefix.size(), prefix) != 0)
          continue;
        auto le = series.substr(prefix.size(), series.size() - prefix.size() - 2);
        buckets.emplace_back(le == "+Inf" ? HUGE_VAL : std::stod(le), value);
      }
      std::sort(buckets.begin(), buckets.end());
      ASSERT_EQ(buckets.size(), kLatencyBoundsUs.size() + 1) << metrics;
      for (size_t i = 0; i < kLatencyBoundsUs.size(); ++i)
        EXPECT_DOUBLE_EQ(buckets[i].first, kLatencyBoundsUs[i] / 1e6);
      for (size_t i = 1; i < buckets.size(); ++i)
        EXPECT_GE(buckets[i].second, buckets[i - 1].second) << "cumulative";
      auto inf = family + "_bucket{handler=\"echo\",le=\"+Inf\"}";
      EXPECT_EQ(p.series[inf], kDatagrams);
      EXPECT_EQ(p.series[family + "_count{handler=\"echo\"}"], kDatagrams);
      auto sum = p.series[family + "_sum{handler=\"echo\"}"];
      EXPECT_GT(sum, 0.0);
      EXPECT_LT(sum / kDatagrams, 1.0);
    }
    test::stop_and_expect_balanced(rt);
  }
}

TEST_F(Timing, HistogramsOffRecordNothing) {
  auto cfg = test::small_runtime_config();
  cfg.latency_histograms = false;
  start(cfg, "echo", [](handler_context& ctx, const datagram& d) {
    ctx.reply(d.payload);
  });
  test::udp_client client{udp->local_address()};
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client.send("ping"));
    ASSERT_TRUE(client.receive());
  }
  ASSERT_TRUE(test::eventually([&] { return type->in_flight() == 0; }));
  auto body = http_get(stats->local_address(), "/stats");
  auto doc = json::parse(body, nullptr, false);
  EXPECT_EQ(doc["runtime"]["latency_histograms"], false);
  for (auto key : {"receive_to_start", "run", "reply_to_kernel"})
    EXPECT_EQ(doc["handlers"]["echo"]["latency"][key]["count"], 0) << key;
}

} // namespace

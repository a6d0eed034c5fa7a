// Issue 16 parts 3 and 4 on loopback: CPU steering of an endpoint's
// receive threads (a datagram is read by the thread pinned to the CPU that
// took it; a refusal falls back to the kernel's hash and says why), and the
// drain at stop (a socket leaves the port, then what the kernel queued for
// it is read and answered, nothing left behind).

#include <mayfly/net/udp_endpoint.hpp>

#include <gtest/gtest.h>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/internal/socket_calls.hpp>
#include <mayfly/net/internal/steering.hpp>
#include <mayfly/net/prometheus.hpp>
#include <mayfly/net/socket.hpp>
#include "tests/support/small_runtime.hpp"
#include "tests/support/net_clients.hpp"

namespace {

using namespace mayfly;
using namespace std::chrono_literals;

class SteeringTest : public ::testing::Test {
protected:
  void start(endpoint_config ec, handler_fn fn = {}) {
    auto made = runtime::make(test::small_runtime_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    if (!fn)
      fn = [](handler_context& ctx, const datagram& d) {
        ctx.reply(d.payload);
      };
    auto& h = rt->add_handler("echo", std::move(fn));
    if (ec.address.family() == AF_UNSPEC)
      ec.address = *udp_address::parse("127.0.0.1:0");
    auto ep = udp_endpoint::open(*rt, h, ec);
    ASSERT_TRUE(ep) << ep.error().message();
    endpoint = *ep;
    rt->start();
  }

  void TearDown() override {
    detail::replace_socket_calls(nullptr);
    test::stop_and_expect_balanced(rt);
  }

  nlohmann::json stats() {
    return rt->collect_stats()["net"][endpoint->name()];
  }

  // `n` round trips from a client thread running only on `cpu`.
  void echo_from_cpu(int cpu, int n) {
    std::thread t{[&] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), 0);
      test::udp_client client{endpoint->local_address()};
      for (int i = 0; i < n; ++i) {
        ASSERT_TRUE(client.send("from cpu " + std::to_string(cpu)));
        ASSERT_TRUE(client.receive()) << i;
      }
    }};
    t.join();
  }

  static endpoint_config two_steered_threads() {
    endpoint_config ec;
    ec.receive_threads = 2;
    ec.steering = steering::cpu;
    return ec;
  }

  std::unique_ptr<runtime> rt;
  udp_endpoint* endpoint = nullptr;
};

TEST_F(SteeringTest, EachDatagramIsReadByTheThreadOfTheCpuThatSentIt) {
  // On loopback the receive softirq runs on the sender's CPU (checked on
  // kernel 6.18 before relying on it), so a client pinned to CPU c lands on
  // the thread pinned to c.
  auto cpus = detail::allowed_cpus();
  if (cpus.size() < 2)
    GTEST_SKIP() << "needs two CPUs";
  start(two_steered_threads());
  auto st = stats();
  ASSERT_EQ(st["steering"], "cpu") << st.dump();
  ASSERT_EQ(st["threads"].size(), 2u);
  constexpr int kEach = 100;
  for (int round = 0; round < 2; ++round) {
    int cpu = cpus[static_cast<size_t>(round)];
    echo_from_cpu(cpu, kEach);
    st = stats();
    for (auto& [index, t] : st["threads"].items()) {
      // The thread pinned to `cpu` read this round's datagrams; the other
      // has what it read in earlier rounds.
      int64_t expected = 0;
      for (int r = 0; r <= round; ++r)
        if (t["cpu"] == cpus[static_cast<size_t>(r)])
          expected += kEach;
      EXPECT_EQ(t["datagrams_in"], expected)
        << "thread " << index << " after the round on CPU " << cpu << ": "
        << st.dump();
    }
  }
  EXPECT_EQ(st["datagrams_in"], 2 * kEach);
}

TEST_F(SteeringTest, ThreadsAppearInTheMetricsWithAThreadLabel) {
  start(two_steered_threads());
  echo_from_cpu(detail::allowed_cpus().front(), 3);
  auto text = to_prometheus(rt->collect_stats(), rt->stats().descriptions());
  EXPECT_NE(text.find("mayfly_net_threads_datagrams_in_total{endpoint=\""
                      + endpoint->name() + "\",thread=\"0\"}"),
            std::string::npos)
    << text;
  EXPECT_NE(text.find(",thread=\"1\"}"), std::string::npos);
}

TEST_F(SteeringTest, IsOffUnlessAskedFor) {
  endpoint_config ec;
  ec.receive_threads = 2;
  start(ec);
  auto st = stats();
  EXPECT_EQ(st["steering"], "off");
  EXPECT_EQ(st["threads"]["0"]["cpu"], -1);
  EXPECT_EQ(st["reuse_port"], true);
}

TEST_F(SteeringTest, OneThreadHasNothingToSteer) {
  endpoint_config ec;
  ec.steering = steering::cpu;
  start(ec);
  EXPECT_EQ(stats()["steering"], "off: one receive thread");
}

// The kernel refuses the program: the hash spreads, threads are unpinned,
// the statistic says why, and datagrams are answered as ever.
int refuse_cbpf(int fd, int level, int name, const void* value,
                socklen_t len) noexcept {
  if (level == SOL_SOCKET && name == SO_ATTACH_REUSEPORT_CBPF)
    return -EPERM;
  return ::setsockopt(fd, level, name, value, len) == 0 ? 0 : -errno;
}

TEST_F(SteeringTest, ARefusedProgramFallsBackToTheKernelsHash) {
  detail::socket_calls calls = detail::real_socket_calls();
  calls.setsockopt = refuse_cbpf;
  detail::replace_socket_calls(&calls);
  start(two_steered_threads());
  auto st = stats();
  EXPECT_EQ(st["steering"],
            "off: SO_ATTACH_REUSEPORT_CBPF refused: Operation not permitted");
  EXPECT_EQ(st["threads"]["0"]["cpu"], -1);
  EXPECT_EQ(st["threads"]["1"]["cpu"], -1);
  echo_from_cpu(detail::allowed_cpus().front(), 20);
  EXPECT_EQ(stats()["datagrams_in"], 20);
}

int refuse_pinning(pthread_t, const cpu_set_t& cpus) noexcept {
  // Unpinning (more than one CPU) is allowed; pinning to one is not.
  return CPU_COUNT(&cpus) == 1 ? -EINVAL : 0;
}

TEST_F(SteeringTest, RefusedPinningFallsBackToTheKernelsHash) {
  detail::socket_calls calls = detail::real_socket_calls();
  calls.set_affinity = refuse_pinning;
  detail::replace_socket_calls(&calls);
  start(two_steered_threads());
  auto st = stats();
  EXPECT_EQ(st["steering"].get<std::string>().rfind(
              "off: pinning a thread to CPU ", 0),
            0u)
    << st.dump();
  EXPECT_EQ(st["threads"]["0"]["cpu"], -1);
  echo_from_cpu(detail::allowed_cpus().front(), 20);
  EXPECT_EQ(stats()["datagrams_in"], 20);
}

TEST(SteeringConfig, ParsesSteeringAndReusePort) {
  auto cfg = parse_endpoint_config(nlohmann::json::parse(
    R"({"net": {"receive_threads": 2, "steering": "cpu", "reuse_port": true}})"));
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_EQ(cfg->steering, steering::cpu);
  EXPECT_TRUE(cfg->reuse_port);
  auto bad = parse_endpoint_config(
    nlohmann::json::parse(R"({"net": {"steering": "numa"}})"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("steering"), std::string::npos)
    << bad.error().message();
}

// -- the drain at stop -----------------------------------------------------------

// The kernel behaviour the drain relies on (Linux 6.18): a socket of a
// SO_REUSEPORT group that leaves the port keeps what it had queued and
// receives nothing new; the rest of the group gets all new datagrams.
TEST(LeavePort, ASocketThatLeftThePortKeepsItsQueueAndGetsNothingNew) {
  socket_options opts;
  opts.reuse_port = true;
  opts.receive_buffer = 1 << 20;
  auto a = udp_socket::open(*udp_address::parse("127.0.0.1:0"), opts);
  ASSERT_TRUE(a);
  auto port = *a->local_address();
  auto send_from_many = [&](int n) {
    for (int i = 0; i < n; ++i) {
      test::udp_client c{port}; // a new source port each: the hash spreads
      ASSERT_TRUE(c.send("x"));
    }
  };
  send_from_many(20); // queued in A before B exists
  auto b = udp_socket::open(port, opts);
  ASSERT_TRUE(b);
  ASSERT_TRUE(a->leave_port());
  send_from_many(200);
  auto count = [](const udp_socket& s) {
    int n = 0;
    char buf[16];
    while (::recv(s.fd(), buf, sizeof(buf), MSG_DONTWAIT) >= 0)
      ++n;
    return n;
  };
  EXPECT_EQ(count(*a), 20);
  EXPECT_EQ(count(*b), 200);
}

TEST_F(SteeringTest, StopAnswersWhatTheKernelQueuedAndLeavesNothing) {
  // The first datagram's handler holds the IO thread; 50 more queue in the
  // kernel meanwhile; stop() begins while they wait. All 51 are answered,
  // 50 of them counted as read after leaving the port, none left.
  std::atomic<bool> release{false};
  start({}, [&](handler_context& ctx, const datagram& d) {
    if (d.payload.view() == "hold")
      while (!release.load())
        std::this_thread::sleep_for(1ms);
    ctx.reply(d.payload);
  });
  test::udp_client client{endpoint->local_address()};
  ASSERT_TRUE(client.send("hold"));
  for (int i = 0; i < 200 && stats()["datagrams_in"] == 0; ++i)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(stats()["datagrams_in"], 1);
  constexpr int kQueued = 50;
  for (int i = 0; i < kQueued; ++i)
    ASSERT_TRUE(client.send("queued " + std::to_string(i)));
  std::thread releaser{[&] {
    std::this_thread::sleep_for(100ms); // stop() is under way by then
    release.store(true);
  }};
  auto name = endpoint->name();
  rt->stop();
  releaser.join();
  int answers = 0;
  test::udp_client* c = &client;
  while (c->receive())
    ++answers;
  EXPECT_EQ(answers, kQueued + 1);
  auto st = rt->collect_stats()["net"][name];
  EXPECT_EQ(st["drained_at_stop"], kQueued) << st.dump();
  EXPECT_EQ(st["left_in_kernel_at_close"], 0);
  EXPECT_EQ(st["shutdown_drops"], 0);
  EXPECT_EQ(st["datagrams_out"], kQueued + 1);
}

} // namespace

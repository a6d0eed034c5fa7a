// Issue 16 part 2 on real loopback sockets: an echo endpoint whose handler
// type has a per-source limit. One source floods at far over the rate
// while another, on a different address, sends now and then: the flooder
// is held to about rate * time + burst, the other gets every answer, and
// every datagram is accounted for (sent = answered + refused + counted
// drops).

#include <mayfly/net/udp_endpoint.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <mayfly/actors/runtime.hpp>
#include "tests/support/small_runtime.hpp"

namespace {

using namespace mayfly;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// A UDP socket bound to `local_ip` (a loopback address of its own),
// connected to `server`.
class bound_client {
public:
  bound_client(const char* local_ip, const udp_address& server) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int size = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, local_ip, &local.sin_addr);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local))
             == 0;
    connected_ = ::connect(fd_, server.sockaddr_ptr(), server.size()) == 0;
  }

  ~bound_client() {
    ::close(fd_);
  }

  bound_client(const bound_client&) = delete;
  bound_client& operator=(const bound_client&) = delete;

  bool ok() const {
    return fd_ >= 0 && bound_ && connected_;
  }

  bool send(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), 0)
           == static_cast<ssize_t>(bytes.size());
  }

  /// Whether a datagram arrived within `timeout_ms` (it is consumed).
  bool receive(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1)
      return false;
    char buf[2048];
    return ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT) >= 0;
  }

  /// Reads every datagram waiting, until none came for `quiet_ms`.
  int64_t drain(int quiet_ms) {
    int64_t n = 0;
    while (receive(quiet_ms))
      ++n;
    return n;
  }

private:
  int fd_ = -1;
  bool bound_ = false;
  bool connected_ = false;
};

class SourceLimitEndpoint : public ::testing::Test {
protected:
  void start(source_limit_options limit) {
    auto made = runtime::make(test::small_runtime_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    handler_options options;
    options.source_limit = limit;
    type = &rt->add_handler(
      "echo",
      [](handler_context& ctx, const datagram& d) { ctx.reply(d.payload); },
      options);
    endpoint_config ec;
    ec.address = *udp_address::parse("127.0.0.1:0");
    auto ep = udp_endpoint::open(*rt, *type, ec);
    ASSERT_TRUE(ep) << ep.error().message();
    endpoint = *ep;
    rt->start();
  }

  void TearDown() override {
    test::stop_and_expect_balanced(rt);
  }

  nlohmann::json net_stats() {
    return rt->collect_stats()["net"][endpoint->name()];
  }

  std::unique_ptr<runtime> rt;
  handler_type* type = nullptr;
  udp_endpoint* endpoint = nullptr;
};

TEST_F(SourceLimitEndpoint, AFlooderIsHeldToItsRateWhileAnotherSourceGetsEveryAnswer) {
  source_limit_options limit;
  limit.rate = 200;
  limit.burst = 20;
  start(limit);
  bound_client flooder{"127.0.0.2", endpoint->local_address()};
  bound_client other{"127.0.0.3", endpoint->local_address()};
  ASSERT_TRUE(flooder.ok() && other.ok());
  // 3,000 datagrams in about 0.3 s (some 10,000/s, 50 times the rate),
  // and between every 300 of them one from the other source, which waits
  // for its answer.
  constexpr int kFlood = 3000;
  constexpr int kOther = 10;
  int flood_sent = 0;
  int other_answered = 0;
  auto t0 = steady::now();
  for (int i = 0; i < kFlood; ++i) {
    flood_sent += flooder.send("flood");
    if (i % 100 == 99)
      std::this_thread::sleep_for(10ms);
    if (i % (kFlood / kOther) == kFlood / kOther - 1) {
      ASSERT_TRUE(other.send("other"));
      other_answered += other.receive(2000);
    }
  }
  int64_t sent = flood_sent + kOther;
  // Bounded wait until the endpoint has read (or the kernel dropped, and
  // counted) everything, and answered or refused all it read.
  auto settled = [&] {
    auto st = net_stats();
    auto in = st["datagrams_in"].get<int64_t>();
    return in + st["kernel_drops"].get<int64_t>() == sent
           && st["datagrams_out"].get<int64_t>()
                  + st["source_limit_drops"].get<int64_t>()
                == in;
  };
  EXPECT_TRUE(test::eventually(settled));
  auto elapsed_s = std::chrono::duration<double>(steady::now() - t0).count();
  auto flood_answered = flooder.drain(200);
  auto st = net_stats();
  auto refused = st["source_limit_drops"].get<int64_t>();
  auto out = st["datagrams_out"].get<int64_t>();

  EXPECT_EQ(flood_sent, kFlood);
  EXPECT_EQ(other_answered, kOther); // every answer
  // Every datagram accounted for: answered, refused or counted as dropped.
  EXPECT_EQ(sent, out + refused + st["kernel_drops"].get<int64_t>()
                    + st["policy_drops"].get<int64_t>());
  EXPECT_EQ(flood_answered, out - kOther);
  EXPECT_EQ(type->count(handler_type::source_limited), refused);
  EXPECT_EQ(rt->collect_stats()["handlers"]["echo"]["source_limited"], refused);
  // Held to rate * time + burst: `elapsed_s` spans every receive time the
  // limiter saw (from before the first send to after the last was read),
  // so the bound holds however slowly the machine ran.
  EXPECT_LE(flood_answered, limit.burst + limit.rate * elapsed_s + 1)
    << "elapsed " << elapsed_s << " s";
  EXPECT_GE(flood_answered, limit.burst);
  EXPECT_GT(refused, kFlood / 2) << "elapsed " << elapsed_s << " s";
  EXPECT_EQ(st["source_table_evictions"], 0);
  EXPECT_GE(st["sources_limited_live"].get<int64_t>(), 0);
}

TEST_F(SourceLimitEndpoint, WithoutALimitNothingIsRefused) {
  start(source_limit_options{});
  bound_client client{"127.0.0.2", endpoint->local_address()};
  ASSERT_TRUE(client.ok());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(client.send("x"));
    ASSERT_TRUE(client.receive(2000)) << i;
  }
  auto st = net_stats();
  EXPECT_EQ(st["source_limit_drops"], 0);
  EXPECT_EQ(st["sources_limited_live"], 0);
}

TEST_F(SourceLimitEndpoint, AnInvalidLimitIsAnErrorWhenTheEndpointOpens) {
  auto made = runtime::make(test::small_runtime_config());
  ASSERT_TRUE(made);
  rt = std::move(*made);
  handler_options options;
  options.source_limit.rate = 10;
  options.source_limit.ipv4_prefix = 40;
  auto& h = rt->add_handler(
    "echo", [](handler_context&, const datagram&) {}, options);
  endpoint_config ec;
  ec.address = *udp_address::parse("127.0.0.1:0");
  auto ep = udp_endpoint::open(*rt, h, ec);
  ASSERT_FALSE(ep);
  EXPECT_NE(ep.error().message().find("ipv4_prefix: 40 is not in 0..32"),
            std::string::npos)
    << ep.error().message();
}

} // namespace

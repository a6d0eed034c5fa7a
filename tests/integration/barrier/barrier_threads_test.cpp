// `ctx.after_earlier` (actors/barrier.hpp) with two receive threads. The
// header's contract: the continuation runs after every handler of the type
// admitted before the call, on any thread, has exited. The datagrams a
// client sent before its query on one socket are received before it on the
// same receive socket (SO_REUSEPORT picks the socket by the 4-tuple, so one
// client always lands on one thread), hence admitted before it: the answer
// to a client's query must count every datagram that client sent before,
// exactly, while the other thread admits and runs other clients' handlers.
// 16 client sockets on distinct ports, so that both threads get traffic.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include <mayfly/mayfly.hpp>
#include "tests/support/small_runtime.hpp"
#include "tests/support/net_clients.hpp"

namespace {

using namespace mayfly;
using add_atom = caf::atom_constant<caf::atom("btadd")>;
using get_atom = caf::atom_constant<caf::atom("btget")>;

constexpr int kClients = 16;
constexpr int kRounds = 3;
constexpr int kPerRound = 60; // datagrams per client and round, then a query

class BarrierThreads : public ::testing::Test {
protected:
  void SetUp() override {
    auto cfg = test::small_runtime_config();
    cfg.memory.buffers.standard_capacity = 2048;
    auto made = runtime::make(cfg);
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    // Counts per client (its source port).
    counter = rt->spawn([](caf::event_based_actor*, int) {
      auto counts = std::make_shared<std::unordered_map<uint16_t, int64_t>>();
      return caf::behavior{
        [counts](add_atom, uint16_t port) { ++(*counts)[port]; },
        [counts](get_atom, uint16_t port) { return (*counts)[port]; },
      };
    }, 0);
    handler_options options;
    options.start = handler_start::workers; // earlier handlers still running
    options.overload = overload_policy::pause; // nothing dropped by policy
    options.ask_timeout = std::chrono::seconds(10);
    type = &rt->add_handler(
      "count",
      [this](handler_context& ctx, const datagram& d) {
        auto port = d.peer.port();
        if (d.payload.view() == "?") {
          ctx.after_earlier([&ctx, this, port] {
            ctx.ask(counter, get_atom::value, port)
              .then([&ctx](int64_t n) {
                auto text = std::to_string(n);
                ctx.reply(std::string_view{text});
              });
          });
          return;
        }
        // A random delay, so that without the barrier a query overtakes
        // handlers admitted before it.
        thread_local std::minstd_rand gen{std::random_device{}()};
        std::this_thread::sleep_for(std::chrono::microseconds(gen() % 200));
        ctx.send(counter, add_atom::value, port);
      },
      options);
    endpoint_config ec;
    ec.address = *udp_address::parse("127.0.0.1:0");
    ec.receive_threads = 2; // two sockets, SO_REUSEPORT
    auto ep = udp_endpoint::open(*rt, *type, ec);
    ASSERT_TRUE(ep) << ep.error().message();
    endpoint = *ep;
    rt->start();
  }

  void TearDown() override {
    if (rt)
      rt->stop();
    counter = nullptr; // no handle may outlive the actor system
    test::stop_and_expect_balanced(rt);
  }

  std::unique_ptr<runtime> rt;
  caf::actor counter;
  handler_type* type = nullptr;
  udp_endpoint* endpoint = nullptr;
};

TEST_F(BarrierThreads, EachQueryCountsEveryDatagramItsClientSentBefore) {
  std::vector<std::unique_ptr<test::udp_client>> clients;
  for (int c = 0; c < kClients; ++c) // each on its own ephemeral port
    clients.push_back(
      std::make_unique<test::udp_client>(endpoint->local_address(), 10000));
  for (int round = 1; round <= kRounds; ++round) {
    // Every client's burst and query go out before any answer is read: the
    // two threads admit and run handlers of all clients meanwhile.
    for (auto& client : clients) {
      for (int i = 0; i < kPerRound; ++i)
        ASSERT_TRUE(client->send("+"));
      ASSERT_TRUE(client->send("?"));
    }
    for (int c = 0; c < kClients; ++c) {
      auto answer = clients[static_cast<size_t>(c)]->receive();
      ASSERT_TRUE(answer) << "round " << round << ", client " << c;
      EXPECT_EQ(*answer, std::to_string(kPerRound * round))
        << "round " << round << ", client " << c;
    }
  }
  auto net = rt->collect_stats()["net"][endpoint->name()];
  EXPECT_EQ(net["kernel_drops"], 0);
  EXPECT_EQ(net["policy_drops"], 0);
  EXPECT_EQ(type->count(handler_type::ask_errors), 0);
  // Both receive threads took part (16 four-tuples over two sockets: all
  // on one has probability 2^-15).
  ASSERT_EQ(net["threads"].size(), 2u) << net.dump();
  for (auto& [index, thread] : net["threads"].items())
    EXPECT_GT(thread["datagrams_in"].get<int64_t>(), 0) << "thread " << index;
  EXPECT_EQ(net["datagrams_in"],
            int64_t{kClients} * kRounds * (kPerRound + 1));
}

} // namespace

// Per-handler-type options on real loopback sockets: the overload policy
// and where handlers start are the type's when given, the runtime's and the
// endpoint's otherwise; the arena size is the type's; and `after_earlier`
// (the barrier) answers a query only after every datagram before it was
// handled, raced against a burst of slow handlers.

#include <mayfly/actors/handler.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/udp_endpoint.hpp>
#include "tests/support/small_runtime.hpp"
#include "tests/support/net_clients.hpp"

namespace {

using namespace mayfly;
using add_atom = caf::atom_constant<caf::atom("hoadd")>;
using get_atom = caf::atom_constant<caf::atom("hoget")>;

class HandlerOptions : public ::testing::Test {
protected:
  void make(runtime_config cfg = test::small_runtime_config()) {
    auto made = runtime::make(cfg);
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
  }

  void open(handler_type& h, endpoint_config ec = {}) {
    ec.address = *udp_address::parse("127.0.0.1:0");
    auto ep = udp_endpoint::open(*rt, h, ec);
    ASSERT_TRUE(ep) << ep.error().message();
    endpoint = *ep;
    rt->start();
  }

  void TearDown() override {
    release = true; // a failed test must not leave a handler stuck
    if (rt)
      rt->stop();
    counter = nullptr; // no handle may outlive the actor system
    test::stop_and_expect_balanced(rt);
  }

  nlohmann::json net_stats() {
    return rt->collect_stats()["net"][endpoint->name()];
  }

  // One handler at a time, on a worker (so that the IO thread goes on
  // reading), stuck until `release`; `overload` as given.
  handler_type& add_stuck(std::optional<overload_policy> overload) {
    handler_options options;
    options.max_in_flight = 1;
    options.overload = overload;
    options.start = handler_start::workers;
    return rt->add_handler(
      "stuck",
      [this](handler_context& ctx, const datagram& d) {
        while (!release.load())
          std::this_thread::yield();
        ctx.reply(d.payload);
      },
      options);
  }

  // Sends ten datagrams and waits until the endpoint has read `read` of
  // them. Under `pause` the loop stops reading while the one handler is
  // stuck, so how many it read before depends on how they arrived: wait
  // for the first only.
  void send_ten(test::udp_client& client, int read = 10) {
    for (int i = 0; i < 10; ++i)
      ASSERT_TRUE(client.send("x"));
    ASSERT_TRUE(
      test::eventually([&] { return net_stats()["datagrams_in"] >= read; }));
  }

  std::atomic<bool> release{false};
  std::unique_ptr<runtime> rt;
  udp_endpoint* endpoint = nullptr;
  caf::actor counter;
};

TEST_F(HandlerOptions, TheTypesOverloadPolicyOverridesTheRuntimes) {
  auto cfg = test::small_runtime_config();
  ASSERT_EQ(cfg.overload, overload_policy::pause);
  make(cfg);
  auto& h = add_stuck(overload_policy::drop);
  open(h);
  test::udp_client client{endpoint->local_address(), 500};
  send_ten(client);
  release = true;
  EXPECT_TRUE(client.receive());
  auto st = net_stats();
  EXPECT_EQ(st["policy_drops"], 9);
  EXPECT_EQ(h.count(handler_type::rejected), 9);
}

TEST_F(HandlerOptions, TheRuntimesPolicyAppliesWhenTheTypeSetsNone) {
  make();
  auto& h = add_stuck(std::nullopt);
  open(h);
  test::udp_client client{endpoint->local_address()};
  send_ten(client, 1);
  release = true;
  int replies = 0;
  while (replies < 10 && client.receive())
    ++replies;
  EXPECT_EQ(replies, 10); // pause: held, none dropped
  EXPECT_EQ(net_stats()["policy_drops"], 0);
}

TEST_F(HandlerOptions, TheTypesStartOverridesTheEndpoints) {
  make();
  handler_options options;
  options.start = handler_start::workers;
  auto& h = rt->add_handler("echo",
                            [](handler_context& ctx, const datagram& d) {
                              ctx.reply(d.payload);
                            },
                            options);
  endpoint_config ec;
  ec.handler_start = handler_start::io_thread;
  open(h, ec);
  test::udp_client client{endpoint->local_address()};
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client.send("x"));
    ASSERT_TRUE(client.receive());
  }
  auto st = net_stats();
  EXPECT_EQ(st["handler_start"], "workers");
  EXPECT_EQ(st["handlers_started_inline"], 0);
}

TEST_F(HandlerOptions, TheEndpointsStartAppliesWhenTheTypeSetsNone) {
  make();
  auto& h = test::add_echo_handler(*rt);
  endpoint_config ec;
  ec.handler_start = handler_start::workers;
  open(h, ec);
  test::udp_client client{endpoint->local_address()};
  ASSERT_TRUE(client.send("x"));
  ASSERT_TRUE(client.receive());
  EXPECT_EQ(net_stats()["handler_start"], "workers");
  EXPECT_EQ(net_stats()["handlers_started_inline"], 0);
}

TEST_F(HandlerOptions, TheTypesArenaSizeBoundsItsHandlers) {
  // Pool: 4 KiB blocks, 1 MiB per arena. The type allows 16 KiB.
  make();
  handler_options options;
  options.max_arena_bytes = 16 * 1024;
  auto& h = rt->add_handler(
    "sized",
    [](handler_context& ctx, const datagram& d) {
      auto want = std::stoul(std::string{d.payload.view()});
      ctx.reply(std::string_view{
        ctx.arena().try_allocate(want) != nullptr ? "ok" : "full"});
    },
    options);
  open(h);
  test::udp_client client{endpoint->local_address()};
  auto ask = [&](const char* bytes) {
    EXPECT_TRUE(client.send(bytes));
    return client.receive().value_or("none");
  };
  EXPECT_EQ(ask("8000"), "ok");   // overflow blocks within the limit
  EXPECT_EQ(ask("20000"), "full"); // beyond the type's limit
  EXPECT_EQ(rt->arenas().count(arena_pool::limit_failures), 1);
}

TEST_F(HandlerOptions, AnArenaLimitBelowOneBlockStillGivesTheFirstBlock) {
  make(); // 4 KiB blocks
  handler_options options;
  options.max_arena_bytes = 1;
  auto& h = rt->add_handler(
    "tiny",
    [](handler_context& ctx, const datagram&) {
      ctx.reply(std::string_view{
        ctx.arena().try_allocate(1000) != nullptr ? "ok" : "full"});
    },
    options);
  open(h);
  test::udp_client client{endpoint->local_address()};
  ASSERT_TRUE(client.send("x"));
  EXPECT_EQ(client.receive().value_or("none"), "ok");
}

// -- the barrier ----------------------------------------------------------------

// "+" handlers wait a random while (up to ~300 us) on a worker, then count
// one at the counter actor; "?" answers the count after `after_earlier`.
// Without the barrier, a query that follows a burst asks the counter while
// earlier handlers still wait, and the answer falls short.
class Barrier : public HandlerOptions {
protected:
  void start(uint32_t receive_threads = 1) {
    make();
    counter = rt->spawn([](caf::event_based_actor*, int64_t start) {
      auto n = std::make_shared<int64_t>(start);
      return caf::behavior{
        [n](add_atom) { ++*n; },
        [n](get_atom) { return *n; },
      };
    }, int64_t{0});
    handler_options options;
    options.start = handler_start::workers;
    options.ask_timeout = std::chrono::seconds(5);
    auto& h = rt->add_handler(
      "count",
      [this](handler_context& ctx, const datagram& d) {
        if (d.payload.view() == "?") {
          ctx.after_earlier([&ctx, this] {
            ctx.ask(counter, get_atom::value).then([&ctx](int64_t n) {
              auto text = std::to_string(n);
              ctx.reply(std::string_view{text});
            });
          });
          return;
        }
        thread_local std::minstd_rand gen{std::random_device{}()};
        std::this_thread::sleep_for(std::chrono::microseconds(gen() % 300));
        ctx.send(counter, add_atom::value);
      },
      options);
    endpoint_config ec;
    ec.receive_threads = receive_threads;
    open(h, ec);
    type = &h;
  }

  handler_type* type = nullptr;
};

TEST_F(Barrier, AQueryAfterABurstCountsEveryDatagramBeforeIt) {
  start();
  test::udp_client client{endpoint->local_address(), 5000};
  int64_t sent = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 400; ++i, ++sent)
      ASSERT_TRUE(client.send("+"));
    ASSERT_TRUE(client.send("?"));
    auto answer = client.receive();
    ASSERT_TRUE(answer) << "round " << round;
    EXPECT_EQ(*answer, std::to_string(sent)) << "round " << round;
  }
  EXPECT_EQ(net_stats()["kernel_drops"], 0);
  EXPECT_EQ(type->count(handler_type::ask_errors), 0);
}

TEST_F(Barrier, QueriesInterleavedWithABurstEachCountWhatCameBefore) {
  start();
  test::udp_client client{endpoint->local_address(), 5000};
  // Several queries in flight at once, overlapping grace periods.
  constexpr int kQueries = 5;
  for (int q = 0; q < kQueries; ++q) {
    for (int i = 0; i < 100; ++i)
      ASSERT_TRUE(client.send("+"));
    ASSERT_TRUE(client.send("?"));
  }
  // Each answer is at least the number sent before its query; the largest
  // is all of them (answers may arrive in any order).
  std::vector<int64_t> answers;
  for (int q = 0; q < kQueries; ++q) {
    auto answer = client.receive();
    ASSERT_TRUE(answer) << q;
    answers.push_back(std::stoll(*answer));
  }
  std::sort(answers.begin(), answers.end());
  for (int q = 0; q < kQueries; ++q)
    EXPECT_GE(answers[static_cast<size_t>(q)], 100 * (q + 1)) << q;
  EXPECT_EQ(answers.back(), 100 * kQueries);
}

TEST_F(Barrier, AQueryWithNothingBeforeItIsAnsweredAtOnce) {
  start();
  test::udp_client client{endpoint->local_address()};
  ASSERT_TRUE(client.send("?"));
  EXPECT_EQ(client.receive().value_or("none"), "0");
}

TEST_F(Barrier, AQueryStillWaitingAtStopFailsCleanly) {
  make();
  handler_options options;
  options.start = handler_start::workers;
  auto& h = rt->add_handler(
    "stuck",
    [this](handler_context& ctx, const datagram& d) {
      if (d.payload.view() == "?") {
        ctx.after_earlier([&ctx] { ctx.reply(std::string_view{"late"}); });
        return;
      }
      while (!release.load())
        std::this_thread::yield();
    },
    options);
  open(h);
  test::udp_client client{endpoint->local_address(), 300};
  ASSERT_TRUE(client.send("+"));
  ASSERT_TRUE(client.send("?"));
  // The "+" handler never ends before the query's ask_timeout (1 s).
  EXPECT_FALSE(client.receive());
  ASSERT_TRUE(test::eventually(
    [&] { return h.count(handler_type::ask_errors) == 1; }));
  release = true;
}

} // namespace

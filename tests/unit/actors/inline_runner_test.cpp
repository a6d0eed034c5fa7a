// inline_runner on a real runtime (worker threads): the handler's first
// activation runs on the dispatching thread before dispatch returns; what it
// sends runs on workers; a handler that waits continues on a worker; a
// throwing handler fails alone; refusals start nothing; the test coordinator
// keeps control of its actors; and balances return to zero.

#include <mayfly/actors/inline_runner.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>
#include <thread>

#include <caf/all.hpp>

#include <mayfly/actors/runtime.hpp>
#include "fake_sink.hpp"
#include <mayfly/runtime/heap.hpp>
#include "tests/support/alloc_counter.hpp"
#include "tests/support/small_runtime.hpp"

namespace {

using namespace mayfly;

datagram make_datagram(runtime& rt, datagram_sink& sink, std::string_view text) {
  auto buf = rt.buffers().standard().try_acquire();
  EXPECT_TRUE(buf);
  std::memcpy(buf.data(), text.data(), text.size());
  return datagram{std::move(buf).freeze(text.size()),
                  *udp_address::parse("127.0.0.1:5000"), &sink, 0};
}

// Counts ints it receives, and whether any arrived on `caller`'s thread.
// (The actors here take arguments: for a function actor without any,
// CAF 0.17.6's init_fun_factory binds a reference to a null pointer, which
// UBSan reports.)
caf::behavior counting_actor(caf::event_based_actor*, std::atomic<int>* received,
                             std::atomic<bool>* on_caller,
                             std::thread::id caller) {
  return {[=](int) {
    if (std::this_thread::get_id() == caller)
      *on_caller = true;
    ++*received;
  }};
}

// Requests not answered yet: (promise, x).
using held_requests = std::vector<std::pair<caf::response_promise, int>>;

// Answers `x` with `2 * x`, but only when told to (`ok_atom`): until then
// the requesting handler surely waits.
caf::behavior held_doubler(caf::event_based_actor* self,
                           std::shared_ptr<held_requests> pending) {
  return {
    [self, pending](int x) {
      pending->emplace_back(self->make_response_promise(), x);
      return caf::delegated<int>{};
    },
    [pending](caf::ok_atom) {
      for (auto& [promise, x] : *pending)
        promise.deliver(2 * x);
      pending->clear();
    },
  };
}

using test::eventually;

class InlineRunner : public ::testing::Test {
protected:
  void SetUp() override {
    auto made = runtime::make(test::small_runtime_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
  }

  void TearDown() override {
    sink.take(); // recorded replies hold slices
    test::stop_and_expect_balanced(rt);
  }

  std::unique_ptr<runtime> rt;
  test::fake_sink sink;
};

TEST_F(InlineRunner, RunsTheHandlerOnTheCallingThreadBeforeReturning) {
  std::thread::id ran_on;
  auto& h = rt->add_handler("echo", [&](handler_context& ctx,
                                        const datagram& d) {
    ran_on = std::this_thread::get_id();
    ctx.reply(d.payload);
  });
  rt->start();
  inline_runner runner{*rt};
  for (int i = 0; i < 100; ++i) {
    auto d = make_datagram(*rt, sink, "ping");
    ASSERT_EQ(runner.dispatch(h, d), dispatch_status::spawned);
    // Finished before dispatch returned: counted, reply queued, gone.
    EXPECT_EQ(ran_on, std::this_thread::get_id());
    EXPECT_EQ(h.count(handler_type::exited), i + 1);
    EXPECT_EQ(rt->in_flight(), 0);
  }
  EXPECT_EQ(sink.size(), 100u);
  EXPECT_EQ(runner.started(), 100);
  EXPECT_EQ(runner.continued(), 0);
}

TEST_F(InlineRunner, ActorsTheHandlerMessagesRunOnWorkers) {
  std::atomic<int> received{0};
  std::atomic<bool> on_dispatcher{false};
  auto caller = std::this_thread::get_id();
  auto counter = rt->spawn(counting_actor, &received, &on_dispatcher, caller);
  auto& h = rt->add_handler("forward", [&](handler_context& ctx,
                                           const datagram&) {
    ctx.self()->send(counter, 1);
  });
  rt->start();
  inline_runner runner{*rt};
  for (int i = 0; i < 50; ++i) {
    auto d = make_datagram(*rt, sink, "x");
    ASSERT_EQ(runner.dispatch(h, d), dispatch_status::spawned);
  }
  ASSERT_TRUE(eventually([&] { return received.load() == 50; }));
  EXPECT_FALSE(on_dispatcher.load());
  EXPECT_EQ(runner.started(), 50);
  EXPECT_EQ(runner.continued(), 0);
}

TEST_F(InlineRunner, AHandlerThatWaitsContinuesOnAWorker) {
  auto doubler = rt->spawn(held_doubler, std::make_shared<held_requests>());
  std::atomic<int> answer{0};
  std::atomic<std::thread::id> replied_on{};
  auto& h = rt->add_handler("ask", [&](handler_context& ctx,
                                       const datagram& d) {
    ctx.self()
      ->request(doubler, std::chrono::seconds(5), 21)
      .then([&, ctx_ptr = &ctx, payload = d.payload](int x) {
        replied_on = std::this_thread::get_id();
        answer = x;
        ctx_ptr->reply(payload);
      });
  });
  rt->start();
  inline_runner runner{*rt};
  auto d = make_datagram(*rt, sink, "q");
  ASSERT_EQ(runner.dispatch(h, d), dispatch_status::spawned);
  EXPECT_EQ(runner.continued(), 1);
  EXPECT_EQ(rt->in_flight(), 1);
  caf::anon_send(doubler, caf::ok_atom::value);
  ASSERT_TRUE(eventually([&] { return rt->in_flight() == 0; }));
  EXPECT_EQ(answer.load(), 42);
  EXPECT_NE(replied_on.load(), std::this_thread::get_id());
  EXPECT_EQ(sink.size(), 1u);
  EXPECT_EQ(h.count(handler_type::lingered), 1);
}

TEST_F(InlineRunner, AThrowingHandlerFailsAloneAndTheRunnerGoesOn) {
  auto& h = rt->add_handler("picky", [](handler_context& ctx,
                                        const datagram& d) {
    if (d.payload == "bad")
      throw std::runtime_error("bad input");
    ctx.reply(d.payload);
  });
  rt->start();
  inline_runner runner{*rt};
  auto bad = make_datagram(*rt, sink, "bad");
  ASSERT_EQ(runner.dispatch(h, bad), dispatch_status::spawned);
  EXPECT_EQ(h.count(handler_type::failed), 1);
  auto good = make_datagram(*rt, sink, "good");
  ASSERT_EQ(runner.dispatch(h, good), dispatch_status::spawned);
  EXPECT_EQ(sink.size(), 1u);
  EXPECT_EQ(rt->in_flight(), 0);
}

TEST_F(InlineRunner, RefusalsStartNothing) {
  auto& h = rt->add_handler("h", [](handler_context&, const datagram&) {});
  inline_runner runner{*rt};
  auto d = make_datagram(*rt, sink, "early");
  // Not started yet.
  EXPECT_EQ(runner.dispatch(h, d), dispatch_status::not_running);
  EXPECT_TRUE(d.payload.has_owner()); // untouched: the caller decides
  EXPECT_EQ(runner.started(), 0);
  rt->start();
  // Keeps every request unanswered (until it exits at stop()).
  auto blackhole
    = rt->spawn(held_doubler, std::make_shared<held_requests>());
  auto& one = rt->add_handler(
    "one",
    [&](handler_context& ctx, const datagram&) {
      // Waits for an answer that does not come: holds its in-flight credit.
      ctx.self()->request(blackhole, std::chrono::seconds(30), 1)
        .then([](int) {});
    },
    1);
  auto first = make_datagram(*rt, sink, "1");
  ASSERT_EQ(runner.dispatch(one, first), dispatch_status::spawned);
  auto second = make_datagram(*rt, sink, "2");
  EXPECT_EQ(runner.dispatch(one, second), dispatch_status::overloaded);
  EXPECT_TRUE(second.payload.has_owner());
  EXPECT_EQ(runner.started(), 1);
  EXPECT_EQ(runner.continued(), 1);
  // stop() (TearDown) ends the blackhole: the handler's request fails and
  // it exits.
}

TEST(InlineRunnerTesting, TheTestCoordinatorKeepsControl) {
  auto cfg = test::testing_runtime_config();
  cfg.memory.buffers.standard_capacity = 8;
  cfg.memory.arenas.capacity = 8;
  auto rt = std::move(*test::make_testing_runtime(cfg));
  test::fake_sink sink;
  int runs = 0;
  auto& h = rt->add_handler("h", [&](handler_context&, const datagram&) {
    ++runs;
  });
  rt->start();
  inline_runner runner{*rt};
  auto d = make_datagram(*rt, sink, "x");
  ASSERT_EQ(runner.dispatch(h, d), dispatch_status::spawned);
  EXPECT_EQ(runs, 0); // nothing runs until the test steps the scheduler
  EXPECT_EQ(runner.started(), 0);
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(
    rt->system().scheduler());
  sched.run();
  EXPECT_EQ(runs, 1);
  test::stop_and_expect_balanced(rt);
}

TEST_F(InlineRunner, AllocatesOnlyTheActorPerHandler) {
  if (!test::counting_enabled())
    GTEST_SKIP() << "allocation counting is off under ASan/TSan; the "
                    "release preset runs this test";
  auto& h = test::add_echo_handler(*rt);
  rt->start();
  inline_runner runner{*rt};
  test::counting_sink replies;
  for (int i = 0; i < 1000; ++i) { // warm-up
    auto d = make_datagram(*rt, replies, "abcdefgh");
    ASSERT_EQ(runner.dispatch(h, d), dispatch_status::spawned);
  }
  constexpr int n = 10000;
  int64_t all = 0;
  int64_t ours = 0;
  for (int i = 0; i < n; ++i) {
    // The test's datagram is made outside the counted region.
    auto d = make_datagram(*rt, replies, "abcdefgh");
    auto ours_before = heap_allocations();
    auto all_before = test::allocation_count();
    ASSERT_EQ(runner.dispatch(h, d), dispatch_status::spawned);
    all += test::allocation_count() - all_before;
    ours += heap_allocations() - ours_before;
  }
  EXPECT_EQ(replies.replies.load(), 1000 + n);
  EXPECT_EQ(ours, 0);
  auto per_handler = static_cast<double>(all) / n;
  std::printf("allocations per inline handler (all code): %.3f\n",
              per_handler);
  // The actor's storage, allocated and freed on this thread; no scheduler
  // queue node (nothing is enqueued) and no clock event at exit.
  EXPECT_LE(per_handler, 1.05);
}

} // namespace

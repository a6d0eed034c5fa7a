// Handler actor lifecycle under CAF's deterministic test coordinator: the
// arena is returned and the datagram dropped exactly once on every way a
// handler can end, and slices outlive their handler.

#include <mayfly/actors/handler.hpp>

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <cstring>
#include <stdexcept>

#include <mayfly/actors/messages.hpp>
#include <mayfly/actors/runtime.hpp>
#include "tests/support/small_runtime.hpp"
#include "fake_sink.hpp"

using namespace std::chrono_literals;

namespace {

using namespace mayfly;

runtime_config small_config() {
  auto cfg = test::testing_runtime_config();
  cfg.memory.buffers.standard_capacity = 64;
  cfg.memory.buffers.jumbo_capacity = 2;
  cfg.memory.arenas.capacity = 16;
  cfg.memory.arenas.max_arena_bytes = 64 * 1024;
  return cfg;
}

// Spawns a long-lived function-based actor. The dummy argument works around
// CAF 0.17.6 dereferencing a null shared_ptr<tuple<>> for argument-less
// function-based spawns (harmless in practice, but UBSan aborts on it).
template <class F>
caf::actor spawn_long_lived(runtime& rt, F f) {
  return rt.spawn([f](caf::event_based_actor* self, int) { return f(self); },
                  0);
}

class HandlerTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto made = test::make_testing_runtime(small_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    rt->start();
    peer = *udp_address::parse("127.0.0.1:5000");
  }

  void TearDown() override {
    sink.take();
    rt->stop();
    EXPECT_TRUE(rt->balance().zero()) << rt->balance().to_json().dump();
    rt.reset();
    EXPECT_EQ(slice::live_count(), 0);
  }

  caf::scheduler::test_coordinator& sched() {
    return dynamic_cast<caf::scheduler::test_coordinator&>(
      rt->system().scheduler());
  }

  // A datagram holding `text` in a pool binary, as the receive path makes.
  datagram make_datagram(std::string_view text) {
    auto buf = rt->buffers().acquire(text.size());
    EXPECT_TRUE(buf);
    std::memcpy(buf->data(), text.data(), text.size());
    return datagram{std::move(*buf).freeze(text.size()), peer, &sink, 0};
  }

  dispatch_status dispatch(handler_type& h, std::string_view text) {
    auto d = make_datagram(text);
    return rt->dispatch(h, d);
  }

  std::unique_ptr<runtime> rt;
  test::fake_sink sink;
  udp_address peer;
};

TEST_F(HandlerTest, ReturningHandlerReleasesArenaAndDatagram) {
  size_t used = 0;
  auto& h = rt->add_handler("echo", [&](handler_context& ctx,
                                        const datagram& d) {
    auto* copy = static_cast<char*>(ctx.arena().allocate_bytes(d.payload.size(), 1));
    std::memcpy(copy, d.payload.data(), d.payload.size());
    used = ctx.arena().bytes_used();
    ctx.reply(std::string_view{copy, d.payload.size()});
  });
  ASSERT_EQ(dispatch(h, "hello"), dispatch_status::spawned);
  EXPECT_EQ(rt->arenas().leases_out(), 1);
  EXPECT_EQ(h.in_flight(), 1);
  sched().run();
  EXPECT_GE(used, 5u);
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(h.count(handler_type::spawned), 1);
  EXPECT_EQ(h.count(handler_type::exited), 1);
  EXPECT_EQ(h.count(handler_type::failed), 0);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
  EXPECT_EQ(rt->arenas().count(arena_pool::resets), 1);
  EXPECT_EQ(rt->buffers().standard().slots().in_use(), 0);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].payload, "hello");
  EXPECT_EQ(sent[0].to, peer);
  EXPECT_TRUE(sent[0].copied);
}

TEST_F(HandlerTest, ZeroCopyReplyKeepsRequestBinaryUntilSent) {
  auto& h = test::add_echo_handler(*rt);
  ASSERT_EQ(dispatch(h, "ping"), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.in_flight(), 0);
  // The handler is gone; its reply still holds the received binary.
  EXPECT_EQ(rt->buffers().standard().slots().in_use(), 1);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(sent[0].copied);
  EXPECT_TRUE(sent[0].payload.pooled());
  EXPECT_EQ(sent[0].payload, "ping");
  sent.clear();
  EXPECT_EQ(rt->buffers().standard().slots().in_use(), 0);
}

TEST_F(HandlerTest, ForwardedSliceOutlivesHandler) {
  // A long-lived actor keeps what it is sent.
  auto kept = std::make_shared<std::vector<slice>>();
  auto keeper = spawn_long_lived(*rt, [kept](caf::event_based_actor*) -> caf::behavior {
    return {[kept](const slice& s) { kept->push_back(s); }};
  });
  auto& h = rt->add_handler("fwd", [keeper](handler_context& ctx,
                                            const datagram& d) {
    auto name = d.payload.view().substr(0, d.payload.view().find(':'));
    ctx.send(keeper, d.payload.slice_ref(name));
  });
  ASSERT_EQ(dispatch(h, "cpu.load:42"), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0], "cpu.load");
  // The slice pins the datagram's binary after the handler died.
  EXPECT_EQ(rt->buffers().standard().slots().in_use(), 1);
  EXPECT_EQ((*kept)[0].pinned_bytes(), rt->buffers().standard().slot_size());
  kept->clear();
  EXPECT_EQ(rt->buffers().standard().slots().in_use(), 0);
}

TEST_F(HandlerTest, PinningReportNamesTheHolderOfTheOldestBinary) {
  auto kept = std::make_shared<std::vector<slice>>();
  auto tag = rt->holder_tag("keeper");
  auto keeper = spawn_long_lived(*rt, [kept, tag](caf::event_based_actor*)
                                        -> caf::behavior {
    return {[kept, tag](const slice& s) {
      s.mark_holder(tag); // a long-lived actor that keeps what it gets
      kept->push_back(s);
    }};
  });
  auto& h = rt->add_handler("fwd", [keeper](handler_context& ctx,
                                            const datagram& d) {
    ctx.send(keeper, d.payload.sub(0, 3));
  });
  ASSERT_EQ(dispatch(h, "abc:1"), dispatch_status::spawned);
  sched().run();
  auto doc = rt->collect_stats();
  EXPECT_EQ(doc["binaries"]["oldest_holder"], "keeper");
  EXPECT_GE(doc["binaries"]["oldest_age_ms"].get<double>(), 0.0);
  // A binary only its handler type received is reported as theirs.
  auto d = make_datagram("held by the test");
  d.payload.mark_holder(h.holder_tag());
  kept->clear();
  EXPECT_EQ(rt->collect_stats()["binaries"]["oldest_holder"], "fwd");
}

TEST_F(HandlerTest, ThrowingHandlerDiesAloneAndReleases) {
  auto& h = rt->add_handler("bad", [](handler_context& ctx,
                                      const datagram& d) {
    ctx.arena().make<slice>(d.payload); // registered: released at reset
    if (d.payload == "boom")
      throw std::runtime_error("boom");
    ctx.reply(d.payload);
  });
  ASSERT_EQ(dispatch(h, "boom"), dispatch_status::spawned);
  ASSERT_EQ(dispatch(h, "fine"), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.count(handler_type::failed), 1);
  EXPECT_EQ(h.count(handler_type::exited), 2);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].payload, "fine");
}

TEST_F(HandlerTest, AwaitingHandlerRepliesAfterResponse) {
  auto doubler = spawn_long_lived(*rt, [](caf::event_based_actor*) -> caf::behavior {
    return {[](int x) { return x * 2; }};
  });
  auto& h = rt->add_handler("ask", [doubler](handler_context& ctx,
                                             const datagram&) {
    ctx.self()
      ->request(doubler, 1s, 21)
      .then([&ctx](int y) { ctx.reply(std::to_string(y)); });
  });
  ASSERT_EQ(dispatch(h, "q"), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.count(handler_type::lingered), 1);
  EXPECT_EQ(h.in_flight(), 0);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].payload, "42");
  EXPECT_EQ(rt->arenas().leases_out(), 0);
}

TEST_F(HandlerTest, AskContinuesWithTheAnswer) {
  auto doubler = spawn_long_lived(*rt, [](caf::event_based_actor*) -> caf::behavior {
    return {[](int x) { return x * 2; }};
  });
  auto& h = rt->add_handler("ask", [doubler](handler_context& ctx,
                                             const datagram&) {
    ctx.ask(doubler, 21).then([&ctx](int y) { ctx.reply(std::to_string(y)); });
  });
  ASSERT_EQ(dispatch(h, "q"), dispatch_status::spawned);
  sched().run();
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].payload, "42");
  EXPECT_EQ(h.count(handler_type::ask_errors), 0);
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
}

TEST_F(HandlerTest, AskWithoutAnAnswerSendsTheErrorReplyAndEnds) {
  auto mute = spawn_long_lived(*rt, [](caf::event_based_actor* self) -> caf::behavior {
    return {[self](int) { return self->make_response_promise<int>(); }};
  });
  handler_options options;
  options.ask_timeout = std::chrono::milliseconds{50};
  options.error_reply = "try later";
  bool answered = false;
  auto& h = rt->add_handler("ask", [&answered, mute](handler_context& ctx,
                                                     const datagram&) {
    ctx.ask(mute, 1).then([&answered](int) { answered = true; });
  }, options);
  ASSERT_EQ(dispatch(h, "q"), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.in_flight(), 1); // waiting for the answer
  sched().trigger_timeouts();
  sched().run();
  EXPECT_FALSE(answered);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].payload, "try later");
  EXPECT_EQ(h.count(handler_type::ask_errors), 1);
  EXPECT_EQ(h.count(handler_type::killed), 0);
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
}

TEST_F(HandlerTest, AskAnsweredByAnErrorSendsNothingWithoutAnErrorReply) {
  auto refuser = spawn_long_lived(*rt, [](caf::event_based_actor*) -> caf::behavior {
    return {[](int) -> caf::result<int> { return caf::sec::invalid_argument; }};
  });
  auto& h = rt->add_handler("ask", [refuser](handler_context& ctx,
                                             const datagram&) {
    ctx.ask(refuser, 1).then([&ctx](int) { ctx.reply("unexpected"); });
  });
  ASSERT_EQ(dispatch(h, "q"), dispatch_status::spawned);
  sched().run();
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(h.count(handler_type::ask_errors), 1);
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
}

TEST_F(HandlerTest, HandlerOptionsLeftAtZeroTakeTheRuntimeDefaults) {
  auto& own = rt->add_handler("own", [](handler_context&, const datagram&) {},
                              handler_options{7, std::chrono::milliseconds{5}, ""});
  auto& dflt = rt->add_handler("default",
                               [](handler_context&, const datagram&) {},
                               handler_options{});
  EXPECT_EQ(own.max_in_flight(), 7u);
  EXPECT_EQ(dflt.max_in_flight(), rt->config().max_in_flight);
  EXPECT_EQ(dflt.options().ask_timeout, std::chrono::milliseconds{1000});
}

TEST_F(HandlerTest, RequestTimeoutEndsHandler) {
  // An actor that never answers.
  auto mute = spawn_long_lived(*rt, [](caf::event_based_actor* self) -> caf::behavior {
    return {[self](int) { return self->make_response_promise<int>(); }};
  });
  bool timed_out = false;
  auto& h = rt->add_handler("ask", [&, mute](handler_context& ctx,
                                             const datagram&) {
    ctx.self()->request(mute, 1s, 1).then([](int) {},
                                          [&](caf::error& err) {
                                            timed_out
                                              = err == caf::sec::request_timeout;
                                          });
  });
  ASSERT_EQ(dispatch(h, "q"), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.in_flight(), 1);
  EXPECT_EQ(rt->arenas().leases_out(), 1);
  sched().trigger_timeouts();
  sched().run();
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
}

TEST_F(HandlerTest, KilledHandlerReleases) {
  caf::actor victim;
  auto& h = rt->add_handler("wait", [&](handler_context& ctx,
                                        const datagram&) {
    victim = caf::actor_cast<caf::actor>(ctx.self());
    ctx.self()->become([](int) {}); // lingers
  });
  ASSERT_EQ(dispatch(h, "q"), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.in_flight(), 1);
  caf::anon_send_exit(victim, caf::exit_reason::kill);
  victim = nullptr;
  sched().run();
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(h.count(handler_type::killed), 1);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
}

TEST_F(HandlerTest, StopKillsLingeringHandlersAfterDeadline) {
  // Handlers that keep a behavior and are referenced (here by the test,
  // usually by a peer awaiting them) never end by themselves.
  std::vector<caf::actor> refs;
  auto& h = rt->add_handler("wait", [&](handler_context& ctx,
                                        const datagram&) {
    refs.push_back(caf::actor_cast<caf::actor>(ctx.self()));
    ctx.self()->become([](int) {});
  });
  ASSERT_EQ(dispatch(h, "a"), dispatch_status::spawned);
  ASSERT_EQ(dispatch(h, "b"), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.in_flight(), 2);
  rt->stop();
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(h.count(handler_type::killed), 2);
  EXPECT_TRUE(rt->balance().zero()) << rt->balance().to_json().dump();
  refs.clear();
}

TEST_F(HandlerTest, UnreferencedLingeringHandlerEnds) {
  // A behavior alone does not keep an actor alive: with no reference left,
  // CAF terminates it (unreachable) and the arena comes back.
  auto& h = rt->add_handler("wait", [](handler_context& ctx,
                                       const datagram&) {
    ctx.self()->become([](int) {});
  });
  ASSERT_EQ(dispatch(h, "a"), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
  EXPECT_EQ(h.count(handler_type::killed), 0); // unreachable is not a kill
}

TEST_F(HandlerTest, UnhandledRequestTimeoutIsCountedAsTimedOut) {
  auto mute = spawn_long_lived(*rt, [](caf::event_based_actor* self)
                                 -> caf::behavior {
    return {[self](int) { return self->make_response_promise<int>(); }};
  });
  auto& h = rt->add_handler("ask", [mute](handler_context& ctx,
                                          const datagram&) {
    ctx.self()->request(mute, 1s, 1).then([](int) {}); // no error handler
  });
  ASSERT_EQ(dispatch(h, "q"), dispatch_status::spawned);
  sched().run();
  sched().trigger_timeouts();
  sched().run();
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(h.count(handler_type::timed_out), 1);
  EXPECT_EQ(h.count(handler_type::killed), 0);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
}

TEST_F(HandlerTest, InFlightBoundRefusesAndRecovers) {
  auto& h = rt->add_handler("bounded",
                            [](handler_context&, const datagram&) {}, 2);
  EXPECT_EQ(dispatch(h, "1"), dispatch_status::spawned);
  EXPECT_EQ(dispatch(h, "2"), dispatch_status::spawned);
  auto d = make_datagram("3");
  EXPECT_EQ(rt->dispatch(h, d), dispatch_status::overloaded);
  EXPECT_EQ(d.payload, "3"); // untouched: the caller decides
  sched().run();
  EXPECT_EQ(rt->dispatch(h, d), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.count(handler_type::exited), 3);
  EXPECT_GE(h.peak_in_flight(), 2);
}

TEST_F(HandlerTest, ArenaExhaustionRefusesDatagram) {
  auto& h = rt->add_handler("h", [](handler_context&, const datagram&) {});
  std::vector<arena_lease> held;
  while (auto lease = rt->arenas().lease())
    held.push_back(std::move(lease));
  auto d = make_datagram("x");
  EXPECT_EQ(rt->dispatch(h, d), dispatch_status::no_arena);
  EXPECT_EQ(d.payload, "x");
  EXPECT_EQ(h.in_flight(), 0); // the admission credit was given back
  held.clear();
  EXPECT_EQ(rt->dispatch(h, d), dispatch_status::spawned);
  sched().run();
}

TEST_F(HandlerTest, DispatchAfterStopIsRefused) {
  auto& h = rt->add_handler("h", [](handler_context&, const datagram&) {});
  rt->stop();
  rt->stop(); // harmless
  auto d = make_datagram("x");
  EXPECT_EQ(rt->dispatch(h, d), dispatch_status::not_running);
}

TEST_F(HandlerTest, ExceptionInResponseHandlerIsAFailure) {
  auto echo = spawn_long_lived(*rt, [](caf::event_based_actor*) -> caf::behavior {
    return {[](int x) { return x; }};
  });
  auto& h = rt->add_handler("ask", [echo](handler_context& ctx,
                                          const datagram&) {
    ctx.self()->request(echo, 1s, 1).then([](int) {
      throw std::logic_error("late failure");
    });
  });
  ASSERT_EQ(dispatch(h, "q"), dispatch_status::spawned);
  sched().run();
  EXPECT_EQ(h.count(handler_type::failed), 1);
  EXPECT_EQ(h.in_flight(), 0);
  EXPECT_EQ(rt->arenas().leases_out(), 0);
}

TEST_F(HandlerTest, StatsDocumentHasHandlerSection) {
  auto& h = test::add_echo_handler(*rt);
  ASSERT_EQ(dispatch(h, "a"), dispatch_status::spawned);
  sched().run();
  sink.take();
  auto doc = rt->collect_stats();
  EXPECT_EQ(doc["schema"], stats_registry::kSchema);
  EXPECT_EQ(doc["handlers"]["echo"]["spawned"], 1);
  EXPECT_EQ(doc["handlers"]["echo"]["finished"], 1);
  EXPECT_EQ(doc["handlers"]["echo"]["replies"], 1);
  EXPECT_TRUE(doc["runtime"].contains("workers"));
  EXPECT_TRUE(doc["pools"].contains("standard"));
  EXPECT_TRUE(doc["arenas"].contains("bytes_used"));
}

} // namespace

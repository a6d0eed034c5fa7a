// The one_for_one supervisor (actors/supervisor.hpp) under CAF's
// deterministic test coordinator: a child that is killed or throws is
// detected, counted, reported and replaced in the member table; past the
// restart intensity the supervisor gives up loudly; shutdown takes the
// children along and leaves nothing behind.

#include <mayfly/actors/supervisor.hpp>

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

#include <mayfly/actors/runtime.hpp>
#include "tests/support/small_runtime.hpp"

namespace {

using namespace mayfly;
using boom_atom = caf::atom_constant<caf::atom("boom")>;

runtime_config small_config() {
  auto cfg = test::testing_runtime_config();
  cfg.memory.buffers.standard_capacity = 16;
  cfg.memory.buffers.jumbo_capacity = 1;
  cfg.memory.arenas.capacity = 4;
  return cfg;
}

// A child: answers an int with its slot, throws on `boom`. (The dummy int
// argument avoids CAF 0.17.6's argument-less function spawn, see
// handler_test.cpp.)
caf::behavior child(caf::event_based_actor*, size_t slot) {
  return {
    [slot](int) { return static_cast<int>(slot); },
    [](boom_atom) { throw std::runtime_error("boom"); },
  };
}

class Supervisor : public ::testing::Test {
protected:
  void SetUp() override {
    auto made = test::make_testing_runtime(small_config());
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    rt->start();
    group = std::make_shared<supervised_group>();
  }

  void TearDown() override {
    rt->stop();
    group->clear();
    EXPECT_TRUE(rt->balance().zero()) << rt->balance().to_json().dump();
    rt.reset();
  }

  // Counts down messages of `watched` into `downs`; ends itself after the
  // last one (no handle kept: nothing outlives the system).
  void watch(std::vector<caf::actor> watched) {
    auto n = watched.size();
    rt->system().spawn(
      [this, watched, n](caf::event_based_actor* self, int) -> caf::behavior {
        for (auto& w : watched)
          self->monitor(w);
        self->set_down_handler([this, self, n](caf::down_msg&) {
          if (static_cast<size_t>(++downs) == n)
            self->quit();
        });
        return {[](int) {}};
      },
      0);
  }

  void run() {
    dynamic_cast<caf::scheduler::test_coordinator&>(rt->system().scheduler())
      .run();
  }

  caf::actor start(size_t children, restart_policy policy) {
    supervisor_options opts;
    opts.name = "test child";
    opts.children = children;
    opts.policy = policy;
    opts.make_child = [this](caf::actor_system& sys, size_t slot) {
      auto a = sys.spawn(child, slot);
      a->attach_functor([this] { ++exited; });
      return a;
    };
    opts.on_death = [this](size_t slot, const caf::error&) {
      died.push_back(slot);
    };
    opts.on_give_up = [this] { ++give_ups; };
    auto sup = spawn_supervisor(*rt, std::move(opts), group);
    run();
    return sup;
  }

  std::unique_ptr<runtime> rt;
  std::shared_ptr<supervised_group> group;
  std::vector<size_t> died;
  int give_ups = 0;
  int downs = 0;
  std::atomic<int> exited{0}; // children that terminated, for any reason
};

TEST_F(Supervisor, ChildrenAreVisibleAtOnce) {
  supervisor_options opts;
  opts.children = 3;
  opts.make_child = [](caf::actor_system& sys, size_t slot) {
    return sys.spawn(child, slot);
  };
  spawn_supervisor(*rt, std::move(opts), group);
  // Not one scheduler step yet: senders can already route.
  ASSERT_EQ(group->members()->size(), 3u);
  for (auto& m : *group->members())
    EXPECT_TRUE(m);
  run();
}

TEST_F(Supervisor, KilledChildIsRestartedWithItsSlot) {
  start(2, {5, 10000});
  auto before = group->members();
  caf::anon_send_exit((*before)[1], caf::exit_reason::kill);
  run();
  auto after = group->members();
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0], (*before)[0]);
  EXPECT_NE((*after)[1], (*before)[1]);
  EXPECT_EQ(group->deaths(), 1);
  EXPECT_EQ(group->restarts(), 1);
  EXPECT_EQ(died, std::vector<size_t>{1});
  EXPECT_FALSE(group->gave_up());
  // The new child works and knows its slot.
  caf::scoped_actor self{rt->system()};
  int answer = -1;
  self->send((*after)[1], 0);
  run();
  self->receive([&](int x) { answer = x; });
  EXPECT_EQ(answer, 1);
}

TEST_F(Supervisor, ChildThatThrowsIsRestarted) {
  start(1, {5, 10000});
  auto before = group->members();
  caf::anon_send((*before)[0], boom_atom::value);
  run();
  EXPECT_EQ(group->deaths(), 1);
  EXPECT_EQ(group->restarts(), 1);
  EXPECT_NE((*group->members())[0], (*before)[0]);
}

TEST_F(Supervisor, TooManyRestartsGiveUpLoudly) {
  auto sup = start(2, {2, 60000});
  for (int i = 0; i < 3; ++i) {
    caf::anon_send_exit((*group->members())[0], caf::exit_reason::kill);
    run();
  }
  EXPECT_EQ(group->deaths(), 3);
  EXPECT_EQ(group->restarts(), 2);
  EXPECT_TRUE(group->gave_up());
  EXPECT_EQ(give_ups, 1);
  EXPECT_TRUE(group->members()->empty()); // nothing to route to
  watch({sup});
  run();
  EXPECT_EQ(downs, 1); // the supervisor is gone
}

TEST_F(Supervisor, ShutdownStopsChildrenWithoutCountingDeaths) {
  start(3, {5, 10000});
  rt->stop();
  EXPECT_EQ(exited.load(), 3);
  EXPECT_EQ(group->deaths(), 0);
  EXPECT_TRUE(group->members()->empty());
}

} // namespace

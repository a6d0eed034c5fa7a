// mayfly's scheduler (actors/scheduler.hpp): CAF's work-stealing scheduler
// whose clock only hears about exiting actors that armed a timeout. Timeouts
// must behave exactly as with CAF's own clock.

#include <caf/all.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include <mayfly/actors/scheduler.hpp>
#include "tests/support/alloc_counter.hpp"

namespace {

using namespace std::chrono_literals;
using mayfly::scheduler_clock_stats;

caf::actor_system_config& base_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.max-threads", size_t{2});
  cfg.set("scheduler.max-throughput", size_t{64});
  return cfg;
}

struct mayfly_system {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  mayfly_system() : sys((mayfly::install_scheduler(base_config(cfg)), cfg)) {}

  scheduler_clock_stats stats() {
    scheduler_clock_stats s;
    EXPECT_TRUE(mayfly::scheduler_stats(sys, s));
    return s;
  }

  // CAF tells the registry an actor is done before it tells the clock:
  // after await_all_actors_done(), exits may still be on their way.
  scheduler_clock_stats settled_stats() {
    auto s = stats();
    for (int i = 0; i < 500 && s.tracked_now != 0; ++i) {
      std::this_thread::sleep_for(10ms);
      s = stats();
    }
    return s;
  }
};

// Does its work in make_behavior and returns no behavior: a handler's shape.
class one_shot : public caf::event_based_actor {
public:
  one_shot(caf::actor_config& cfg, std::atomic<int>* ran)
    : caf::event_based_actor(cfg), ran_(ran) {}

  caf::behavior make_behavior() override {
    ran_->fetch_add(1);
    return {};
  }

private:
  std::atomic<int>* ran_;
};

// Never answers (the response is "delegated" to nobody): requests to it
// can only time out.
caf::behavior silent(caf::event_based_actor*, int) {
  return {[](int) -> caf::delegated<int> { return {}; }};
}

TEST(Scheduler, InstalledOnlyWhereAsked) {
  mayfly_system ours;
  scheduler_clock_stats s;
  EXPECT_TRUE(mayfly::scheduler_stats(ours.sys, s));

  caf::actor_system_config cfg;
  caf::actor_system plain{base_config(cfg)};
  EXPECT_FALSE(mayfly::scheduler_stats(plain, s));

  caf::actor_system_config testing_cfg;
  testing_cfg.set("scheduler.policy", caf::atom("testing"));
  mayfly::install_scheduler(testing_cfg); // leaves the test coordinator
  EXPECT_TRUE(testing_cfg.module_factories.empty());
}

TEST(Scheduler, ActorsWithoutTimeoutsNeverReachTheClock) {
  mayfly_system ours;
  std::atomic<int> ran{0};
  constexpr int n = 2000;
  for (int i = 0; i < n; ++i)
    ours.sys.spawn<one_shot>(&ran);
  ours.sys.await_all_actors_done();
  EXPECT_EQ(ran.load(), n);
  auto s = ours.stats();
  EXPECT_EQ(s.armed_actors, 0);
  EXPECT_EQ(s.cancellations_forwarded, 0);
  EXPECT_EQ(s.tracked_now, 0);
}

TEST(Scheduler, RequestTimeoutStillFiresAndItsExitIsForwarded) {
  mayfly_system ours;
  auto mute = ours.sys.spawn(silent, 0);
  std::atomic<bool> timed_out{false};
  ours.sys.spawn([&, mute](caf::event_based_actor* self, int) {
    self->request(mute, 20ms, 1).then([](int) {},
                                      [&, self](caf::error& err) {
                                        timed_out = err == caf::sec::request_timeout;
                                        self->quit();
                                      });
  }, 0);
  // The requester lingers until its timeout: wait for it, then stop `mute`.
  for (int i = 0; i < 500 && !timed_out; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(timed_out.load());
  caf::anon_send_exit(mute, caf::exit_reason::user_shutdown);
  ours.sys.await_all_actors_done();
  auto s = ours.settled_stats();
  EXPECT_EQ(s.armed_actors, 1);
  EXPECT_EQ(s.cancellations_forwarded, 1);
  EXPECT_EQ(s.tracked_now, 0);
}

TEST(Scheduler, ReceiveTimeoutStillFires) {
  mayfly_system ours;
  std::atomic<bool> fired{false};
  ours.sys.spawn([&](caf::event_based_actor* self, int) -> caf::behavior {
    return {[](int) {}, caf::after(10ms) >> [&, self] {
              fired = true;
              self->quit();
            }};
  }, 0);
  ours.sys.await_all_actors_done();
  EXPECT_TRUE(fired.load());
  auto s = ours.settled_stats();
  EXPECT_EQ(s.armed_actors, 1);
  EXPECT_EQ(s.cancellations_forwarded, 1);
  EXPECT_EQ(s.tracked_now, 0);
}

TEST(Scheduler, ExitBeforeTheTimeoutCancelsIt) {
  mayfly_system ours;
  auto mute = ours.sys.spawn(silent, 0);
  std::atomic<bool> called{false};
  ours.sys.spawn([&, mute](caf::event_based_actor* self, int) {
    // A 60 s timeout armed, then the actor leaves at once: its exit must
    // reach CAF's clock, or the timeout would keep a reference to it.
    self->request(mute, 60s, 1).then([&](int) { called = true; },
                                     [&](caf::error&) { called = true; });
    self->quit();
  }, 0);
  caf::anon_send_exit(mute, caf::exit_reason::user_shutdown);
  ours.sys.await_all_actors_done();
  EXPECT_FALSE(called.load());
  auto s = ours.settled_stats();
  EXPECT_EQ(s.armed_actors, 1);
  EXPECT_EQ(s.cancellations_forwarded, 1);
  EXPECT_EQ(s.tracked_now, 0);
}

TEST(Scheduler, DelayedMessagesAreDelivered) {
  mayfly_system ours;
  std::atomic<int> got{0};
  ours.sys.spawn([&](caf::event_based_actor* self, int) -> caf::behavior {
    self->delayed_send(self, 10ms, 42);
    return {[&, self](int x) {
      got = x;
      self->quit();
    }};
  }, 0);
  ours.sys.await_all_actors_done();
  EXPECT_EQ(got.load(), 42);
  EXPECT_EQ(ours.settled_stats().tracked_now, 0);
}

// The reason the scheduler exists: CAF's clock allocates an event for every
// exiting actor. Measured on the same spawn pattern, both schedulers.
double allocations_per_spawn(caf::actor_system& sys) {
  std::atomic<int> ran{0};
  auto batch = [&](int n) {
    int target = ran.load() + n;
    for (int i = 0; i < n; ++i)
      sys.spawn<one_shot>(&ran);
    while (ran.load() < target)
      std::this_thread::yield();
    sys.await_all_actors_done();
  };
  batch(1000); // warm-up
  constexpr int n = 5000;
  auto before = mayfly::test::allocation_count();
  batch(n);
  return static_cast<double>(mayfly::test::allocation_count() - before) / n;
}

TEST(Scheduler, OneAllocationPerSpawnLessThanCafsClock) {
  if (!mayfly::test::counting_enabled())
    GTEST_SKIP() << "allocation counting is off in sanitizer builds";
  double caf_default = 0;
  {
    caf::actor_system_config cfg;
    caf::actor_system plain{base_config(cfg)};
    caf_default = allocations_per_spawn(plain);
  }
  mayfly_system ours;
  double with_ours = allocations_per_spawn(ours.sys);
  std::printf("allocations per spawn: CAF's scheduler %.3f, mayfly's %.3f\n",
              caf_default, with_ours);
  EXPECT_GE(caf_default - with_ours, 0.9);
}

} // namespace

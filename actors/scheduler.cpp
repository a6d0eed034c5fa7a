#include <mayfly/actors/scheduler.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/coordinator.hpp>

#include <atomic>
#include <mutex>
#include <unordered_set>

namespace mayfly {

namespace {

using caf_clock = caf::detail::thread_safe_actor_clock;

// The clock the actors see. Derives from CAF's clock type only because
// coordinator::clock() returns that type; its own queue and dispatch loop
// stay unused: everything is forwarded to `inner_`, the coordinator's
// clock, whose thread dispatches it.
class exit_filtering_clock final : public caf_clock {
public:
  explicit exit_filtering_clock(caf_clock& inner) : inner_(&inner) {}

  void set_ordinary_timeout(time_point t, caf::abstract_actor* self,
                            caf::atom_value type, uint64_t id) override {
    track(self);
    inner_->set_ordinary_timeout(t, self, type, id);
  }

  void set_request_timeout(time_point t, caf::abstract_actor* self,
                           caf::message_id id) override {
    track(self);
    inner_->set_request_timeout(t, self, id);
  }

  void set_multi_timeout(time_point t, caf::abstract_actor* self,
                         caf::atom_value type, uint64_t id) override {
    track(self);
    inner_->set_multi_timeout(t, self, type, id);
  }

  void cancel_ordinary_timeout(caf::abstract_actor* self,
                               caf::atom_value type) override {
    inner_->cancel_ordinary_timeout(self, type);
  }

  void cancel_request_timeout(caf::abstract_actor* self,
                              caf::message_id id) override {
    inner_->cancel_request_timeout(self, id);
  }

  // Called by CAF once per terminating actor: the point of this class.
  void cancel_timeouts(caf::abstract_actor* self) override {
    if (tracked_.load(std::memory_order_acquire) == 0)
      return; // nobody has a timeout armed: nothing to cancel
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (armed_.erase(self->id()) == 0)
        return;
      tracked_.fetch_sub(1, std::memory_order_release);
    }
    forwarded_.fetch_add(1, std::memory_order_relaxed);
    inner_->cancel_timeouts(self);
  }

  void schedule_message(time_point t, caf::strong_actor_ptr receiver,
                        caf::mailbox_element_ptr content) override {
    inner_->schedule_message(t, std::move(receiver), std::move(content));
  }

  void schedule_message(time_point t, caf::group target,
                        caf::strong_actor_ptr sender,
                        caf::message content) override {
    inner_->schedule_message(t, std::move(target), std::move(sender),
                             std::move(content));
  }

  void cancel_all() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      armed_.clear();
      tracked_.store(0, std::memory_order_release);
    }
    inner_->cancel_all();
  }

  scheduler_clock_stats stats() const {
    scheduler_clock_stats s;
    s.armed_actors = armed_total_.load(std::memory_order_relaxed);
    s.cancellations_forwarded = forwarded_.load(std::memory_order_relaxed);
    s.tracked_now = tracked_.load(std::memory_order_relaxed);
    return s;
  }

private:
  void track(caf::abstract_actor* self) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (armed_.insert(self->id()).second) {
      // Published before the timeout reaches CAF's clock: an exit that
      // follows on any thread sees a non-zero count and looks the id up.
      tracked_.fetch_add(1, std::memory_order_release);
      armed_total_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  caf_clock* inner_;
  std::mutex mtx_;
  std::unordered_set<caf::actor_id> armed_; // guarded by mtx_
  std::atomic<int64_t> tracked_{0};         // armed_.size()
  std::atomic<int64_t> armed_total_{0};
  std::atomic<int64_t> forwarded_{0};
};

// CAF's work-stealing coordinator with the clock above in front of its own.
class coordinator final
  : public caf::scheduler::coordinator<caf::policy::work_stealing> {
public:
  using super = caf::scheduler::coordinator<caf::policy::work_stealing>;

  explicit coordinator(caf::actor_system& sys)
    : super(sys), clock_(super::clock()) {}

  caf_clock& clock() noexcept override {
    return clock_;
  }

  scheduler_clock_stats clock_stats() const {
    return clock_.stats();
  }

private:
  exit_filtering_clock clock_;
};

} // namespace

void install_scheduler(caf::actor_system_config& cfg) {
  auto policy = caf::get_or(cfg, "scheduler.policy", caf::atom("stealing"));
  if (policy == caf::atom("testing"))
    return;
  cfg.module_factories.push_back(
    [](caf::actor_system& sys) -> caf::actor_system::module* {
      return new coordinator(sys);
    });
}

bool scheduler_stats(caf::actor_system& sys, scheduler_clock_stats& out) {
  auto* ours = dynamic_cast<coordinator*>(&sys.scheduler());
  if (ours == nullptr)
    return false;
  out = ours->clock_stats();
  return true;
}

} // namespace mayfly

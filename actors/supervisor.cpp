#include <mayfly/actors/supervisor.hpp>

#include <chrono>
#include <cstdio>
#include <deque>

#include <caf/all.hpp>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/runtime/assert.hpp>

namespace mayfly {

nlohmann::json supervised_group::stats() const {
  return {{"children", members()->size()},
          {"deaths", deaths()},
          {"restarts", restarts()},
          {"gave_up", gave_up()}};
}

// The supervisor's write access to a group.
struct supervisor_access {
  static void publish(supervised_group& g, supervised_group::members_ptr t) {
    g.publish(std::move(t));
  }
  static void died(supervised_group& g) {
    g.deaths_.fetch_add(1, std::memory_order_relaxed);
  }
  static void restarted(supervised_group& g) {
    g.restarts_.fetch_add(1, std::memory_order_relaxed);
  }
  static void gave_up(supervised_group& g) {
    g.gave_up_.store(true, std::memory_order_relaxed);
  }
};

namespace {

using clock_type = std::chrono::steady_clock;

struct supervisor_state {
  supervisor_options opts;
  std::shared_ptr<supervised_group> group;
  std::deque<clock_type::time_point> recent; // restarts within the period
};

// Tells every current child to exit and empties the table. Runs when the
// supervisor terminates, for whatever reason.
void stop_children(supervised_group& group) {
  auto members = group.members();
  group.clear();
  for (auto& child : *members)
    caf::anon_send_exit(child, caf::exit_reason::user_shutdown);
}

void give_up(caf::stateful_actor<supervisor_state>* self) {
  auto& st = self->state;
  std::fprintf(stderr,
               "mayfly: %s supervisor: more than %u restarts within %u ms; "
               "giving up (children stopped, nothing is routed to them)\n",
               st.opts.name.c_str(), st.opts.policy.max_restarts,
               st.opts.policy.period_ms);
  supervisor_access::gave_up(*st.group);
  stop_children(*st.group);
  if (st.opts.on_give_up)
    st.opts.on_give_up();
  self->quit(caf::sec::runtime_error);
}

void on_down(caf::stateful_actor<supervisor_state>* self, caf::down_msg& dm) {
  auto& st = self->state;
  auto members = st.group->members();
  size_t slot = 0;
  while (slot < members->size() && (*members)[slot].address() != dm.source)
    ++slot;
  if (slot == members->size())
    return; // not a current child (already replaced)
  supervisor_access::died(*st.group);
  auto reason = self->system().render(dm.reason);
  std::fprintf(stderr, "mayfly: %s %zu died: %s\n", st.opts.name.c_str(),
               slot, reason.c_str());
  if (st.opts.on_death)
    st.opts.on_death(slot, dm.reason);
  auto now = clock_type::now();
  auto period = std::chrono::milliseconds(st.opts.policy.period_ms);
  while (!st.recent.empty() && now - st.recent.front() > period)
    st.recent.pop_front();
  if (st.recent.size() >= st.opts.policy.max_restarts) {
    give_up(self);
    return;
  }
  st.recent.push_back(now);
  auto child = st.opts.make_child(self->system(), slot);
  self->monitor(child);
  auto next = std::make_shared<std::vector<caf::actor>>(*members);
  (*next)[slot] = std::move(child);
  supervisor_access::publish(*st.group, std::move(next));
  supervisor_access::restarted(*st.group);
  std::fprintf(stderr,
               "mayfly: %s %zu restarted with empty state (%zu restarts in "
               "the last %u ms)\n",
               st.opts.name.c_str(), slot, st.recent.size(),
               st.opts.policy.period_ms);
}

caf::behavior supervisor_actor(caf::stateful_actor<supervisor_state>* self,
                               std::shared_ptr<supervisor_options> opts,
                               std::shared_ptr<supervised_group> group) {
  auto& st = self->state;
  st.opts = std::move(*opts);
  st.group = group;
  for (auto& child : *group->members())
    self->monitor(child); // a child already dead yields a down_msg at once
  self->attach_functor([group] { stop_children(*group); });
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  // Exit messages come from the runtime's shutdown (children are not
  // linked): leave, and take the children along (attach_functor above).
  self->set_exit_handler([self](caf::exit_msg& em) { self->quit(em.reason); });
  return {
    // The current children, e.g. for a node that forwards to them remotely.
    [self](caf::get_atom) {
      return std::vector<caf::actor>{*self->state.group->members()};
    },
  };
}

} // namespace

caf::actor spawn_supervisor(runtime& rt, supervisor_options opts,
                            std::shared_ptr<supervised_group> group) {
  MAYFLY_ASSERT(opts.children >= 1 && opts.make_child);
  auto members = std::make_shared<std::vector<caf::actor>>();
  members->reserve(opts.children);
  for (size_t slot = 0; slot < opts.children; ++slot)
    members->push_back(opts.make_child(rt.system(), slot));
  supervisor_access::publish(*group, std::move(members));
  // (Options travel in a shared_ptr: CAF copies spawn arguments.)
  return rt.spawn(supervisor_actor,
                  std::make_shared<supervisor_options>(std::move(opts)),
                  std::move(group));
}

} // namespace mayfly

#pragma once

// The CAF actor class behind every handler (not installed).
//
// Class-based, with the datagram and the arena lease as constructor
// arguments and the work done in make_behavior(): the cheapest spawn pattern
// in CAF 0.17.6 (docs/facts.md: 3 allocations, all CAF's). Releases
// happen in on_exit(), which CAF runs once on the worker when the actor
// terminates, however it terminates; the destructor repeats the (idempotent)
// release for the case CAF destroys an actor that never ran.

#include <caf/event_based_actor.hpp>

#include <mayfly/actors/handler.hpp>

namespace mayfly::detail {

class handler_actor final : public caf::event_based_actor {
public:
  handler_actor(caf::actor_config& cfg, handler_type* type, runtime* rt,
                arena_lease lease, datagram d, uint8_t order_bucket);

  ~handler_actor() override;

  caf::behavior make_behavior() override;

  /// Every activation (the first runs the handler function): timed for the
  /// latency histograms and published for the stall watchdog.
  resume_result resume(caf::execution_unit* eu, size_t max_throughput) override;

  void on_exit() override;

  /// Intrusive list of lingering handlers (runtime::track_lingering).
  handler_actor* prev_lingering = nullptr;
  handler_actor* next_lingering = nullptr;
  bool tracked = false;

private:
  static caf::error on_exception(caf::scheduled_actor* self,
                                 std::exception_ptr& ptr);
  void fail(const char* what) noexcept;
  void finish() noexcept;

  handler_context ctx_;
  runtime* rt_;
  int64_t born_ns_;
  int64_t run_ns_ = 0;         // time in finished activations
  int64_t activation_ns_ = 0;  // start of the one in progress; 0: none
  int64_t finished_ns_ = 0;    // clock read of finish()
  bool finished_ = false;
  bool failed_ = false;
  bool activated_ = false;     // the first activation has started
};

} // namespace mayfly::detail

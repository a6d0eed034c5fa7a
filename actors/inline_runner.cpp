#include <mayfly/actors/inline_runner.hpp>

#include <caf/actor_system.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <mayfly/actors/runtime.hpp>

namespace mayfly {

namespace {

// Single writer (the owning thread); readers are statistics.
void count(std::atomic<int64_t>& counter) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + 1,
                std::memory_order_relaxed);
}

} // namespace

inline_runner::inline_runner(runtime& rt)
  : caf::execution_unit(&rt.system()),
    rt_(&rt),
    max_throughput_(rt.config().max_throughput) {
}

inline_runner::~inline_runner() = default;

void inline_runner::exec_later(caf::resumable* job) {
  if (capturing_ && captured_ == nullptr) {
    captured_ = job; // the handler being launched: runs in dispatch()
    return;
  }
  // Anything else keeps CAF's usual path (the reference travels with the
  // job, as in a worker's queue).
  system().scheduler().enqueue(job);
}

dispatch_status inline_runner::dispatch(handler_type& type,
                                        datagram& d) noexcept {
  if (rt_->testing())
    return rt_->dispatch(type, d);
  capturing_ = true;
  auto status = rt_->dispatch(type, d, this);
  capturing_ = false;
  auto* job = captured_;
  captured_ = nullptr;
  if (job == nullptr)
    return status;
  count(started_);
  // As a CAF worker does with a job it dequeued.
  auto result = job->resume(this, max_throughput_);
  if (result == caf::resumable::resume_later) {
    // Yielded (more messages than max_throughput): a worker goes on, and
    // the job's reference travels with it.
    count(continued_);
    system().scheduler().enqueue(job);
    return status;
  }
  // Done, or waiting for a message (whoever sends it schedules the actor
  // again): this reference is no longer needed.
  if (result == caf::resumable::awaiting_message)
    count(continued_);
  intrusive_ptr_release(job);
  return status;
}

} // namespace mayfly

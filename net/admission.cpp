#include <mayfly/net/internal/admission.hpp>

#include <random>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/internal/receiver.hpp>

namespace mayfly::detail {

admission::admission(runtime& rt, handler_type& type,
                     handler_start endpoint_start, datagram_sink& source,
                     io_counters& counters, size_t max_held)
  : rt_(&rt),
    type_(&type),
    source_(&source),
    counters_(&counters),
    // The handler type's own choices win; the runtime's and the endpoint's
    // are defaults.
    drop_on_overload_(type.options().overload.value_or(rt.config().overload)
                      == overload_policy::drop) {
  if (type.options().start.value_or(endpoint_start) == handler_start::io_thread)
    runner_.emplace(rt);
  held_.reserve(max_held);
  if (const auto& limit = type.options().source_limit; limit.enabled()) {
    // A seed per table: a sender cannot aim its addresses at one set.
    std::random_device entropy;
    limiter_.emplace(limit, (uint64_t{entropy()} << 32) | entropy());
  }
}

bool admission::accepting() const noexcept {
  return rt_->running();
}

const caf::execution_unit* admission::inline_host() const noexcept {
  return runner_ ? &*runner_ : nullptr;
}

dispatch_status admission::dispatch(datagram& d) noexcept {
  return runner_ ? runner_->dispatch(*type_, d) : rt_->dispatch(*type_, d);
}

void admission::admit(datagram& d) noexcept {
  d.source = source_;
  if (limiter_) {
    auto now = d.received_ns != 0 ? d.received_ns : steady_now_ns();
    auto verdict = limiter_->admit(d.peer, now);
    if (verdict.evicted)
      counters_->bump(source_table_evictions);
    if (!verdict.admitted) {
      counters_->bump(source_limit_drops);
      type_->add(handler_type::source_limited);
      d.payload.reset(); // the slot goes back to its pool now
      return;
    }
  }
  if (holding()) {
    counters_->bump(paused);
    held_.push_back(std::move(d)); // keep order behind held datagrams
    return;
  }
  auto status = dispatch(d);
  switch (status) {
    case dispatch_status::spawned:
      return;
    case dispatch_status::not_running:
      counters_->bump(shutdown_drops);
      return;
    case dispatch_status::overloaded:
    case dispatch_status::no_arena:
      if (drop_on_overload_) {
        counters_->bump(policy_drops);
        type_->add(status == dispatch_status::overloaded
                     ? handler_type::rejected
                     : handler_type::no_arena);
        return;
      }
      counters_->bump(paused);
      held_.push_back(std::move(d));
      return;
  }
}

bool admission::retry_held() noexcept {
  while (head_ < held_.size()) {
    auto status = dispatch(held_[head_]);
    if (status == dispatch_status::overloaded
        || status == dispatch_status::no_arena)
      return false;
    if (status == dispatch_status::not_running)
      counters_->bump(shutdown_drops);
    held_[head_].payload.reset();
    ++head_;
  }
  held_.clear();
  head_ = 0;
  return true;
}

void admission::drop_held() noexcept {
  counters_->bump(shutdown_drops, static_cast<int64_t>(held_.size() - head_));
  held_.clear();
  head_ = 0;
}

} // namespace mayfly::detail

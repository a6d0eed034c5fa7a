#include <mayfly/actors/handler.hpp>

#include <pthread.h>

#include <algorithm>

#include <mayfly/actors/internal/handler_actor.hpp>
#include <mayfly/actors/internal/stall_watchdog.hpp>
#include <mayfly/actors/ingress.hpp>
#include <mayfly/actors/runtime.hpp>

namespace mayfly {

datagram_sink::~datagram_sink() = default;

ingress::~ingress() = default;

namespace {

int64_t now_ns() noexcept {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch())
    .count();
}

} // namespace

// -- handler_type ----------------------------------------------------------------

handler_type::handler_type(std::string name, handler_fn fn,
                           handler_options options)
  : name_(std::move(name)),
    fn_(std::move(fn)),
    options_(std::move(options)),
    credits_(options_.max_in_flight) {
}

bool handler_type::try_admit() noexcept {
  auto c = credits_.load(std::memory_order_relaxed);
  for (;;) {
    if (c <= 0) {
      if (!reclaim())
        return false;
      c = credits_.load(std::memory_order_relaxed);
      continue;
    }
    if (credits_.compare_exchange_weak(c, c - 1, std::memory_order_relaxed))
      break;
  }
  counters_.add(spawned);
  return true;
}

void handler_type::unadmit() noexcept {
  counters_.add(spawned, -1);
  credits_.fetch_add(1, std::memory_order_relaxed);
}

bool handler_type::reclaim() noexcept {
  // Credits of finished handlers come back in bulk, so handler exits never
  // touch the atomic that spawners use.
  std::lock_guard<std::mutex> guard{reclaim_mtx_};
  auto done = counters_.sum(exited);
  auto gained = done - reclaimed_;
  reclaimed_ = done;
  if (gained > 0)
    credits_.fetch_add(gained, std::memory_order_relaxed);
  sample_peak();
  return gained > 0 || credits_.load(std::memory_order_relaxed) > 0;
}

void handler_type::sample_peak() const noexcept {
  auto now = in_flight();
  auto seen = peak_.load(std::memory_order_relaxed);
  while (now > seen
         && !peak_.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

int64_t handler_type::peak_in_flight() const noexcept {
  sample_peak();
  return peak_.load(std::memory_order_relaxed);
}

void handler_type::record_exit(int64_t lifetime_ns, size_t arena_high_water,
                               uint32_t overflows) noexcept {
  lifetime_ns_.record(static_cast<uint64_t>(std::max<int64_t>(lifetime_ns, 0)));
  arena_bytes_.record(arena_high_water);
  if (overflows > 0)
    counters_.add(overflow_blocks, overflows);
  // Release: whoever sees this exit counted (in_flight) also sees every
  // message the handler sent before it (tally's query barrier relies on it).
  std::atomic_thread_fence(std::memory_order_release);
  counters_.add(exited);
}

std::string source_limit_options::check() const {
  auto out_of = [](const char* field, uint64_t value, uint64_t min,
                   uint64_t max) -> std::string {
    if (value >= min && value <= max)
      return {};
    return std::string{field} + ": " + std::to_string(value) + " is not in "
           + std::to_string(min) + ".." + std::to_string(max);
  };
  for (auto err :
       {out_of("rate", rate, 0, max_rate),
        out_of("burst", burst, 0, max_burst),
        out_of("ipv4_prefix", ipv4_prefix, 0, 32),
        out_of("ipv6_prefix", ipv6_prefix, 0, 128),
        out_of("table_size", table_size, min_table_size, max_table_size)})
    if (!err.empty())
      return err;
  return {};
}

void handler_type::record_stall(int64_t ns) noexcept {
  counters_.add(stalls);
  auto seen = stall_max_ns_.load(std::memory_order_relaxed);
  while (ns > seen
         && !stall_max_ns_.compare_exchange_weak(seen, ns,
                                                 std::memory_order_relaxed)) {
  }
  char thread[32] = "?";
  pthread_getname_np(pthread_self(), thread, sizeof(thread));
  log_line("stall: handler '%s' on thread '%s' (index %u) ran for %lld ms",
           name_.c_str(), thread,
           static_cast<unsigned>(detail::this_thread_index()),
           static_cast<long long>(ns / 1000000));
}

nlohmann::json handler_type::stats() const {
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1e3; };
  nlohmann::json out = {
    {"finished",
     count(exited) - count(failed) - count(killed) - count(timed_out)},
    {"in_flight", in_flight()},
    {"peak_in_flight", peak_in_flight()},
    {"max_in_flight", options_.max_in_flight},
    {"stall_max_us", us(static_cast<uint64_t>(stall_max_ns()))},
    {"latency",
     {{"receive_to_start", latencies_[receive_to_start].to_json()},
      {"run", latencies_[run].to_json()},
      {"reply_to_kernel", latencies_[reply_to_kernel].to_json()}}},
    {"lifetime_us",
     {{"p50", us(lifetime_ns_.quantile(0.5))},
      {"p99", us(lifetime_ns_.quantile(0.99))},
      {"max", us(lifetime_ns_.max())}}},
    {"arena",
     {{"bytes_p50", arena_bytes_.quantile(0.5)},
      {"bytes_p99", arena_bytes_.quantile(0.99)},
      {"bytes_max", arena_bytes_.max()},
      {"overflow_blocks", count(overflow_blocks)}}},
  };
#define MAYFLY_X(name, kind, unit, help) out[#name] = count(name);
  MAYFLY_HANDLER_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  return out;
}

// -- handler_context ---------------------------------------------------------------

uint64_t handler_context::begin_after_earlier() noexcept {
  if (order_counted_) {
    order_counted_ = false;
    type_->order().leave(order_bucket_);
  }
  return type_->order().request();
}

caf::actor handler_context::barrier_actor() {
  return rt_->barrier();
}

// -- handler_actor -----------------------------------------------------------------

namespace detail {

handler_actor::handler_actor(caf::actor_config& cfg, handler_type* type,
                             runtime* rt, arena_lease lease, datagram d,
                             uint8_t order_bucket)
  : caf::event_based_actor(cfg),
    ctx_(this, type, rt, std::move(lease), std::move(d)),
    rt_(rt),
    // Lifetime counts from receipt when the receive loop stamped the
    // datagram (it reads the clock once per batch), else from now.
    born_ns_(ctx_.request().received_ns != 0 ? ctx_.request().received_ns
                                              : now_ns()) {
  // For the pinning report: until someone else marks it, a binary is held
  // on behalf of the handler type that received it. One relaxed store.
  ctx_.request().payload.mark_holder(type->holder_tag());
  ctx_.order_bucket_ = order_bucket;
  ctx_.order_counted_ = true;
  if (auto limit = type->options().max_arena_bytes; limit != 0)
    ctx_.arena().max_bytes(limit);
}

handler_actor::~handler_actor() {
  finish();
}

caf::behavior handler_actor::make_behavior() {
  try {
    ctx_.type().invoke(ctx_, ctx_.request());
  } catch (const std::exception& e) {
    fail(e.what());
    return {};
  } catch (...) {
    fail("unknown exception");
    return {};
  }
  if (alive()) {
    // Awaiting responses or holding a behavior: later callbacks may throw
    // (the handler then fails alone, counted), and stop() may have to kill
    // it at the deadline. Only lingering handlers pay for either. (A
    // function pointer: std::function stores it without allocating.)
    set_exception_handler(&handler_actor::on_exception);
    ctx_.type().add(handler_type::lingered);
    rt_->track_lingering(this);
  }
  return {};
}

caf::resumable::resume_result
handler_actor::resume(caf::execution_unit* eu, size_t max_throughput) {
  auto& type = ctx_.type();
  auto* watchdog = type.watchdog_;
  if (!type.latency_on_ && watchdog == nullptr)
    return caf::event_based_actor::resume(eu, max_throughput);
  auto start = now_ns();
  if (!activated_) {
    activated_ = true;
    auto received = ctx_.request().received_ns;
    if (type.latency_on_ && received != 0)
      type.record_latency(handler_type::receive_to_start, start - received);
  }
  activation_ns_ = start;
  auto* slot = watchdog != nullptr ? watchdog->begin(&type, start) : nullptr;
  auto result = caf::event_based_actor::resume(eu, max_throughput);
  // A handler that ended in this activation read the clock in finish()
  // (and counted this activation in its run time there): reuse that read.
  auto end = finished_ ? finished_ns_ : now_ns();
  activation_ns_ = 0;
  if (slot != nullptr)
    stall_watchdog::end(slot);
  auto ran = end - start;
  if (!finished_)
    run_ns_ += ran;
  if (watchdog != nullptr && ran >= watchdog->threshold_ns())
    type.record_stall(ran);
  return result;
}

void handler_actor::fail(const char* what) noexcept {
  failed_ = true;
  ctx_.type().add(handler_type::failed);
  ctx_.type().failure_log().log("handler '%s' failed: %s",
                                ctx_.type().name().c_str(), what);
  quit(caf::exit_reason::unhandled_exception);
}

caf::error handler_actor::on_exception(caf::scheduled_actor* self,
                                       std::exception_ptr& ptr) {
  auto* h = static_cast<handler_actor*>(self);
  try {
    std::rethrow_exception(ptr);
  } catch (const std::exception& e) {
    h->fail(e.what());
  } catch (...) {
    h->fail("unknown exception");
  }
  return caf::exit_reason::unhandled_exception;
}

void handler_actor::on_exit() {
  // Compare code and category instead of building caf::error values from
  // exit reasons: that allocates (an error's data lives on the heap).
  // (category() of an empty error must not be called: check it first.)
  static const auto exit_category
    = caf::error{caf::exit_reason::kill}.category();
  static const auto sec_category
    = caf::error{caf::sec::request_timeout}.category();
  const auto& reason = fail_state();
  if (!failed_ && reason) {
    auto code = reason.code();
    if (reason.category() == sec_category
        && code == static_cast<uint8_t>(caf::sec::request_timeout)) {
      ctx_.type().add(handler_type::timed_out);
    } else if (!(reason.category() == exit_category
                 && (code == static_cast<uint8_t>(caf::exit_reason::normal)
                     || code == static_cast<uint8_t>(
                          caf::exit_reason::unhandled_exception)
                     || code == static_cast<uint8_t>(
                          caf::exit_reason::unreachable)))) {
      ctx_.type().add(handler_type::killed); // an exit message from outside
    }
  }
  finish();
}

void handler_actor::finish() noexcept {
  if (finished_)
    return;
  finished_ = true;
  if (tracked)
    rt_->untrack_lingering(this);
  auto high_water = ctx_.arena().high_water();
  auto overflows = ctx_.arena().overflow_blocks();
  ctx_.release();
  auto now = now_ns();
  finished_ns_ = now;
  auto& type = ctx_.type();
  // Before record_exit: whoever sees the handler counted as exited sees
  // its run time recorded too.
  if (type.latency_on_ && activated_)
    type.record_latency(handler_type::run,
                        run_ns_ + (activation_ns_ != 0 ? now - activation_ns_
                                                       : 0));
  type.record_exit(now - born_ns_, high_water, overflows);
  if (ctx_.order_counted_) {
    ctx_.order_counted_ = false;
    type.order().leave(ctx_.order_bucket_);
  }
}

} // namespace detail

// -- descriptions (runtime/metrics.hpp) ------------------------------------------

namespace {

using enum metric_kind;

constexpr metric_info kHandlerMetrics[] = {
#define MAYFLY_X(name, kind, unit, help) {#name, kind, unit, help},
  MAYFLY_HANDLER_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  {"finished", counter, "", "handlers that ended normally"},
  {"in_flight", gauge, "", "handlers alive now"},
  {"peak_in_flight", peak, "",
   "highest `in_flight` observed (sampled when credits are reclaimed and "
   "when statistics are read)"},
  {"max_in_flight", config, "", "this type's in-flight bound"},
  {"stall_max_us", gauge, "us",
   "longest activation counted in `stalls` (0: none)"},
  {"latency.receive_to_start", histogram, "us",
   "receipt (the receive batch's clock read) → the handler's first "
   "activation starts: admission, spawn, queueing to a worker"},
  {"latency.run", histogram, "us",
   "time the handler spent running, summed over its activations (not the "
   "time it waited for answers)"},
  {"latency.reply_to_kernel", histogram, "us",
   "the handler made a reply → `sendmmsg` returned with it: batching, the "
   "reply queue, the send syscall"},
  {"lifetime_us", distribution, "us", "spawn to exit"},
  {"arena.bytes_", distribution, "bytes",
   "arena high-water mark of this type's handlers"},
  {"arena.overflow_blocks", counter, "",
   "overflow blocks this type's arenas took"},
};

} // namespace

const metric_section handler_metrics{"handlers", "/handlers/{handler}",
                                     kHandlerMetrics};

} // namespace mayfly

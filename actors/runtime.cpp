#include <mayfly/actors/runtime.hpp>

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <dlfcn.h>

#include <mayfly/actors/internal/handler_actor.hpp>
#include <mayfly/actors/internal/stall_watchdog.hpp>
#include <mayfly/actors/messages.hpp>
#include <mayfly/actors/scheduler.hpp>
#include <mayfly/runtime/heap.hpp>

namespace mayfly {

namespace {

int64_t now_ns() noexcept {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch())
    .count();
}

// Whether malloc is served by mimalloc in this process (the service linked
// mayfly::mimalloc, or LD_PRELOAD): shown in the stats, see README
// "Allocator". Looked up at run time so that mayfly itself never links
// mimalloc (linking Debian's libmimalloc.so replaces the process's malloc).
bool malloc_is_mimalloc() {
  using probe_fn = bool (*)(const void*);
  auto probe = reinterpret_cast<probe_fn>(
    dlsym(RTLD_DEFAULT, "mi_is_in_heap_region"));
  if (probe == nullptr)
    return false;
  void* p = std::malloc(16);
  if (p == nullptr)
    return false;
  std::memset(p, 0, 16); // (gcc otherwise warns the block is read unset)
  bool yes = probe(p);
  std::free(p);
  return yes;
}

// -- the barrier actor ---------------------------------------------------------------

using barrier_tick_atom = caf::atom_constant<caf::atom("bartick")>;

// Answers `barrier_wait` requests once their grace period has passed,
// polling every 100 us while anyone waits (actors/barrier.hpp).
struct barrier_state {
  struct waiter {
    caf::response_promise promise;
    order_gate* gate;
    uint64_t target;
  };
  std::vector<waiter> waiting;
  bool ticking = false;
};

// (`poll`: an argument of its own also keeps CAF 0.17.6's init_fun_factory
// from dereferencing an empty argument tuple, which UBSan reports.)
caf::behavior barrier_behavior(caf::stateful_actor<barrier_state>* self,
                               std::chrono::microseconds poll) {
  auto check = [self, poll] {
    auto& st = self->state;
    for (auto i = st.waiting.begin(); i != st.waiting.end();) {
      if (i->gate->passed(i->target)) {
        i->promise.deliver(true);
        i = st.waiting.erase(i);
      } else {
        ++i;
      }
    }
    if (!st.waiting.empty() && !st.ticking) {
      st.ticking = true;
      self->delayed_send(self, poll, barrier_tick_atom::value);
    }
  };
  return {
    [self, check](const barrier_wait& w) {
      self->state.waiting.push_back(
        {self->make_response_promise(), w.gate, w.target});
      check();
    },
    [self, check](barrier_tick_atom) {
      self->state.ticking = false;
      check();
    },
  };
}

} // namespace

nlohmann::json balance_report::to_json() const {
  return {{"buffers_out", buffers_out},   {"arenas_out", arenas_out},
          {"arena_blocks", arena_blocks}, {"slices_live", slices_live},
          {"handlers", handlers},         {"zero", zero()}};
}

// -- construction -------------------------------------------------------------------

runtime::runtime(runtime_config cfg)
  : cfg_(std::move(cfg)),
    detach_(std::make_shared<mayfly::detach_policy>(cfg_.detach)) {
}

std::optional<error_info> runtime::init_memory() {
  if (auto err = check_detach_config(cfg_.detach))
    return err;
  if (cfg_.top_holders == 0)
    return error_info{errc::invalid_config, "must be > 0", 0,
                      "runtime.top_holders"};
  auto buffers = buffer_pools::make(cfg_.memory.buffers);
  if (!buffers) {
    auto err = buffers.error();
    if (err.subject.empty())
      err.subject = "memory.buffers";
    return err;
  }
  auto arenas = arena_pool::make(cfg_.memory.arenas);
  if (!arenas) {
    auto err = arenas.error();
    if (err.subject.empty())
      err.subject = "memory.arenas";
    return err;
  }
  buffers_ = std::move(*buffers);
  arenas_ = std::move(*arenas);
  return std::nullopt;
}

result<std::unique_ptr<runtime>> runtime::make(runtime_config cfg) {
  return make_owned(std::move(cfg), false);
}

result<std::unique_ptr<runtime>> runtime::make(runtime_config cfg,
                                               detail::testing_scheduler_t) {
  return make_owned(std::move(cfg), true);
}

result<std::unique_ptr<runtime>> runtime::make_owned(runtime_config cfg,
                                                     bool testing) {
  if (cfg.max_in_flight == 0) {
    error_info err{errc::invalid_config, "must be > 0", 0,
                   "runtime.max_in_flight"};
    return err;
  }
  std::unique_ptr<runtime> rt{new runtime(std::move(cfg))};
  if (auto err = rt->init_memory())
    return *err;
  rt->testing_ = testing;
  auto& c = rt->cfg_;
  if (c.workers == 0)
    c.workers = std::max(1u, std::thread::hardware_concurrency());
  rt->system_cfg_ = std::make_unique<caf::actor_system_config>();
  auto& sys_cfg = *rt->system_cfg_;
  sys_cfg.set("scheduler.max-threads", static_cast<size_t>(c.workers));
  sys_cfg.set("scheduler.max-throughput", static_cast<size_t>(c.max_throughput));
  if (testing)
    sys_cfg.set("scheduler.policy", caf::atom("testing"));
  else
    install_scheduler(sys_cfg); // no clock wake-up per handler exit
  if (c.idle == worker_idle::block) {
    // Skip CAF's napping phase (500 naps of 50 µs): after its spin a worker
    // blocks on its condition variable, which the next enqueue signals.
    sys_cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  }
  // (The add_error_category<T> template of CAF 0.17.6 does not compile.)
  sys_cfg.add_error_category(
    caf::atom("mayfly"),
    [](uint8_t code, caf::atom_value, const caf::message& context) {
      std::string text = "mayfly: ";
      text += to_string(static_cast<errc>(code));
      if (!context.empty())
        text += " (" + caf::to_string(context) + ")";
      return text;
    });
  add_message_types(sys_cfg); // slices may cross to other nodes
  if (c.configure_caf)
    c.configure_caf(sys_cfg);
  rt->owned_system_ = std::make_unique<caf::actor_system>(sys_cfg);
  rt->system_ = rt->owned_system_.get();
  rt->attach_pools();
  rt->init_stats();
  return rt;
}

result<std::unique_ptr<runtime>> runtime::make(runtime_config cfg,
                                               caf::actor_system& system) {
  std::unique_ptr<runtime> rt{new runtime(std::move(cfg))};
  if (auto err = rt->init_memory())
    return *err;
  rt->cfg_.workers = static_cast<uint32_t>(
    system.scheduler().num_workers());
  rt->system_ = &system;
  rt->attach_pools();
  rt->init_stats();
  return rt;
}

void runtime::attach_pools() {
  // Remote slices arriving on this system land in our pools. A second
  // runtime on a borrowed system leaves the first one's registration alone.
  pools_attached_ = detail::attach_pools(*system_, buffers_.get());
}

void runtime::init_stats() {
  started_ns_ = now_ns();
  if (cfg_.stall_threshold_ms > 0)
    watchdog_ = std::make_unique<detail::stall_watchdog>(
      int64_t{cfg_.stall_threshold_ms} * 1000000);
  registrations_.push_back(
    stats_.add("/runtime", [this] { return runtime_stats(); },
               {runtime_metrics}));
  registrations_.push_back(
    stats_.add("/pools", [this] { return buffers_->stats(); },
               {pool_class_metrics, dedicated_pool_metrics}));
  registrations_.push_back(
    stats_.add("/arenas", [this] { return arenas_->stats(); },
               {arena_pool_metrics}));
  registrations_.push_back(
    stats_.add("/remote", [] { return remote_message_stats(); },
               {remote_metrics}));
  registrations_.push_back(
    stats_.add("/binaries", [this] { return binaries_stats(); },
               {binaries_metrics}));
  registrations_.push_back(
    stats_.add("/detach", [this] { return detach_stats(); },
               {detach_metrics}));
  registrations_.push_back(
    stats_.add("/holders", [this] { return holders_stats(); },
               {holders_metrics}));
}

nlohmann::json runtime::binaries_stats() const {
  // The oldest live pool binary over all classes, and who holds it.
  binary_census oldest;
  for (auto* pool : {&buffers_->standard(), buffers_->jumbo()})
    if (pool != nullptr) {
      auto c = pool->census();
      if (c.live > 0 && c.oldest_age_ns >= oldest.oldest_age_ns)
        oldest = c;
    }
  return {{"live_slices", slice::live_count()},
          {"viewed_bytes", slice::viewed_bytes()},
          {"dedicated_live", dedicated_binaries::live()},
          {"dedicated_bytes", dedicated_binaries::live_bytes()},
          {"heap_allocations", heap_allocations()},
          {"oldest_age_ms", static_cast<double>(oldest.oldest_age_ns) / 1e6},
          {"oldest_holder", holder_name(oldest.oldest_holder)}};
}

nlohmann::json runtime::detach_stats() const {
  auto doc = detach_->stats();
  int64_t early = 0;
  for (auto* pool : {&buffers_->standard(), buffers_->jumbo()})
    if (pool != nullptr)
      early += pool->released_early();
  doc["binaries_released_early"] = early;
  return doc;
}

nlohmann::json runtime::holders_stats() const {
  // One scan of every pool's headers, summed per holder tag, then per name
  // (two tags may share a name), ranked by pinned bytes; past top_holders
  // the rest is summed as "(other)", so /metrics gets a bounded label set.
  std::vector<holder_usage> by_tag;
  for (auto* pool : {&buffers_->standard(), buffers_->jumbo()})
    if (pool != nullptr)
      pool->census(&by_tag);
  auto add = [](holder_usage& to, const holder_usage& u) {
    to.binaries += u.binaries;
    to.viewed_bytes += u.viewed_bytes;
    to.pinned_bytes += u.pinned_bytes;
    to.oldest_age_ns = std::max(to.oldest_age_ns, u.oldest_age_ns);
  };
  std::map<std::string, holder_usage> by_name;
  for (uint32_t tag = 0; tag < by_tag.size(); ++tag) {
    if (by_tag[tag].binaries == 0)
      continue;
    auto name = tag == 0 ? std::string{"(none)"} : holder_name(tag);
    add(by_name[name.empty() ? std::string{"(unknown)"} : name], by_tag[tag]);
  }
  std::vector<std::pair<std::string, holder_usage>> ranked(by_name.begin(),
                                                           by_name.end());
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& x, const auto& y) {
                     return x.second.pinned_bytes > y.second.pinned_bytes;
                   });
  auto to_json = [](const holder_usage& u) {
    return nlohmann::json{
      {"binaries", u.binaries},
      {"viewed_bytes", u.viewed_bytes},
      {"pinned_bytes", u.pinned_bytes},
      {"oldest_age_ms", static_cast<double>(u.oldest_age_ns) / 1e6}};
  };
  auto list = nlohmann::json::object();
  holder_usage other;
  for (size_t i = 0; i < ranked.size(); ++i) {
    if (i < cfg_.top_holders)
      list[ranked[i].first] = to_json(ranked[i].second);
    else
      add(other, ranked[i].second);
  }
  if (other.binaries > 0)
    list["(other)"] = to_json(other);
  return {{"top_n", cfg_.top_holders},
          {"holders", ranked.size()},
          {"by_holder", std::move(list)}};
}

nlohmann::json runtime::runtime_stats() const {
  static const bool mimalloc = malloc_is_mimalloc();
  auto st = state_.load();
  const char* state_name = st == state::created    ? "created"
                           : st == state::running  ? "running"
                           : st == state::stopping ? "stopping"
                                                   : "stopped";
  nlohmann::json scheduler = {{"mayfly", false}};
  scheduler_clock_stats clock;
  if (system_ != nullptr && scheduler_stats(*system_, clock)) {
    scheduler = {{"mayfly", true},
                 {"timeout_actors", clock.armed_actors},
                 {"exit_cancellations", clock.cancellations_forwarded}};
  }
  return {
    {"state", state_name},
    {"scheduler", std::move(scheduler)},
    {"uptime_s", static_cast<double>(now_ns() - started_ns_) / 1e9},
    {"workers", cfg_.workers},
    {"max_throughput", cfg_.max_throughput},
    {"max_in_flight", cfg_.max_in_flight},
    {"overload", to_string(cfg_.overload)},
    {"worker_idle", to_string(cfg_.idle)},
    {"stall_threshold_ms", cfg_.stall_threshold_ms},
    {"stall_watchdog_sleeps", watchdog_ ? watchdog_->sleeps() : 0},
    {"latency_histograms", cfg_.latency_histograms},
    {"malloc_is_mimalloc", mimalloc},
    {"in_flight", in_flight()},
    {"balance", balance().to_json()},
  };
}

runtime::~runtime() {
  stop();
  registrations_.clear();
  // A borrowed system lives on: deserializers must not find our pools. (An
  // owned system goes away with its settings before the pools do.)
  if (pools_attached_ && owned_system_ == nullptr)
    detail::detach_pools(*system_, buffers_.get());
  auto b = balance();
  if (b.buffers_out != 0 || b.arena_blocks != 0) {
    // A slice or arena outlived the runtime (held by code outside its
    // actors). Unmapping the pools would let it dangle: keep them.
    std::fprintf(stderr,
                 "mayfly: runtime destroyed with %lld buffers and %lld arena "
                 "blocks still held; leaking the pools to keep them valid\n",
                 static_cast<long long>(b.buffers_out),
                 static_cast<long long>(b.arena_blocks));
    (void) buffers_.release();
    (void) arenas_.release();
  }
}

// -- lifecycle ------------------------------------------------------------------------

void runtime::start() {
  auto expected = state::created;
  if (!state_.compare_exchange_strong(expected, state::running))
    return;
  // Endpoints opened before now read nothing yet: let them begin.
  std::vector<ingress*> sources;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& i : ingresses_)
      sources.push_back(i.get());
  }
  for (auto* i : sources)
    i->start_receiving();
}

void runtime::request_stop() noexcept {
  {
    std::lock_guard<std::mutex> guard{stop_mtx_};
    stop_requested_ = true;
  }
  stop_cv_.notify_all();
}

void runtime::run() {
  start();
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  for (;;) {
    {
      std::unique_lock<std::mutex> guard{stop_mtx_};
      if (stop_requested_)
        break;
    }
    // Poll for a termination signal (blocked by block_termination_signals)
    // every 100 ms; request_stop() is seen within that time.
    timespec timeout{0, 100 * 1000 * 1000};
    if (sigtimedwait(&signals, nullptr, &timeout) > 0)
      break;
  }
  stop();
}

void block_termination_signals() noexcept {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

void runtime::drive() {
  if (testing()) {
    auto& sched
      = dynamic_cast<caf::scheduler::test_coordinator&>(system_->scheduler());
    sched.run();
    return;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

bool runtime::wait_until(const std::function<bool()>& done,
                         int64_t deadline_ms) {
  auto deadline = now_ns() + deadline_ms * 1000000;
  while (!done()) {
    if (now_ns() >= deadline)
      return false;
    drive();
  }
  return true;
}

void runtime::stop() {
  auto st = state_.load();
  if (st == state::stopped || st == state::stopping)
    return;
  std::vector<ingress*> sources;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& i : ingresses_)
      sources.push_back(i.get());
  }
  // 1. Ingress: endpoints take no new datagram from the kernel but, while
  // handlers can still start, dispatch what it queued for them (bounded by
  // the deadline); then they stop dispatching (replies still go).
  if (st == state::running)
    for (auto* i : sources)
      i->drain_kernel_queue(cfg_.shutdown_deadline_ms);
  state_.store(state::stopping);
  for (auto* i : sources)
    i->stop_receiving();
  // 2. Drain in-flight handlers, then kill what is left.
  if (!wait_until([this] { return in_flight() == 0; },
                  cfg_.shutdown_deadline_ms)) {
    kill_lingering();
    wait_until([this] { return in_flight() == 0; }, 1000);
  }
  // 3. Long-lived actors.
  stop_long_lived();
  // 4. An owned system waits for every actor before it is destroyed.
  if (owned_system_ != nullptr) {
    if (testing())
      drive();
    else
      owned_system_->await_all_actors_done();
  }
  // 5. Endpoints: flush the last replies, join threads, release buffers.
  for (auto* i : sources)
    i->close();
  state_.store(state::stopped);
  auto b = balance();
  if (!b.zero())
    std::fprintf(stderr, "mayfly: unbalanced after stop: %s\n",
                 b.to_json().dump().c_str());
}

caf::actor runtime::barrier() {
  std::lock_guard<std::mutex> guard{barrier_mtx_};
  if (!barrier_ && running())
    barrier_ = spawn(barrier_behavior, std::chrono::microseconds(100));
  return barrier_;
}

void runtime::stop_long_lived() {
  {
    std::lock_guard<std::mutex> guard{barrier_mtx_};
    barrier_ = nullptr; // in long_lived_ too: told to exit below
  }
  std::vector<caf::actor> actors;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    actors.swap(long_lived_);
  }
  if (actors.empty())
    return;
  if (testing()) {
    for (auto& a : actors)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    actors.clear();
    drive();
    return;
  }
  // Monitor, then ask each to exit, then wait for the down messages (bounded
  // by the deadline), so a borrowed system also sees them gone.
  caf::scoped_actor self{*system_};
  for (auto& a : actors) {
    self->monitor(a);
    self->send_exit(a, caf::exit_reason::user_shutdown);
  }
  size_t down = 0;
  bool timed_out = false;
  self->receive_while([&] { return down < actors.size() && !timed_out; })(
    [&](caf::down_msg&) { ++down; },
    caf::after(std::chrono::milliseconds(cfg_.shutdown_deadline_ms))
      >> [&] { timed_out = true; });
  if (timed_out)
    std::fprintf(stderr,
                 "mayfly: %zu long-lived actors ignored user_shutdown\n",
                 actors.size() - down);
  actors.clear();
}

// -- handlers ----------------------------------------------------------------------

handler_type& runtime::add_handler(std::string name, handler_fn fn) {
  return add_handler(std::move(name), std::move(fn), cfg_.max_in_flight);
}

handler_type& runtime::add_handler(std::string name, handler_fn fn,
                                   uint32_t max_in_flight) {
  handler_options options;
  options.max_in_flight = std::max(1u, max_in_flight);
  return add_handler(std::move(name), std::move(fn), std::move(options));
}

handler_type& runtime::add_handler(std::string name, handler_fn fn,
                                   handler_options options) {
  for (auto& h : handlers_)
    MAYFLY_ASSERT(h.name() != name); // handler type names are unique
  if (options.max_in_flight == 0)
    options.max_in_flight = cfg_.max_in_flight;
  auto tag = holder_tag(name);
  auto& h = handlers_.emplace_back(std::move(name), std::move(fn),
                                   std::move(options));
  h.holder_tag(tag);
  h.latency_on_ = cfg_.latency_histograms;
  h.watchdog_ = watchdog_.get();
  registrations_.push_back(
    stats_.add("/handlers/" + h.name(), [&h] { return h.stats(); },
               {handler_metrics}));
  return h;
}

dispatch_status runtime::dispatch(handler_type& type, datagram& d,
                                  caf::execution_unit* host) noexcept {
  if (state_.load(std::memory_order_acquire) != state::running)
    return dispatch_status::not_running;
  // Admission first: a refused datagram must not churn the arena pool.
  if (!type.try_admit())
    return dispatch_status::overloaded;
  auto lease = arenas_->lease();
  if (!lease) {
    type.unadmit();
    return dispatch_status::no_arena;
  }
  // The handle returned by spawn is dropped at once: the actor lives on its
  // own until it terminates.
  // Counted for `after_earlier` before the handler can run (it may run at
  // once, on this thread).
  auto bucket = type.order().enter();
  caf::actor_config cfg{host};
  system_->spawn_class<detail::handler_actor, caf::no_spawn_options>(
    cfg, &type, this, std::move(lease), std::move(d), bucket);
  return dispatch_status::spawned;
}

int64_t runtime::in_flight() const noexcept {
  int64_t n = 0;
  for (auto& h : handlers_)
    n += h.in_flight();
  return n;
}

balance_report runtime::balance() const noexcept {
  balance_report b;
  b.buffers_out = buffers_ ? buffers_->outstanding() : 0;
  b.arenas_out = arenas_ ? arenas_->leases_out() : 0;
  b.arena_blocks = arenas_ ? arenas_->blocks_in_use() : 0;
  b.slices_live = slice::live_count();
  b.handlers = in_flight();
  return b;
}

// -- pinning report -----------------------------------------------------------------------

uint32_t runtime::holder_tag(std::string name) {
  std::lock_guard<std::mutex> guard{holders_mtx_};
  holders_.push_back(std::move(name));
  return static_cast<uint32_t>(holders_.size());
}

std::string runtime::holder_name(uint32_t tag) const {
  std::lock_guard<std::mutex> guard{holders_mtx_};
  return tag == 0 || tag > holders_.size() ? std::string{}
                                           : holders_[tag - 1];
}

uint32_t runtime::mark_long_lived(const caf::actor& actor, std::string name) {
  if (!actor)
    return 0;
  auto tag = holder_tag(std::move(name));
  return mark_long_lived(actor, tag) ? tag : 0;
}

bool runtime::mark_long_lived(const caf::actor& actor, uint32_t tag) {
  if (!actor || tag == 0)
    return false;
  auto* ctrl = caf::actor_cast<caf::actor_control_block*>(actor);
  if (!detach_->mark(ctrl, tag))
    return false;
  // Unmarked when it exits (at once if it has exited already). The hook
  // shares the policy: the actor may outlive this runtime (a borrowed
  // system), and its control block, our key, is not reused before then.
  actor->attach_functor([policy = detach_, ctrl] { policy->unmark(ctrl); });
  return true;
}

namespace detail {

mayfly::detach_policy& detach_policy_of(runtime& rt) noexcept {
  return rt.detach();
}

} // namespace detail

// -- tracking ---------------------------------------------------------------------------

void runtime::track(caf::actor handle) {
  std::lock_guard<std::mutex> guard{mtx_};
  long_lived_.push_back(std::move(handle));
}

ingress& runtime::attach(std::unique_ptr<ingress> source) {
  auto* ptr = source.get();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    ingresses_.push_back(std::move(source));
  }
  registrations_.push_back(
    stats_.add("/net/" + ptr->name(), [ptr] { return ptr->stats(); },
               ptr->stats_sections()));
  auto st = state_.load();
  if (st == state::stopped || st == state::stopping) {
    ptr->stop_receiving();
    ptr->close();
  } else if (st == state::running) {
    ptr->start_receiving();
  }
  return *ptr;
}

void runtime::track_lingering(detail::handler_actor* h) noexcept {
  std::lock_guard<std::mutex> guard{lingering_mtx_};
  if (h->tracked)
    return;
  h->tracked = true;
  h->prev_lingering = nullptr;
  h->next_lingering = lingering_;
  if (lingering_ != nullptr)
    lingering_->prev_lingering = h;
  lingering_ = h;
}

void runtime::untrack_lingering(detail::handler_actor* h) noexcept {
  std::lock_guard<std::mutex> guard{lingering_mtx_};
  if (!h->tracked)
    return;
  h->tracked = false;
  if (h->prev_lingering != nullptr)
    h->prev_lingering->next_lingering = h->next_lingering;
  else
    lingering_ = h->next_lingering;
  if (h->next_lingering != nullptr)
    h->next_lingering->prev_lingering = h->prev_lingering;
  h->prev_lingering = h->next_lingering = nullptr;
}

void runtime::kill_lingering() {
  // Upgrade through weak references: an actor whose last strong reference
  // is going away right now is skipped instead of resurrected.
  std::vector<caf::strong_actor_ptr> victims;
  {
    std::lock_guard<std::mutex> guard{lingering_mtx_};
    for (auto* h = lingering_; h != nullptr; h = h->next_lingering) {
      caf::weak_actor_ptr weak{h->ctrl()};
      if (auto strong = weak.lock())
        victims.push_back(std::move(strong));
    }
  }
  if (!victims.empty())
    std::fprintf(stderr,
                 "mayfly: killing %zu handlers still alive at the shutdown "
                 "deadline\n",
                 victims.size());
  for (auto& v : victims)
    caf::anon_send_exit(v, caf::exit_reason::kill);
}

// -- descriptions (runtime/metrics.hpp) ------------------------------------------

namespace {

using enum metric_kind;

constexpr metric_info kRuntimeMetrics[] = {
  {"state", text, "", "`created`, `running`, `stopping` or `stopped`"},
  {"uptime_s", gauge, "s", "time since the runtime was made"},
  {"workers", config, "",
   "CAF worker threads (resolved: 0 in the configuration means one per "
   "core)"},
  {"max_throughput", config, "",
   "messages an actor handles before yielding its worker"},
  {"max_in_flight", config, "", "default in-flight bound per handler type"},
  {"overload", text, "",
   "`pause` or `drop`: what the receive path does at the bound "
   "(configuration)"},
  {"worker_idle", text, "",
   "`poll` or `block`: how idle CAF workers wait (configuration)"},
  {"stall_threshold_ms", config, "ms",
   "an activation running this long is a stall (reported and counted, "
   "`handlers.*.stalls`); 0: stall report off"},
  {"stall_watchdog_sleeps", counter, "",
   "times the stall watchdog found no activation running for 20 scans in a "
   "row and went to sleep until the next one began (an idle runtime wakes "
   "it for nothing; 0 with the stall report off)"},
  {"latency_histograms", flag, "",
   "whether the latency histograms of `handlers.*.latency` are kept "
   "(configuration)"},
  {"malloc_is_mimalloc", flag, "",
   "whether `malloc` in this process is served by mimalloc (README, "
   "\"Allocator note\")"},
  {"in_flight", gauge, "", "handlers alive now, all types"},
  {"scheduler.mayfly", flag, "",
   "the actor system runs mayfly's scheduler (actors/scheduler.hpp): false "
   "for a borrowed system built without `install_scheduler`"},
  {"scheduler.timeout_actors", counter, "",
   "actors that armed a cancellable timeout (receive or request timeout); "
   "only their exits reach CAF's clock thread"},
  {"scheduler.exit_cancellations", counter, "",
   "exits whose timeout cancellation was forwarded to CAF's clock"},
  {"balance.buffers_out", gauge, "",
   "pool slots plus dedicated binaries held by anyone"},
  {"balance.arenas_out", gauge, "", "arenas alive"},
  {"balance.arena_blocks", gauge, "", "arena blocks out of the arena pool"},
  {"balance.slices_live", gauge, "", "live slices, process-wide"},
  {"balance.handlers", gauge, "",
   "handlers in flight (same as `in_flight`)"},
  {"balance.zero", flag, "",
   "all of the above are zero; true after a clean `stop()`"},
};

constexpr metric_info kBinariesMetrics[] = {
  {"live_slices", gauge, "", "slices alive (with an owner)"},
  {"viewed_bytes", gauge, "bytes", "bytes those slices view"},
  {"dedicated_live", gauge, "",
   "dedicated binaries alive (as `pools.dedicated.live`)"},
  {"dedicated_bytes", gauge, "bytes", "their bytes"},
  {"heap_allocations", counter, "",
   "calls mayfly's own code made to the general heap (cold paths: dedicated "
   "buffers, detached slices, arena overflow beyond the pool)"},
  {"oldest_age_ms", gauge, "ms",
   "age of the oldest live pool binary over all classes (0: none)"},
  {"oldest_holder", identifier, "",
   "(a string) who holds it: the handler type that received it, or the name a "
   "long-lived actor registered with `runtime::holder_tag` and marked the "
   "slice with (`slice::mark_holder`); \"\" when nobody was recorded. This "
   "is the pinning detector: `mayfly-tally --pin 1` makes it say \"tally "
   "aggregator\". Not exported to Prometheus (its value changes with "
   "whichever binary is oldest)"},
};

constexpr metric_info kDetachMetrics[] = {
  {"enabled", flag, "", "`runtime.detach.enabled` (configuration)"},
  {"max_slice_bytes", config, "bytes", "`runtime.detach.max_slice_bytes`"},
  {"min_binary_bytes", config, "bytes", "`runtime.detach.min_binary_bytes`"},
  {"long_lived", gauge, "",
   "actors marked long-lived now (marks go when the actor exits)"},
#define MAYFLY_X(name, kind, unit, help) {#name, kind, unit, help},
  MAYFLY_DETACH_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  {"binaries_released_early", counter, "",
   "pool binaries that went back to their pool with at least one slice "
   "detached by the policy and none sent to a long-lived actor as it is: "
   "binaries a long-lived actor would otherwise have kept. Counted when the "
   "binary is released (a flag on its header, read once)"},
};

constexpr metric_info kHoldersMetrics[] = {
  {"top_n", config, "",
   "`runtime.top_holders` (default 10): holders listed by name"},
  {"holders", gauge, "",
   "distinct holders with live pool binaries now (before the cut to "
   "`top_n`)"},
  {"by_holder.{holder}.binaries", gauge, "",
   "live pool binaries attributed to `<holder>`"},
  {"by_holder.{holder}.viewed_bytes", gauge, "bytes",
   "bytes the live slices of those binaries view, summed per binary in its "
   "reference word (runtime/slice.hpp; a byte viewed by two slices counts "
   "twice; each binary's sum is kept modulo 2^32). Against `pinned_bytes`: "
   "what the holder uses versus what it keeps out of the pools (a 10-byte "
   "slice of a datagram kept in a 2 KiB slot: 10 viewed, 2048 pinned). "
   "Slices of the same binaries held by others count here too: the binary "
   "is attributed to its latest holder"},
  {"by_holder.{holder}.pinned_bytes", gauge, "bytes",
   "slot bytes they keep out of their pools"},
  {"by_holder.{holder}.oldest_age_ms", gauge, "ms",
   "age of the oldest of them since its first freeze"},
};

} // namespace

const metric_section runtime_metrics{"runtime", "/runtime", kRuntimeMetrics};
const metric_section detach_metrics{"detach", "/detach", kDetachMetrics};
const metric_section holders_metrics{"holders", "/holders", kHoldersMetrics};
const metric_section binaries_metrics{"binaries", "/binaries",
                                      kBinariesMetrics};

} // namespace mayfly

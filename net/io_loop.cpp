#include <mayfly/net/internal/io_loop.hpp>

#include <poll.h>
#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>

#include <mayfly/actors/runtime.hpp>

namespace mayfly::detail {

namespace {

replier_env make_replier_env(runtime& rt, handler_type& type,
                             const endpoint_config& cfg,
                             const udp_socket& sock, const socket_calls& calls,
                             io_counters& counters) {
  replier_env env;
  if (type.latency_on())
    env.timing = &type;
  env.fd = sock.fd();
  env.pools = &rt.buffers();
  env.calls = &calls;
  env.counters = &counters;
  env.batch = cfg.batch;
  env.gso = cfg.gso && sock.gso_supported();
  // One MTU's payload (1500 bytes less IP and UDP headers): a larger
  // segment would be refused (EINVAL) on an ordinary interface.
  env.gso_max_segment = cfg.address.is_v6() ? 1452 : 1472;
  // A wildcard bind: every reply leaves from its request's local address.
  env.set_source = cfg.address.is_unspecified();
  auto local = sock.local_address();
  env.name = "udp:" + (local ? local->to_string() : std::string{"?"});
  return env;
}

} // namespace

io_loop::io_loop(runtime& rt, handler_type& type, const endpoint_config& cfg,
                 udp_socket sock)
  : rt_(&rt),
    cfg_(cfg),
    sock_(std::move(sock)),
    calls_(&current_socket_calls()),
    admission_(rt, type, cfg.handler_start, *this, counters_,
               // one receive's worth: a GRO receive holds up to 64 each
               cfg.receive_path == receive_path::gro ? 64 * size_t{cfg.batch}
                                                     : cfg.batch),
    replier_(make_replier_env(rt, type, cfg, sock_, *calls_, counters_)),
    queue_(rt.buffers(), cfg.reply_queue, waker_),
    path_(cfg.receive_path),
    timed_(type.latency_on()) {
  if (waker_.fd() < 0)
    std::fprintf(stderr, "mayfly: eventfd failed (%s): the IO loop polls "
                         "every millisecond instead of sleeping\n",
                 std::strerror(errno));
}

io_loop::~io_loop() {
  close();
}

void io_loop::start() {
  running_.store(true);
  // The receive path is set up on the IO thread (io_uring runs deferred
  // work on the thread that armed the request); wait for it, so that
  // path() is final when start() returns.
  std::promise<void> ready;
  auto done = ready.get_future();
  thread_ = std::thread{[this, &ready] {
    // Named for stall reports and `top -H`.
    pthread_setname_np(pthread_self(), "mayfly-io");
    receiver_env env;
    env.fd = sock_.fd();
    auto bound = sock_.local_address();
    env.local = bound ? *bound : cfg_.address;
    env.pktinfo = cfg_.address.is_unspecified();
    env.gro_enabled = sock_.gro_enabled();
    env.pools = &rt_->buffers();
    env.calls = calls_;
    env.counters = &counters_;
    env.batch = cfg_.batch;
    env.loops = cfg_.receive_threads;
    receiver_ = make_receiver(cfg_.receive_path, env, fallback_reason_);
    path_ = receiver_->kind();
    ready.set_value();
    run();
  }};
  done.wait();
}

void io_loop::start_receiving() noexcept {
  waker_.force();
}

void io_loop::begin_drain(bool left) noexcept {
  if (!left || !admission_.accepting() || !running_.load()
      || !receiving_.load()) {
    drained_.store(true, std::memory_order_release);
    return;
  }
  drain_requested_.store(true, std::memory_order_release);
  waker_.force();
}

void io_loop::drain_step(recv_status status, int64_t before) noexcept {
  counters_.bump(drained_at_stop, counters_.get(datagrams_in) - before);
  auto now = steady_now_ns();
  if (drain_since_ns_ == 0)
    drain_since_ns_ = now;
  if (status == recv_status::empty && !admission_.holding()
      && now - drain_since_ns_ >= kDetachGraceMs * 1000000)
    drained_.store(true, std::memory_order_release);
}

void io_loop::stop_receiving() noexcept {
  receiving_.store(false, std::memory_order_release);
  waker_.force();
  // Wait (bounded) until the IO thread saw it: after this returns it
  // dispatches nothing more, so the runtime's drain cannot be outrun by a
  // dispatch already under way.
  for (int i = 0; i < 5000 && running_.load(std::memory_order_acquire)
                  && !receive_stopped_.load(std::memory_order_acquire);
       ++i)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
}

void io_loop::close() noexcept {
  if (closed_.exchange(true))
    return;
  queue_.close();
  receiving_.store(false);
  running_.store(false, std::memory_order_release);
  waker_.force();
  if (thread_.joinable())
    thread_.join();
  // The IO thread is gone (this thread is the only writer now) and so are
  // the handlers: send the last replies the socket takes, count the rest.
  replier_.unblock();
  send_replies();
  replier_.drop_pending();
  counters_.bump(shutdown_reply_drops, queue_.drop_all());
  admission_.drop_held();
  // What the kernel still holds for us would vanish with the socket:
  // count it (the socket itself closes with the loop).
  if (receiver_) {
    counters_.bump(left_in_kernel_at_close, receiver_->discard_queued());
    receiver_.reset();
  }
}

// -- replies ------------------------------------------------------------------------

bool io_loop::send(const datagram& request, slice payload,
                   const caf::execution_unit* caller) noexcept {
  auto made = timed_ ? reply_stamp(steady_now_ns()) : 0u;
  if (caller != nullptr && caller == admission_.inline_host()) {
    // A handler running on this loop's thread: straight into the batch,
    // which leaves right after the handler (or now, when it is full).
    if (replier_.add(request.peer, std::move(payload), request.local, made)) {
      counters_.bump(replies_inline);
      return true;
    }
    counters_.bump(reply_batch_full);
    return false;
  }
  return queue_.post(request.peer, std::move(payload), request.local, made);
}

bool io_loop::send_copy(const datagram& request, std::string_view bytes,
                        const caf::execution_unit* caller) noexcept {
  auto made = timed_ ? reply_stamp(steady_now_ns()) : 0u;
  if (caller != nullptr && caller == admission_.inline_host()) {
    if (replier_.add_copy(request.peer, bytes, request.local, made)) {
      counters_.bump(replies_inline);
      return true;
    }
    counters_.bump(reply_batch_full);
    return false;
  }
  return queue_.post_copy(request.peer, bytes, request.local, made);
}

bool io_loop::send_replies() noexcept {
  bool worked = false;
  for (;;) {
    worked |= queue_.drain_into(replier_);
    if (replier_.pending() == 0 || replier_.wants_writable()
        || replier_.backing_off())
      return worked;
    worked = true;
    if (!replier_.flush() || queue_.empty())
      return worked;
  }
}

// -- the loop -----------------------------------------------------------------------

void io_loop::run() noexcept {
  while (running_.load(std::memory_order_acquire)) {
    bool worked = false;
    bool short_wait = waker_.fd() < 0; // no eventfd: look every 1 ms
    bool want_read = false;
    if (!receiving_.load(std::memory_order_acquire)) {
      receive_stopped_.store(true, std::memory_order_release);
    } else if (admission_.accepting()) {
      // Before the runtime starts nothing is read: datagrams wait in the
      // kernel (start_receiving() wakes the loop).
      // Draining at stop: look every millisecond until found empty.
      bool draining = drain_requested_.load(std::memory_order_acquire)
                      && !drained_.load(std::memory_order_relaxed);
      short_wait |= draining;
      if (admission_.holding() && !admission_.retry_held()) {
        short_wait = true; // paused: handlers at their bound
      } else {
        auto before = counters_.get(datagrams_in);
        auto status = receiver_->receive(admission_);
        worked = status == recv_status::got;
        short_wait |= status == recv_status::starved;
        want_read = status != recv_status::starved;
        if (draining)
          drain_step(status, before);
      }
    }
    // Inline handlers' replies are in the batch already; other threads'
    // wait in the queue. Both leave now.
    worked |= send_replies();
    if (worked)
      note_work();
    else
      idle(short_wait, want_read);
  }
}

void io_loop::note_work() noexcept {
  if (idle_since_ns_ == 0)
    return; // busy all along
  // Work came back after `gap`: traffic is steady when that is within the
  // bound, and the next idle spell polls up to the bound before sleeping;
  // else the loop sleeps at once next time. (Polling only about twice the
  // last gap missed the slower round trips: at one outstanding request its
  // p99 was worse than a blocking loop's; up to the bound it is better.)
  auto gap = steady_now_ns() - idle_since_ns_;
  if (spin_until_ns_ != 0)
    counters_.bump(spin_hits);
  auto max = int64_t{cfg_.busy_poll_us} * 1000;
  spin_budget_ns_.store(gap <= max ? max : 0, std::memory_order_relaxed);
  idle_since_ns_ = 0;
  spin_until_ns_ = 0;
  quiet_ = false;
}

void io_loop::release_idle() noexcept {
  // Nothing to do for a while: what the loop holds ready goes back to the
  // pools (the replies in partly filled send buffers have left), so an
  // idle endpoint pins no slot and shows no live binary.
  quiet_ = true;
  replier_.release_buffer();
  queue_.release_packers();
  receiver_->release_idle();
}

void io_loop::idle(bool short_wait, bool want_read) noexcept {
  auto now = steady_now_ns();
  if (idle_since_ns_ == 0)
    idle_since_ns_ = now;
  auto budget = spin_budget_ns_.load(std::memory_order_relaxed);
  if (want_read && !short_wait && budget > 0 && !replier_.wants_writable()) {
    // Traffic is steady: look again at once rather than sleep (a wake-up
    // costs more than the datagram).
    if (spin_until_ns_ == 0)
      spin_until_ns_ = idle_since_ns_ + budget;
    if (now < spin_until_ns_) {
      counters_.bump(spins);
      return;
    }
  }
  waker_.about_to_sleep();
  // While blocked, queued replies wait for POLLOUT: do not spin on them.
  if ((!replier_.wants_writable() && !queue_.empty())
      || !running_.load(std::memory_order_acquire)) {
    waker_.awake();
    return;
  }
  int read_fd = receiver_->wait_fd();
  pollfd fds[3];
  nfds_t n = 2;
  fds[0] = {waker_.fd(), POLLIN, 0};
  fds[1] = {sock_.fd(), 0, 0};
  if (replier_.wants_writable())
    fds[1].events |= POLLOUT;
  if (want_read) {
    if (read_fd == sock_.fd())
      fds[1].events |= POLLIN;
    else
      fds[n++] = {read_fd, POLLIN, 0};
  }
  // Waiting on slots, handlers or kernel buffers: look again after 1 ms;
  // else sleep until the socket, a replying thread or a stop wakes us.
  int timeout = short_wait || replier_.backing_off() ? 1 : -1;
  counters_.bump(polls);
  int rc;
  if (timeout < 0 && !quiet_) {
    // Sleep, but look up after kQuietMs to give back what an idle loop
    // need not hold, then sleep on.
    rc = ::poll(fds, n, kQuietMs);
    if (rc == 0) {
      release_idle();
      counters_.bump(polls);
      rc = ::poll(fds, n, -1);
    }
  } else {
    rc = ::poll(fds, n, timeout);
  }
  waker_.awake();
  if (rc > 0 && (fds[0].revents & POLLIN))
    waker_.consume();
  if ((rc > 0 && (fds[1].revents & POLLOUT)) || replier_.backing_off())
    replier_.unblock();
  // The spin (if any) is over: the next work found measures a new gap.
  spin_until_ns_ = 0;
}

} // namespace mayfly::detail

#include <mayfly/net/udp_endpoint.hpp>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <cstdio>
#include <cstring>
#include <thread>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/internal/io_loop.hpp>
#include <mayfly/runtime/config.hpp>

namespace mayfly {

namespace {

int64_t now_ns() noexcept {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch())
    .count();
}

constexpr size_t kMaxUdpPayload = 65535;

// The loop whose IO thread this is (null on other threads): a handler that
// runs inline and finds the reply queue full lets its own loop send.
thread_local const void* t_io_loop = nullptr;

} // namespace

// -- configuration ----------------------------------------------------------------

const char* to_string(receive_path p) noexcept {
  switch (p) {
    case receive_path::gro:
      return "gro";
    case receive_path::io_uring:
      return "io_uring";
    case receive_path::recvmmsg:
      break;
  }
  return "recvmmsg";
}

const char* to_string(handler_start s) noexcept {
  return s == handler_start::workers ? "workers" : "io_thread";
}

result<endpoint_config> parse_endpoint_config(const nlohmann::json& doc,
                                              endpoint_config cfg) {
  config_reader top{doc, ""};
  const auto& net = top.object("net");
  if (!top.ok())
    return top.error();
  config_reader r{net, "net"};
  r.only({"receive_threads", "batch", "receive_buffer", "send_buffer",
          "reply_queue", "busy_poll_us", "receive_path", "gso",
          "handler_start"})
    .read("receive_threads", cfg.receive_threads, 1, 64)
    .read("batch", cfg.batch, 1, 1024)
    .read("receive_buffer", cfg.receive_buffer, 0, 1u << 30)
    .read("send_buffer", cfg.send_buffer, 0, 1u << 30)
    .read("reply_queue", cfg.reply_queue, 16, 1u << 22)
    .read("busy_poll_us", cfg.busy_poll_us, 0, 1000000)
    .choose("receive_path", cfg.receive_path,
            {{"recvmmsg", receive_path::recvmmsg},
             {"gro", receive_path::gro},
             {"io_uring", receive_path::io_uring}},
            "expected \"recvmmsg\", \"gro\" or \"io_uring\"")
    .read("gso", cfg.gso)
    .choose("handler_start", cfg.handler_start,
            {{"io_thread", handler_start::io_thread},
             {"workers", handler_start::workers}},
            "expected \"io_thread\" or \"workers\"");
  if (!r.ok())
    return r.error();
  return cfg;
}

// -- udp_endpoint ---------------------------------------------------------------------

udp_endpoint::udp_endpoint(handler_type& type, endpoint_config cfg)
  : type_(&type), cfg_(std::move(cfg)) {
}

result<udp_endpoint*> udp_endpoint::open(runtime& rt, handler_type& type,
                                         endpoint_config cfg) {
  if (cfg.receive_threads == 0 || cfg.batch == 0 || cfg.reply_queue == 0) {
    error_info err{errc::invalid_config,
                   "receive_threads, batch and reply_queue must be > 0", 0,
                   "net"};
    return err;
  }
  std::unique_ptr<udp_endpoint> ep{new udp_endpoint(type, cfg)};
  socket_options opts;
  opts.reuse_port = cfg.receive_threads > 1;
  opts.receive_buffer = cfg.receive_buffer;
  opts.send_buffer = cfg.send_buffer;
  opts.gro = cfg.receive_path == receive_path::gro;
  auto bind_to = cfg.address;
  for (uint32_t i = 0; i < cfg.receive_threads; ++i) {
    auto sock = udp_socket::open(bind_to, opts);
    if (!sock) {
      auto err = sock.error();
      err.subject = cfg.address.to_string();
      return err;
    }
    if (i == 0) {
      auto local = sock->local_address();
      if (!local)
        return local.error();
      ep->local_ = *local;
      bind_to = *local; // port 0: the others share the port the first got
    }
    ep->loops_.push_back(
      std::make_unique<detail::io_loop>(rt, type, ep->cfg_, std::move(*sock)));
  }
  for (auto& loop : ep->loops_)
    loop->start();
  // One line per endpoint: the paths in use, and why not the one asked for.
  auto& first = *ep->loops_.front();
  std::string why;
  if (first.path() != cfg.receive_path)
    why = " (" + std::string{to_string(cfg.receive_path)}
          + " unavailable: " + first.fallback_reason() + ")";
  std::fprintf(stderr,
               "mayfly: udp:%s: receive path %s%s, gso %s, handlers start "
               "on %s\n",
               ep->local_.to_string().c_str(), to_string(first.path()),
               why.c_str(), first.gso() ? "on" : "off",
               first.runner() != nullptr ? "the IO thread" : "CAF workers");
  auto* ptr = ep.get();
  rt.attach(std::move(ep));
  return ptr;
}

udp_endpoint::~udp_endpoint() {
  close();
}

std::string udp_endpoint::name() const {
  return "udp:" + local_.to_string();
}

void udp_endpoint::stop_receiving() noexcept {
  for (auto& loop : loops_)
    loop->stop_receiving();
}

void udp_endpoint::close() noexcept {
  for (auto& loop : loops_)
    loop->close();
}

nlohmann::json udp_endpoint::stats() const {
  using loop_t = detail::io_loop;
  auto sum = [&](loop_t::io_counter c) {
    int64_t n = 0;
    for (auto& l : loops_)
      n += l->io_count(c);
    return n;
  };
  auto wsum = [&](loop_t::worker_counter c) {
    int64_t n = 0;
    for (auto& l : loops_)
      n += l->worker_count(c);
    return n;
  };
  auto ratio = [](int64_t a, int64_t b) {
    return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
  };
  // The kernel's counter as of now (SO_MEMINFO): SO_RXQ_OVFL reports it
  // only with the next datagram received, so drops at the end of a burst
  // would stay unseen until traffic resumes.
  int64_t kernel_drops = 0;
  for (auto& l : loops_)
    kernel_drops += std::max(l->io_count(loop_t::kernel_drops),
                             l->socket().kernel_drops());
  int64_t inline_started = 0;
  int64_t inline_continued = 0;
  for (auto& l : loops_) {
    if (const auto* runner = l->runner()) {
      inline_started += runner->started();
      inline_continued += runner->continued();
    }
  }
  auto in = sum(loop_t::datagrams_in);
  auto out = sum(loop_t::datagrams_out);
  auto syscalls = sum(loop_t::recv_calls) + sum(loop_t::send_calls)
                  + sum(loop_t::polls) + wsum(loop_t::wakeups);
  return {
    {"address", local_.to_string()},
    {"handler", type_->name()},
    {"receive_threads", loops_.size()},
    {"receive_path",
     to_string(loops_.empty() ? cfg_.receive_path : loops_.front()->path())},
    {"gso", std::any_of(loops_.begin(), loops_.end(),
                        [](auto& l) { return l->gso(); })},
    {"handler_start", to_string(cfg_.handler_start)},
    {"handlers_started_inline", inline_started},
    {"handlers_continued_on_workers", inline_continued},
    {"receive_buffer_bytes",
     loops_.empty() ? 0 : loops_.front()->socket().receive_buffer()},
    {"datagrams_in", in},
    {"bytes_in", sum(loop_t::bytes_in)},
    {"recv_calls", sum(loop_t::recv_calls)},
    {"recv_batch_avg", ratio(in, sum(loop_t::recv_calls))},
    {"recv_errors", sum(loop_t::recv_errors)},
    {"truncated", sum(loop_t::truncated)},
    {"spilled", sum(loop_t::spilled)},
    {"large_drops", sum(loop_t::large_drops)},
    {"kernel_drops", kernel_drops},
    {"policy_drops", sum(loop_t::policy_drops)},
    {"paused", sum(loop_t::paused)},
    {"pool_waits", sum(loop_t::pool_waits)},
    {"shutdown_drops", sum(loop_t::shutdown_drops)},
    {"datagrams_out", out},
    {"bytes_out", sum(loop_t::bytes_out)},
    {"send_calls", sum(loop_t::send_calls)},
    {"send_batch_avg", ratio(out, sum(loop_t::send_calls))},
    {"send_errors", sum(loop_t::send_errors)},
    {"send_blocked", sum(loop_t::send_blocked)},
    {"replies_queued", wsum(loop_t::replies_queued)},
    {"reply_queue_full", wsum(loop_t::reply_queue_full)},
    {"reply_no_buffer", wsum(loop_t::reply_no_buffer)},
    {"reply_after_close", wsum(loop_t::reply_after_close)},
    {"wakeups", wsum(loop_t::wakeups)},
    {"polls", sum(loop_t::polls)},
    {"gro_receives", sum(loop_t::gro_receives)},
    {"gro_segments", sum(loop_t::gro_segments)},
    {"gro_copied", sum(loop_t::gro_copied)},
    {"gso_sends", sum(loop_t::gso_sends)},
    {"gso_segments", sum(loop_t::gso_segments)},
    {"gso_errors", sum(loop_t::gso_errors)},
    {"uring_rearms", sum(loop_t::uring_rearms)},
    {"uring_ring_empty", sum(loop_t::uring_ring_empty)},
    {"uring_refill_waits", sum(loop_t::uring_refill_waits)},
    {"syscalls_per_datagram", ratio(syscalls, in + out)},
  };
}

// -- io_loop ----------------------------------------------------------------------------

namespace detail {

io_loop::io_loop(runtime& rt, handler_type& type, const endpoint_config& cfg,
                 udp_socket sock)
  : rt_(&rt),
    type_(&type),
    cfg_(cfg),
    sock_(std::move(sock)),
    pools_(&rt.buffers()),
    drop_on_overload_(rt.config().overload == overload_policy::drop),
    slot_size_(rt.buffers().standard().slot_size()),
    spill_size_(slot_size_ < kMaxUdpPayload ? kMaxUdpPayload - slot_size_ : 0),
    gro_(sock_.gro_enabled() && rt.buffers().jumbo() != nullptr),
    // GRO: at most kGroBatch jumbo slots per loop, and all loops together at
    // most half the jumbo class (the rest serves large replies).
    rbatch_(gro_ ? std::clamp<size_t>(rt.buffers().jumbo()->slots().capacity()
                                        / (2 * cfg.receive_threads),
                                      1, std::min<size_t>(cfg.batch, kGroBatch))
                 : cfg.batch),
    path_(gro_ ? receive_path::gro : receive_path::recvmmsg),
    gso_(cfg.gso),
    // One MTU's payload (1500 bytes less IP and UDP headers): a larger
    // segment would be refused (EINVAL) on an ordinary interface.
    gso_max_segment_(cfg.address.is_v6() ? 1452 : 1472),
    rmsgs_(cfg.batch),
    riov_(2 * cfg.batch),
    rnames_(cfg.batch),
    rcontrol_(kControlBytes * cfg.batch),
    slots_(cfg.batch),
    replies_(cfg.reply_queue),
    writer_(rt.buffers(), cfg.batch),
    smsgs_(cfg.batch),
    siov_(cfg.batch),
    scontrol_(kSendControlBytes * cfg.batch),
    sdgrams_(cfg.batch),
    packers_(new packer_slot[kPackerSlots]) {
  held_.reserve(gro_ ? rbatch_ * 64 : cfg.batch);
  if (cfg.handler_start == handler_start::io_thread)
    runner_.emplace(rt);
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (cfg.receive_path == receive_path::gro && !gro_)
    fallback_reason_ = !sock_.gro_enabled()
                         ? "the kernel refused UDP_GRO"
                         : "no jumbo buffer class to receive into";
  // GRO sizes its own buffers; io_uring maps the spill area only if it
  // falls back (setup_receive()).
  if (gro_ || cfg.receive_path == receive_path::io_uring)
    spill_size_ = 0;
  map_spill();
  if (event_fd_ < 0)
    std::fprintf(stderr, "mayfly: eventfd failed (%s): the IO loop polls "
                         "every millisecond instead of sleeping\n",
                 std::strerror(errno));
}

void io_loop::map_spill() noexcept {
  if (spill_size_ > 0) {
    // Scratch that catches the tails of datagrams larger than a slot: one
    // region for the loop's life, never handed out (large datagrams are
    // copied into a jumbo binary, see process()).
    void* mem = mmap(nullptr, spill_size_ * cfg_.batch, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    spill_ = mem == MAP_FAILED ? nullptr : static_cast<std::byte*>(mem);
    if (spill_ == nullptr)
      std::fprintf(stderr, "mayfly: no memory for the receive spill area: "
                           "datagrams larger than %zu bytes will be counted "
                           "as truncated\n",
                   slot_size_);
  }
}

void io_loop::setup_receive() noexcept {
  if (cfg_.receive_path != receive_path::io_uring)
    return;
  // On the IO thread: io_uring runs a request's deferred work on the thread
  // that submitted it, so the ring must be armed (and re-armed) from here.
  uring_ = uring_receiver::make(sock_.fd(), pools_->standard(),
                                2 * cfg_.batch, fallback_reason_);
  if (uring_) {
    uevents_.resize(cfg_.batch);
    path_ = receive_path::io_uring;
    return;
  }
  spill_size_ = slot_size_ < kMaxUdpPayload ? kMaxUdpPayload - slot_size_ : 0;
  map_spill();
}

io_loop::~io_loop() {
  close();
  if (spill_ != nullptr)
    munmap(spill_, spill_size_ * cfg_.batch);
  if (event_fd_ >= 0)
    ::close(event_fd_);
}

void io_loop::start() {
  running_.store(true);
  // The receive path is set up on the IO thread; wait for it, so that
  // path() is final when start() returns.
  std::promise<void> ready;
  auto done = ready.get_future();
  thread_ = std::thread{[this, &ready] {
    setup_receive();
    ready.set_value();
    run();
  }};
  done.wait();
}

void io_loop::stop_receiving() noexcept {
  receiving_.store(false, std::memory_order_release);
  uint64_t one = 1;
  if (event_fd_ >= 0)
    [[maybe_unused]] auto rc = ::write(event_fd_, &one, sizeof(one));
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
  receiving_.store(false);
  running_.store(false, std::memory_order_release);
  uint64_t one = 1;
  if (event_fd_ >= 0)
    [[maybe_unused]] auto rc = ::write(event_fd_, &one, sizeof(one));
  if (thread_.joinable())
    thread_.join();
  // Last replies (handlers are gone by now): send what the socket takes.
  drain_replies();
  reply r;
  while (replies_.try_pop(r))
    bump(shutdown_drops);
  bump(shutdown_drops, static_cast<int64_t>(writer_.pending()));
  writer_.clear();
  for (size_t i = held_head_; i < held_.size(); ++i)
    bump(shutdown_drops);
  held_.clear();
  held_head_ = 0;
  for (auto& s : slots_)
    s = mutable_buffer{};
  // Tear the ring down (the kernel stops writing into its slots), then
  // its slots go back to the pool.
  uevents_.clear();
  uring_.reset();
  for (size_t i = 0; i < kPackerSlots; ++i) {
    std::lock_guard<std::mutex> guard{packers_[i].mtx};
    packers_[i].packer.reset();
  }
}

// -- worker side ----------------------------------------------------------------------

bool io_loop::send(const udp_address& to, slice payload) noexcept {
  if (closed_.load(std::memory_order_acquire)) {
    workers_.add(reply_after_close);
    return false;
  }
  reply r{to, std::move(payload)};
  if (!replies_.try_push(r)) {
    // On this loop's own thread (a handler running inline) nobody else
    // would drain the queue until the handler returns: send what the
    // socket takes now, then try again.
    bool pushed = false;
    if (t_io_loop == this) {
      drain_replies();
      pushed = replies_.try_push(r);
    }
    if (!pushed) {
      workers_.add(reply_queue_full);
      return false;
    }
  }
  workers_.add(replies_queued);
  wake();
  return true;
}

bool io_loop::send_copy(const udp_address& to,
                        std::string_view bytes) noexcept {
  if (closed_.load(std::memory_order_acquire)) {
    workers_.add(reply_after_close);
    return false;
  }
  slice packed;
  {
    // One packer per thread index: uncontended unless two threads share an
    // index modulo kPackerSlots.
    auto& slot = packers_[detail::this_thread_index() % kPackerSlots];
    std::lock_guard<std::mutex> guard{slot.mtx};
    if (!slot.packer)
      slot.packer.emplace(*pools_);
    packed = slot.packer->pack(bytes);
  }
  if (!packed.has_owner()) {
    workers_.add(reply_no_buffer);
    return false;
  }
  return send(to, std::move(packed));
}

void io_loop::wake() noexcept {
  // Pairs with the fence in idle(): either the loop sees the queued reply
  // before sleeping, or we see it sleeping and write the eventfd.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // exchange: of several workers replying to a sleeping loop, only the
  // first pays for the eventfd write.
  if (event_fd_ >= 0 && sleeping_.load(std::memory_order_relaxed)
      && sleeping_.exchange(false, std::memory_order_relaxed)) {
    uint64_t one = 1;
    [[maybe_unused]] auto rc = ::write(event_fd_, &one, sizeof(one));
    workers_.add(wakeups);
  }
}

// -- IO thread ----------------------------------------------------------------------

void io_loop::run() noexcept {
  t_io_loop = this;
  while (running_.load(std::memory_order_acquire)) {
    bool worked = drain_replies();
    bool short_wait = event_fd_ < 0; // no eventfd: look again every 1 ms
    if (!receiving_.load(std::memory_order_acquire)) {
      receive_stopped_.store(true, std::memory_order_release);
    } else {
      if (held_head_ < held_.size() && !retry_held()) {
        short_wait = true; // paused: handlers at their bound
      } else {
        worked |= receive_batch();
        short_wait = short_wait || exhausted_;
      }
    }
    if (!worked)
      idle(short_wait);
  }
}

void io_loop::idle(bool short_wait) noexcept {
  bool want_read = receiving_.load(std::memory_order_relaxed)
                   && held_head_ == held_.size() && !exhausted_;
  // With io_uring, datagrams show up as completions on the ring's fd.
  int read_fd = uring_ ? uring_->fd() : sock_.fd();
  if (cfg_.busy_poll_us > 0 && want_read && !blocked_) {
    // Spin on the socket for a while: a cross-core wake-up costs more than
    // the datagram (docs/facts.md: ~25 us in a VM).
    auto until = now_ns() + int64_t{cfg_.busy_poll_us} * 1000;
    pollfd p{read_fd, POLLIN, 0};
    while (now_ns() < until) {
      if (!replies_.empty() || ::poll(&p, 1, 0) > 0)
        return;
    }
  }
  sleeping_.store(true, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // While blocked, queued replies wait for POLLOUT: do not spin on them.
  if ((!blocked_ && !replies_.empty())
      || !running_.load(std::memory_order_acquire)) {
    sleeping_.store(false, std::memory_order_relaxed);
    return;
  }
  pollfd fds[3];
  fds[0] = {event_fd_, POLLIN, 0};
  fds[1] = {sock_.fd(), 0, 0};
  fds[2] = {uring_ ? uring_->fd() : -1, 0, 0};
  if (want_read)
    (uring_ ? fds[2] : fds[1]).events |= POLLIN;
  if (blocked_)
    fds[1].events |= POLLOUT;
  // Waiting on slots or handlers: look again after 1 ms; else sleep until
  // the socket or a worker wakes us.
  int timeout = short_wait ? 1 : -1;
  bump(polls);
  int rc = ::poll(fds, uring_ ? 3 : 2, timeout);
  sleeping_.store(false, std::memory_order_relaxed);
  if (rc > 0 && (fds[0].revents & POLLIN)) {
    uint64_t n;
    [[maybe_unused]] auto r = ::read(event_fd_, &n, sizeof(n));
  }
  if (rc > 0 && (fds[1].revents & POLLOUT))
    blocked_ = false;
}

bool io_loop::receive_batch() noexcept {
  if (uring_)
    return receive_uring();
  // Give every message of the batch a fresh slot; stop at the first the pool
  // cannot give (the prefix is still read).
  size_t k = 0;
  auto& pool = gro_ ? *pools_->jumbo() : pools_->standard();
  for (; k < rbatch_; ++k) {
    if (!slots_[k]) {
      slots_[k] = pool.try_acquire();
      if (!slots_[k])
        break;
    }
  }
  exhausted_ = k == 0;
  if (k == 0) {
    bump(pool_waits);
    return false;
  }
  for (size_t i = 0; i < k; ++i) {
    auto& hdr = rmsgs_[i].msg_hdr;
    riov_[2 * i] = {slots_[i].data(), slots_[i].capacity()};
    hdr.msg_iov = &riov_[2 * i];
    hdr.msg_iovlen = 1;
    if (spill_ != nullptr) {
      riov_[2 * i + 1] = {spill_ + i * spill_size_, spill_size_};
      hdr.msg_iovlen = 2;
    }
    hdr.msg_name = rnames_[i].sockaddr_ptr();
    hdr.msg_namelen = udp_address::capacity();
    hdr.msg_control = rcontrol_.data() + i * kControlBytes;
    hdr.msg_controllen = kControlBytes;
    hdr.msg_flags = 0;
    rmsgs_[i].msg_len = 0;
  }
  int n = ::recvmmsg(sock_.fd(), rmsgs_.data(), static_cast<unsigned>(k),
                     MSG_DONTWAIT, nullptr);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return false;
    if (errno != EINTR)
      bump(recv_errors); // e.g. ECONNREFUSED from an ICMP error
    return true;
  }
  bump(recv_calls);
  auto now = now_ns();
  for (int i = 0; i < n; ++i) {
    if (gro_)
      process_gro(static_cast<size_t>(i), now);
    else
      process(static_cast<size_t>(i), now);
  }
  return n > 0;
}

bool io_loop::receive_uring() noexcept {
  uring_counts counts;
  size_t n = uring_->reap(uevents_.data(), uevents_.size(), counts);
  bump(uring_rearms, counts.rearms);
  bump(uring_ring_empty, counts.ring_empty);
  bump(uring_refill_waits, counts.refill_waits);
  bump(recv_errors, counts.errors);
  // Short waits while the ring lacks slots the pool could not give.
  exhausted_ = uring_->starved();
  if (exhausted_ && n == 0)
    bump(pool_waits);
  if (n == 0)
    return false;
  bump(recv_calls);
  auto now = now_ns();
  for (size_t i = 0; i < n; ++i) {
    auto& e = uevents_[i];
    if (e.has_drops) {
      bump(kernel_drops, static_cast<uint32_t>(e.drops_total - last_ovfl_));
      last_ovfl_ = e.drops_total;
    }
    if (e.truncated) {
      bump(truncated);
      continue;
    }
    datagram d;
    bump(datagrams_in);
    bump(bytes_in, static_cast<int64_t>(e.payload.size()));
    d.payload = std::move(e.payload);
    d.peer = e.peer;
    d.received_ns = now;
    admit(d);
  }
  return true;
}

size_t io_loop::read_control(msghdr& hdr) noexcept {
  size_t segment = 0;
  for (auto* c = CMSG_FIRSTHDR(&hdr); c != nullptr; c = CMSG_NXTHDR(&hdr, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      // The kernel's cumulative drop counter for this socket, attached to
      // the next datagram after drops.
      uint32_t total;
      std::memcpy(&total, CMSG_DATA(c), sizeof(total));
      bump(kernel_drops, static_cast<uint32_t>(total - last_ovfl_));
      last_ovfl_ = total;
    } else if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
      // Size of each coalesced datagram (the last may be shorter).
      int size;
      std::memcpy(&size, CMSG_DATA(c), sizeof(size));
      segment = size > 0 ? static_cast<size_t>(size) : 0;
    }
  }
  return segment;
}

void io_loop::process(size_t i, int64_t now) noexcept {
  auto& msg = rmsgs_[i];
  auto& hdr = msg.msg_hdr;
  read_control(hdr);
  if (hdr.msg_flags & MSG_TRUNC) {
    bump(truncated); // slot stays for the next batch
    return;
  }
  size_t len = msg.msg_len;
  bump(datagrams_in);
  bump(bytes_in, static_cast<int64_t>(len));
  datagram d;
  if (len <= slot_size_) {
    d.payload = std::move(slots_[i]).freeze(len);
  } else {
    auto* jumbo = pools_->jumbo();
    auto big = jumbo != nullptr && len <= jumbo->slot_size()
                 ? jumbo->try_acquire()
                 : mutable_buffer{};
    if (!big) {
      bump(large_drops);
      return;
    }
    std::memcpy(big.data(), slots_[i].data(), slot_size_);
    std::memcpy(big.data() + slot_size_, spill_ + i * spill_size_,
                len - slot_size_);
    d.payload = std::move(big).freeze(len);
    bump(spilled);
  }
  d.peer = rnames_[i];
  d.received_ns = now;
  admit(d);
}

void io_loop::process_gro(size_t i, int64_t now) noexcept {
  auto& msg = rmsgs_[i];
  size_t segment = read_control(msg.msg_hdr);
  if (msg.msg_hdr.msg_flags & MSG_TRUNC) {
    // Larger than a jumbo slot (only when jumbo slots are < 64 KiB): the
    // whole receive is dropped, counted once. Slot stays for the next round.
    bump(truncated);
    return;
  }
  size_t len = msg.msg_len;
  datagram d;
  d.peer = rnames_[i];
  d.received_ns = now;
  if (segment == 0 || segment >= len) {
    // One datagram. A small one is copied into a standard slot (at most a
    // slot's bytes) so it does not pin 64 KiB while its handler runs; the
    // jumbo slot stays for the next round. A large one keeps its jumbo slot.
    bump(datagrams_in);
    bump(bytes_in, static_cast<int64_t>(len));
    if (len <= slot_size_) {
      auto small = pools_->standard().try_acquire();
      if (small) {
        if (len > 0)
          std::memcpy(small.data(), slots_[i].data(), len);
        d.payload = std::move(small).freeze(len);
        bump(gro_copied);
        admit(d);
        return;
      }
    }
    d.payload = std::move(slots_[i]).freeze(len);
    admit(d);
    return;
  }
  // Several datagrams of one peer, back to back: one binary, one slice
  // (and one handler) per datagram. No copy.
  size_t count = (len + segment - 1) / segment;
  bump(datagrams_in, static_cast<int64_t>(count));
  bump(bytes_in, static_cast<int64_t>(len));
  bump(gro_receives);
  bump(gro_segments, static_cast<int64_t>(count));
  slice whole = std::move(slots_[i]).freeze(len);
  for (size_t off = 0; off < len; off += segment) {
    datagram part;
    part.payload = whole.sub(off, std::min(len, off + segment));
    part.peer = d.peer;
    part.received_ns = now;
    admit(part);
  }
}

void io_loop::admit(datagram& d) noexcept {
  d.source = this;
  if (held_head_ < held_.size()) {
    bump(paused);
    held_.push_back(std::move(d)); // keep order behind held datagrams
    return;
  }
  deliver(d);
}

dispatch_status io_loop::dispatch(datagram& d) noexcept {
  return runner_ ? runner_->dispatch(*type_, d) : rt_->dispatch(*type_, d);
}

void io_loop::deliver(datagram& d) noexcept {
  auto status = dispatch(d);
  switch (status) {
    case dispatch_status::spawned:
      return;
    case dispatch_status::not_running:
      bump(shutdown_drops);
      return;
    case dispatch_status::overloaded:
    case dispatch_status::no_arena: {
      if (drop_on_overload_) {
        bump(policy_drops);
        type_->add(status == dispatch_status::overloaded
                     ? handler_type::rejected
                     : handler_type::no_arena);
        return;
      }
      bump(paused);
      held_.push_back(std::move(d));
      return;
    }
  }
}

bool io_loop::retry_held() noexcept {
  while (held_head_ < held_.size()) {
    auto status = dispatch(held_[held_head_]);
    if (status == dispatch_status::overloaded
        || status == dispatch_status::no_arena)
      return false;
    if (status == dispatch_status::not_running)
      bump(shutdown_drops);
    held_[held_head_].payload.reset();
    ++held_head_;
  }
  held_.clear();
  held_head_ = 0;
  return true;
}

bool io_loop::drain_replies() noexcept {
  bool worked = false;
  if (blocked_)
    return false; // the socket is full: replies wait in the queue
  for (;;) {
    reply r;
    while (!writer_.full() && replies_.try_pop(r)) {
      writer_.write(r.to, std::move(r.payload));
      worked = true;
    }
    if (writer_.pending() == 0 || blocked_)
      return worked;
    if (!flush_writer())
      return worked;
  }
}

size_t io_loop::fill_send() noexcept {
  // One message per datagram, except that with GSO a run of consecutive
  // datagrams to one peer, all of one size but the last (which may be
  // shorter, and then ends the run), becomes one message: one iovec per
  // datagram and a UDP_SEGMENT control message; the kernel splits it.
  const bool gso = gso_.load(std::memory_order_relaxed);
  auto* it = writer_.begin();
  auto* end = writer_.end();
  size_t m = 0;
  size_t v = 0;
  while (it != end && m < smsgs_.size()) {
    size_t segment = it->payload.size();
    size_t run = 1;
    if (gso && segment > 0 && segment <= gso_max_segment_) {
      size_t total = segment;
      while (it + run != end && run < kGsoMaxSegments) {
        auto& next = it[run];
        size_t size = next.payload.size();
        if (size == 0 || size > segment || total + size > kGsoMaxBytes
            || !(next.to == it->to))
          break;
        total += size;
        ++run;
        if (size < segment)
          break;
      }
    }
    auto& hdr = smsgs_[m].msg_hdr;
    std::memset(&hdr, 0, sizeof(hdr));
    hdr.msg_name = const_cast<sockaddr*>(it->to.sockaddr_ptr());
    hdr.msg_namelen = it->to.size();
    hdr.msg_iov = &siov_[v];
    hdr.msg_iovlen = run;
    for (size_t r = 0; r < run; ++r)
      siov_[v++] = {const_cast<std::byte*>(it[r].payload.data()),
                    it[r].payload.size()};
    if (run > 1) {
      auto* control = scontrol_.data() + m * kSendControlBytes;
      std::memset(control, 0, kSendControlBytes);
      hdr.msg_control = control;
      hdr.msg_controllen = kSendControlBytes;
      auto* c = CMSG_FIRSTHDR(&hdr);
      c->cmsg_level = IPPROTO_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      auto size = static_cast<uint16_t>(segment);
      std::memcpy(CMSG_DATA(c), &size, sizeof(size));
    }
    smsgs_[m].msg_len = 0;
    sdgrams_[m] = static_cast<uint32_t>(run);
    it += run;
    ++m;
  }
  return m;
}

void io_loop::disable_gso(int err) noexcept {
  bump(gso_errors);
  if (!gso_.exchange(false, std::memory_order_relaxed))
    return;
  auto local = sock_.local_address();
  std::fprintf(stderr,
               "mayfly: udp:%s: the kernel refused a UDP GSO send (%s): "
               "GSO is off for this socket from now on, replies go out one "
               "by one\n",
               local ? local->to_string().c_str() : "?", std::strerror(err));
}

bool io_loop::flush_writer() noexcept {
  while (writer_.pending() > 0) {
    auto n = fill_send();
    int rc = ::sendmmsg(sock_.fd(), smsgs_.data(), static_cast<unsigned>(n),
                        MSG_DONTWAIT);
    bump(send_calls);
    if (rc > 0) {
      int64_t bytes = 0;
      size_t sent = 0;
      for (int i = 0; i < rc; ++i) {
        bytes += smsgs_[i].msg_len;
        sent += sdgrams_[i];
        if (sdgrams_[i] > 1) {
          bump(gso_sends);
          bump(gso_segments, sdgrams_[i]);
        }
      }
      bump(datagrams_out, static_cast<int64_t>(sent));
      bump(bytes_out, bytes);
      writer_.consume(sent);
      continue;
    }
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      // The socket's send buffer is full: wait for POLLOUT, keep the batch.
      bump(send_blocked);
      blocked_ = true;
      return false;
    }
    int err = rc < 0 ? errno : 0;
    if (sdgrams_[0] > 1 && (err == EIO || err == EINVAL)) {
      // The kernel cannot segment here (no checksum offload: EIO; a
      // segment too large for the route, no_check set: EINVAL). Nothing
      // was sent: switch GSO off and send the same replies one by one.
      disable_gso(err);
      continue;
    }
    // The first message failed for itself (unreachable peer, too large,
    // refused by a firewall...): drop its datagrams, count them, send the
    // rest.
    bump(send_errors, sdgrams_[0]);
    writer_.consume(sdgrams_[0]);
  }
  return true;
}

} // namespace detail

} // namespace mayfly

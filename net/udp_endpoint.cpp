#include <mayfly/net/udp_endpoint.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/internal/io_loop.hpp>
#include <mayfly/net/internal/steering.hpp>
#include <mayfly/runtime/config.hpp>

namespace mayfly {

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

const char* to_string(steering s) noexcept {
  return s == steering::cpu ? "cpu" : "off";
}

result<endpoint_config> parse_endpoint_config(const nlohmann::json& doc,
                                              endpoint_config cfg) {
  config_reader top{doc, ""};
  const auto& net = top.object("net");
  if (!top.ok())
    return top.error();
  config_reader r{net, "net"};
  r.only({"receive_threads", "reuse_port", "steering", "batch",
          "receive_buffer", "send_buffer", "reply_queue", "busy_poll_us",
          "receive_path", "gso", "handler_start", "source_limit",
          "dual_stack"})
    .read("receive_threads", cfg.receive_threads, 1, 64)
    .read("reuse_port", cfg.reuse_port)
    .choose("steering", cfg.steering,
            {{"off", steering::off}, {"cpu", steering::cpu}},
            "expected \"off\" or \"cpu\"")
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
    .read("dual_stack", cfg.dual_stack)
    .choose("handler_start", cfg.handler_start,
            {{"io_thread", handler_start::io_thread},
             {"workers", handler_start::workers}},
            "expected \"io_thread\" or \"workers\"");
  if (!r.ok())
    return r.error();
  return cfg;
}

result<source_limit_options>
parse_source_limit_config(const nlohmann::json& doc,
                          source_limit_options limit) {
  config_reader top{doc, ""};
  const auto& net = top.object("net");
  if (!top.ok())
    return top.error();
  config_reader in_net{net, "net"};
  const auto& section = in_net.object("source_limit");
  if (!in_net.ok())
    return in_net.error();
  config_reader r{section, "net.source_limit"};
  uint32_t v4 = limit.ipv4_prefix;
  uint32_t v6 = limit.ipv6_prefix;
  using o = source_limit_options;
  r.only({"rate", "burst", "ipv4_prefix", "ipv6_prefix", "table_size"})
    .read("rate", limit.rate, 0, o::max_rate)
    .read("burst", limit.burst, 0, o::max_burst)
    .read("ipv4_prefix", v4, 0, 32)
    .read("ipv6_prefix", v6, 0, 128)
    .read("table_size", limit.table_size, o::min_table_size,
          o::max_table_size);
  if (!r.ok())
    return r.error();
  limit.ipv4_prefix = static_cast<uint8_t>(v4);
  limit.ipv6_prefix = static_cast<uint8_t>(v6);
  return limit;
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
  if (auto why = type.options().source_limit.check(); !why.empty()) {
    error_info err{errc::invalid_config, "", 0,
                   "handler '" + type.name() + "': source_limit." + why};
    return err;
  }
  std::unique_ptr<udp_endpoint> ep{new udp_endpoint(type, cfg)};
  socket_options opts;
  opts.reuse_port = cfg.receive_threads > 1 || cfg.reuse_port;
  opts.receive_buffer = cfg.receive_buffer;
  opts.send_buffer = cfg.send_buffer;
  opts.gro = cfg.receive_path == receive_path::gro;
  // A wildcard bind learns each datagram's local address from the kernel,
  // to reply from it; a specific bind knows it and pays nothing.
  opts.destination_address = cfg.address.is_unspecified();
  opts.dual_stack = cfg.dual_stack;
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
  // Sockets join the SO_REUSEPORT group in this order, which is the index
  // CPU steering's program returns.
  for (auto& loop : ep->loops_)
    loop->start();
  ep->steer_to_cpus();
  // One line per endpoint: the paths in use, and why not the one asked for.
  auto& first = *ep->loops_.front();
  std::string why;
  if (first.path() != cfg.receive_path)
    why = " (" + std::string{to_string(cfg.receive_path)}
          + " unavailable: " + first.fallback_reason() + ")";
  const char* gso = first.gso()           ? "on"
                    : !cfg.gso              ? "off"
                                            : "off (the kernel has no UDP GSO)";
  std::fprintf(stderr,
               "mayfly: udp:%s: receive path %s%s, gso %s, handlers start "
               "on %s, steering %s%s\n",
               ep->local_.to_string().c_str(), to_string(first.path()),
               why.c_str(), gso,
               first.runner() != nullptr ? "the IO thread" : "CAF workers",
               ep->steering_.c_str(),
               rt.running() ? "" : "; reading begins when the runtime starts");
  auto* ptr = ep.get();
  rt.attach(std::move(ep));
  return ptr;
}

void udp_endpoint::steer_to_cpus() {
  steering_ = to_string(steering::off);
  if (cfg_.steering != steering::cpu)
    return;
  auto n = static_cast<uint32_t>(loops_.size());
  if (n < 2) {
    steering_ = "off: one receive thread";
    return;
  }
  // Pin first: a program without pinned threads would only move datagrams
  // to a thread that runs elsewhere.
  const auto& calls = detail::current_socket_calls();
  auto cpus = detail::allowed_cpus();
  std::string why;
  uint32_t pinned = 0;
  for (; pinned < n; ++pinned) {
    int cpu = detail::steering_cpu(pinned, n, cpus);
    if (int rc = detail::pin_thread(calls, loops_[pinned]->native_thread(),
                                    cpu);
        rc != 0) {
      why = "pinning a thread to CPU " + std::to_string(cpu)
            + " failed: " + std::strerror(-rc);
      break;
    }
    loops_[pinned]->set_pinned_cpu(cpu);
  }
  if (why.empty()) {
    int rc = detail::attach_cpu_steering(calls, loops_.front()->socket().fd(),
                                         n);
    if (rc == 0) {
      steering_ = to_string(steering::cpu);
      return;
    }
    why = std::string{"SO_ATTACH_REUSEPORT_CBPF refused: "}
          + std::strerror(-rc);
  }
  // The kernel's hash spreads datagrams instead; threads run anywhere.
  for (uint32_t i = 0; i < pinned; ++i) {
    detail::unpin_thread(calls, loops_[i]->native_thread(), cpus);
    loops_[i]->set_pinned_cpu(-1);
  }
  steering_ = "off: " + why;
}

void udp_endpoint::drain_kernel_queue(int64_t deadline_ms) noexcept {
  // Last socket first: the SO_REUSEPORT group fills the hole a leaving
  // socket makes with its last member, so leaving in reverse order keeps a
  // successor's sockets (joined after ours, as many) at their indices and
  // its CPU steering aligned with its pinned threads.
  for (auto it = loops_.rbegin(); it != loops_.rend(); ++it) {
    auto left = (*it)->leave_port();
    if (!left)
      std::fprintf(stderr,
                   "mayfly: %s: cannot leave the port at stop (%s): new "
                   "datagrams keep arriving until close, which counts "
                   "them\n",
                   name().c_str(), left.error().message().c_str());
    (*it)->begin_drain(static_cast<bool>(left));
  }
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(deadline_ms);
  auto all_drained = [&] {
    return std::all_of(loops_.begin(), loops_.end(),
                       [](auto& l) { return l->drained(); });
  };
  while (!all_drained() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

udp_endpoint::~udp_endpoint() {
  close();
}

std::string udp_endpoint::name() const {
  return "udp:" + local_.to_string();
}

void udp_endpoint::start_receiving() noexcept {
  for (auto& loop : loops_)
    loop->start_receiving();
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
  using detail::io_counter;
  using detail::reply_queue;
  auto sum = [&](io_counter c) {
    int64_t n = 0;
    for (auto& l : loops_)
      n += l->counters().get(c);
    return n;
  };
  auto qsum = [&](reply_queue::counter c) {
    int64_t n = 0;
    for (auto& l : loops_)
      n += l->replies().count(c);
    return n;
  };
  auto ratio = [](int64_t a, int64_t b) {
    return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
  };
  // The kernel's drop counter as of now (SO_MEMINFO): no control message
  // per datagram, and drops at the end of a burst are seen at once.
  int64_t kernel_drops = 0;
  int64_t inline_started = 0;
  int64_t inline_continued = 0;
  int64_t spin_budget_ns = 0;
  int64_t sources_limited = 0;
  auto now_ns = detail::steady_now_ns();
  for (auto& l : loops_) {
    if (const auto* limiter = l->limiter())
      sources_limited += limiter->limited(now_ns);
    kernel_drops += std::max<int64_t>(0, l->socket().kernel_drops());
    spin_budget_ns = std::max(spin_budget_ns, l->spin_budget_ns());
    if (const auto* runner = l->runner()) {
      inline_started += runner->started();
      inline_continued += runner->continued();
    }
  }
  nlohmann::json doc{
    {"address", local_.to_string()},
    {"handler", type_->name()},
    {"receive_threads", loops_.size()},
    {"reuse_port", cfg_.reuse_port || loops_.size() > 1},
    {"steering", steering_},
    {"receive_path",
     to_string(loops_.empty() ? cfg_.receive_path : loops_.front()->path())},
    {"gso", std::any_of(loops_.begin(), loops_.end(),
                        [](auto& l) { return l->gso(); })},
    {"handler_start",
     to_string(type_->options().start.value_or(cfg_.handler_start))},
    {"reply_from_destination", cfg_.address.is_unspecified()},
    {"handlers_started_inline", inline_started},
    {"handlers_continued_on_workers", inline_continued},
    {"receive_buffer_bytes",
     loops_.empty() ? 0 : loops_.front()->socket().receive_buffer()},
    {"busy_poll_budget_us", spin_budget_ns / 1000},
  };
  // Every loop counter, by the name it is declared with (io_counters.hpp).
  for (size_t c = 0; c < detail::num_io_counters; ++c)
    doc[detail::io_counter_names[c]] = sum(static_cast<io_counter>(c));
  auto in = sum(detail::datagrams_in);
  auto out = sum(detail::datagrams_out);
  auto wakeups = qsum(reply_queue::wakeups);
  doc["kernel_drops"] = kernel_drops;
  doc["sources_limited_live"] = sources_limited;
  doc["recv_batch_avg"] = ratio(in, sum(detail::recv_calls));
  doc["send_batch_avg"] = ratio(out, sum(detail::send_calls));
  // Every reply queue counter (reply_queue.hpp); accepted replies counted
  // whichever way they came (inline or queued).
#define MAYFLY_X(name, kind, unit, help) doc[#name] = qsum(reply_queue::name);
  MAYFLY_REPLY_QUEUE_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  doc["replies_queued"]
    = qsum(reply_queue::replies_queued) + sum(detail::replies_inline);
  auto syscalls = sum(detail::recv_calls) + sum(detail::send_calls)
                  + sum(detail::polls) + sum(detail::spins) + wakeups;
  doc["syscalls_per_datagram"] = ratio(syscalls, in + out);
  // The send side: how full the packers leave their standard buffers, and
  // datagrams per UDP GSO message.
  send_packer_counts packed;
  for (auto& l : loops_)
    packed += l->packed();
  doc["send_buffers"] = packed.buffers;
  doc["bytes_packed"] = packed.bytes;
  doc["send_buffer_fill_avg"]
    = ratio(static_cast<int64_t>(packed.bytes),
            static_cast<int64_t>(packed.buffer_bytes));
  doc["gso_batch_avg"] = ratio(sum(detail::gso_segments), sum(detail::gso_sends));
  // Per thread (the spread steering makes), keyed by socket index: the
  // Prometheus exposition turns the key into a `thread` label.
  auto& threads = doc["threads"] = nlohmann::json::object();
  for (size_t i = 0; i < loops_.size(); ++i) {
    auto& l = *loops_[i];
    threads[std::to_string(i)] = {
      {"cpu", l.pinned_cpu()},
      {"datagrams_in", l.counters().get(detail::datagrams_in)},
      {"bytes_in", l.counters().get(detail::bytes_in)},
      {"datagrams_out", l.counters().get(detail::datagrams_out)},
      {"kernel_drops", std::max<int64_t>(0, l.socket().kernel_drops())},
      {"drained_at_stop", l.counters().get(detail::drained_at_stop)},
    };
  }
  return doc;
}

std::vector<metric_section> udp_endpoint::stats_sections() const {
  return {udp_endpoint_metrics};
}

// -- descriptions (runtime/metrics.hpp) ------------------------------------------

namespace {

using enum metric_kind;

constexpr metric_info kUdpEndpointMetrics[] = {
  {"address", text, "", "bound address"},
  {"handler", text, "", "handler type its datagrams go to"},
  {"receive_threads", config, "", "IO loops (one socket each)"},
  {"reuse_port", flag, "",
   "the sockets have `SO_REUSEPORT` (several threads, or `reuse_port` asked "
   "for a hand-over)"},
  {"steering", text, "",
   "which thread reads a datagram: `cpu` (CPU steering in use), `off` (the "
   "kernel's hash), or `off: <why>` when steering was asked for and the "
   "kernel refused the program or a pinning, or there is one thread"},
  {"threads.{thread}.cpu", identifier, "",
   "the CPU receive thread `<thread>` (socket `<thread>` of the group, "
   "counted from 0) is pinned to; -1: not pinned. Left out of /metrics"},
  {"threads.{thread}.datagrams_in", counter, "",
   "`datagrams_in` for that thread alone: the spread over the threads"},
  {"threads.{thread}.bytes_in", counter, "bytes",
   "`bytes_in` for that thread alone"},
  {"threads.{thread}.datagrams_out", counter, "",
   "`datagrams_out` for that thread alone"},
  {"threads.{thread}.kernel_drops", counter, "",
   "`kernel_drops` for that thread alone"},
  {"threads.{thread}.drained_at_stop", counter, "",
   "`drained_at_stop` for that thread alone"},
  {"receive_path", text, "",
   "receive path in use: `recvmmsg`, `gro` or `io_uring` (after fallback; "
   "the one asked for is in the configuration)"},
  {"gso", flag, "",
   "replies sent with UDP GSO now (false when switched off, when the kernel "
   "has no GSO, or after it refused a send)"},
  {"handler_start", text, "",
   "where new handlers run first: `io_thread` or `workers` (design/net.md, "
   "\"Where handlers start\")"},
  {"reply_from_destination", flag, "",
   "bound to a wildcard (0.0.0.0, [::]): each datagram's destination is read "
   "(IP_PKTINFO / IPV6_PKTINFO) and its replies leave from it (guide.md, "
   "\"Binding to a wildcard address\")"},
  {"handlers_started_inline", counter, "",
   "handlers whose first activation ran on an IO thread (0 with `workers`)"},
  {"handlers_continued_on_workers", counter, "",
   "... of those, the ones that did not finish there (they waited for a "
   "message) and went on on CAF's workers"},
  {"receive_buffer_bytes", gauge, "bytes",
   "SO_RCVBUF of the first socket as the kernel reports it (twice what was "
   "asked)"},
  {"busy_poll_budget_us", gauge, "us",
   "how long an idle loop polls now before sleeping: `busy_poll_us` while "
   "traffic is steady, 0 when it is not (largest over the loops)"},
#define MAYFLY_X(name, kind, unit, help) {#name, kind, unit, help},
  MAYFLY_IO_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  {"kernel_drops", counter, "",
   "datagrams the kernel dropped on this socket (SO_MEMINFO, read when the "
   "stats are collected, so drops at the end of a burst show at once; no "
   "control message per datagram). On the `gro` path the kernel counts a "
   "dropped coalesced receive once: then these are receives of up to 64 "
   "datagrams each"},
  {"sources_limited_live", gauge, "",
   "sources (address prefixes) limited now: refused since their last "
   "admitted datagram and their bucket not yet full again; summed over the "
   "receive threads, computed when the stats are read (0 without a limit)"},
  {"recv_batch_avg", gauge, "", "`datagrams_in / recv_calls` since start"},
  {"send_batch_avg", gauge, "", "`datagrams_out / send_calls` since start"},
#define MAYFLY_X(name, kind, unit, help) {#name, kind, unit, help},
  MAYFLY_REPLY_QUEUE_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  {"syscalls_per_datagram", gauge, "",
   "`(recv_calls + send_calls + polls + spins + wakeups) / (datagrams_in + "
   "datagrams_out)` since start (a spin is one empty receive call)"},
  {"send_buffers", counter, "",
   "standard send buffers the packers started (copied replies: "
   "`ctx.reply(std::string_view)`; never split, a reply that does not fit "
   "starts a fresh buffer)"},
  {"bytes_packed", counter, "bytes", "bytes packed into those"},
  {"send_buffer_fill_avg", gauge, "ratio 0..1",
   "`bytes_packed / (send_buffers × standard slot size)`: how full a send "
   "buffer was when the packer moved on (the buffer still being filled "
   "counts as started, so a lightly loaded endpoint reads low)"},
  {"gso_batch_avg", gauge, "",
   "`gso_segments / gso_sends` since start: datagrams per GSO message"},
};

} // namespace

const metric_section udp_endpoint_metrics{"net.udp", "/net/{endpoint}",
                                          kUdpEndpointMetrics};

} // namespace mayfly

#include <mayfly/net/udp_endpoint.hpp>

#include <algorithm>
#include <cstdio>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/internal/io_loop.hpp>
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
  const char* gso = first.gso()           ? "on"
                    : !cfg.gso              ? "off"
                                            : "off (the kernel has no UDP GSO)";
  std::fprintf(stderr,
               "mayfly: udp:%s: receive path %s%s, gso %s, handlers start "
               "on %s%s\n",
               ep->local_.to_string().c_str(), to_string(first.path()),
               why.c_str(), gso,
               first.runner() != nullptr ? "the IO thread" : "CAF workers",
               rt.running() ? "" : "; reading begins when the runtime starts");
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
  for (auto& l : loops_) {
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
    {"receive_path",
     to_string(loops_.empty() ? cfg_.receive_path : loops_.front()->path())},
    {"gso", std::any_of(loops_.begin(), loops_.end(),
                        [](auto& l) { return l->gso(); })},
    {"handler_start", to_string(cfg_.handler_start)},
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
  doc["recv_batch_avg"] = ratio(in, sum(detail::recv_calls));
  doc["send_batch_avg"] = ratio(out, sum(detail::send_calls));
  // Accepted replies, whichever way they came (inline or queued).
  doc["replies_queued"]
    = qsum(reply_queue::replies_queued) + sum(detail::replies_inline);
  doc["reply_queue_full"] = qsum(reply_queue::reply_queue_full);
  doc["reply_no_buffer"] = qsum(reply_queue::reply_no_buffer);
  doc["reply_after_close"] = qsum(reply_queue::reply_after_close);
  doc["wakeups"] = wakeups;
  auto syscalls = sum(detail::recv_calls) + sum(detail::send_calls)
                  + sum(detail::polls) + sum(detail::spins) + wakeups;
  doc["syscalls_per_datagram"] = ratio(syscalls, in + out);
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
  {"receive_path", text, "",
   "receive path in use: `recvmmsg`, `gro` or `io_uring` (after fallback; "
   "the one asked for is in the configuration)"},
  {"gso", flag, "",
   "replies sent with UDP GSO now (false when switched off, when the kernel "
   "has no GSO, or after it refused a send)"},
  {"handler_start", text, "",
   "where new handlers run first: `io_thread` or `workers` (design/net.md, "
   "\"Where handlers start\")"},
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
  {"recv_batch_avg", gauge, "", "`datagrams_in / recv_calls` since start"},
  {"send_batch_avg", gauge, "", "`datagrams_out / send_calls` since start"},
  {"replies_queued", counter, "",
   "replies accepted, whichever way they came (inline plus through the "
   "queue)"},
  {"reply_queue_full", counter, "",
   "replies from other threads dropped: reply queue full"},
  {"reply_no_buffer", counter, "",
   "copied replies dropped: no send buffer"},
  {"reply_after_close", counter, "",
   "replies dropped: endpoint already closed"},
  {"wakeups", counter, "",
   "eventfd writes by other threads to wake a sleeping IO loop"},
  {"syscalls_per_datagram", gauge, "",
   "`(recv_calls + send_calls + polls + spins + wakeups) / (datagrams_in + "
   "datagrams_out)` since start (a spin is one empty receive call)"},
};

} // namespace

const metric_section udp_endpoint_metrics{"net.udp", "/net/{endpoint}",
                                          kUdpEndpointMetrics};

} // namespace mayfly

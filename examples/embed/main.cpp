// mayfly-embed: a mayfly runtime inside a service that already has its own
// main loop and its own caf::actor_system.
//
// The service reads mayfly's settings from a section of its own JSON
// configuration, creates its CAF actor system and one long-lived actor of its
// own (a ticket dispenser), then makes a mayfly runtime that *borrows* that
// system (`runtime::make(cfg, system)`). Its handler type answers each
// datagram only after asking the dispenser for a ticket: the handler actor
// stays alive while it awaits the response (request/then with a timeout and
// an error handler) and builds its reply in its arena. The service calls
// `start()`, runs its own loop (here: a few rounds of querying itself over
// UDP), calls `stop()`, reads the statistics in code, destroys the runtime,
// stops its own actor and lets the actor system go, in that order. It exits
// by itself in well under a second; the exit code is 0 when every query was
// answered and every pooled resource came back.
//
//   mayfly-embed          the service's own main loop (bounded, see above)
//   mayfly-embed --run    the other way: the runtime owns its actor system
//                         and runtime::run() owns the main thread until
//                         SIGINT or SIGTERM
//
// The snippets of docs/guide.md are the regions between the `--8<--` marks.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <mayfly/actors/config.hpp>
#include <mayfly/actors/handler.hpp>
#include <mayfly/actors/messages.hpp>
#include <mayfly/actors/runtime.hpp>
#include <mayfly/actors/scheduler.hpp>
#include <mayfly/net/udp_endpoint.hpp>

namespace {

using ticket_atom = caf::atom_constant<caf::atom("ticket")>;

// The service's configuration file, with mayfly's sections under "mayfly".
// --8<-- [start:config]
constexpr const char* kServiceConfig = R"json(
{
  "service": { "rounds": 20 },
  "mayfly": {
    "runtime": { "workers": 2, "max_throughput": 64, "max_in_flight": 1024,
                 "overload": "pause", "shutdown_deadline_ms": 2000 },
    "memory": {
      "buffers": { "standard_slot_size": 2048, "standard_capacity": 1024,
                   "jumbo_slot_size": 65536, "jumbo_capacity": 8,
                   "huge_pages": true, "prefault": true },
      "arenas": { "block_size": 16384, "capacity": 256,
                  "max_arena_bytes": 262144 }
    },
    "net": { "receive_threads": 1, "batch": 32, "receive_buffer": 1048576,
             "send_buffer": 0, "reply_queue": 1024, "busy_poll_us": 0 }
  }
}
)json";
// --8<-- [end:config]

// -- the service's own long-lived actor ---------------------------------------

struct dispenser_state {
  int64_t next = 0;
  uint64_t bytes_seen = 0;
};

// Hands out ticket numbers. It belongs to the service, not to mayfly. (It
// takes an argument, the first ticket: an argument-less function-based spawn
// trips UBSan in CAF 0.17.6, see docs/design/actors.md.)
caf::behavior ticket_dispenser(caf::stateful_actor<dispenser_state>* self,
                               int64_t first) {
  self->state.next = first;
  return {
    [self](ticket_atom, const mayfly::slice& who) -> int64_t {
      // `who` is a slice of the received datagram: it arrived without a copy.
      self->state.bytes_seen += who.size();
      return self->state.next++;
    },
  };
}

// -- the handler type ---------------------------------------------------------

mayfly::handler_type& add_ask_handler(mayfly::runtime& rt, caf::actor tickets) {
  // --8<-- [start:await]
  // If the dispenser does not answer within 500 ms (or is gone), the peer
  // gets "try again" and the handler ends, counted as `ask_errors`.
  mayfly::handler_options options;
  options.ask_timeout = std::chrono::milliseconds{500};
  options.error_reply = "try again";
  auto handler = [tickets](mayfly::handler_context& ctx,
                           const mayfly::datagram& d) {
    // Ask another actor and answer the peer when the response comes. The
    // handler actor (its arena and its datagram with it) lives until then.
    ctx.ask(tickets, ticket_atom::value, d.payload).then([&ctx](int64_t ticket) {
      auto text = ctx.request().payload.view();
      auto cap = text.size() + 32;
      auto* buf = ctx.arena().make_array<char>(cap); // gone at exit
      auto n = std::snprintf(buf, cap, "%.*s -> ticket %lld",
                             static_cast<int>(text.size()), text.data(),
                             static_cast<long long>(ticket));
      ctx.reply(std::string_view{buf, static_cast<size_t>(n)}); // 1 copy
    });
  };
  return rt.add_handler("ask", handler, options);
  // --8<-- [end:await]
}

// -- the service's own work: query ourselves over UDP -------------------------

// A connected UDP client socket, or -1.
int connect_to(const mayfly::udp_address& server) {
  int fd = ::socket(server.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, server.sockaddr_ptr(), server.size()) != 0) {
    ::close(fd);
    fd = -1;
  }
  return fd;
}

// Sends "hello N" and waits up to a second for its answer.
bool ask_once(int fd, int n) {
  char query[32];
  auto len = std::snprintf(query, sizeof(query), "hello %d", n);
  if (::send(fd, query, static_cast<size_t>(len), 0) != len)
    return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 1000) <= 0)
    return false;
  char reply[128];
  auto got = ::recv(fd, reply, sizeof(reply), 0);
  std::string_view answer{reply, got > 0 ? static_cast<size_t>(got) : 0};
  return answer.substr(0, static_cast<size_t>(len)) == query
         && answer.find("-> ticket") != std::string_view::npos;
}

// -- mode 1: the service's main loop, the service's actor system --------------

int serve_in_own_loop(const nlohmann::json& doc) {
  auto cfg = mayfly::parse_runtime_config(doc.at("mayfly"));
  auto net = mayfly::parse_endpoint_config(doc.at("mayfly"));
  if (!cfg || !net) {
    std::fprintf(stderr, "mayfly-embed: invalid configuration: %s\n",
                 (!cfg ? cfg.error() : net.error()).message().c_str());
    return 2;
  }
  int rounds = doc.at("service").at("rounds").get<int>();
  net->address = *mayfly::udp_address::parse("127.0.0.1:0"); // any free port

  // --8<-- [start:embed-system]
  // The service's own actor system, set up as the service sees fit.
  caf::actor_system_config sys_cfg;
  sys_cfg.set("scheduler.max-threads", size_t{2});
  sys_cfg.set("scheduler.max-throughput", size_t{64});
  // mayfly's scheduler: CAF's, minus a clock wake-up per actor exit.
  mayfly::install_scheduler(sys_cfg);
  caf::actor_system system{sys_cfg};
  auto tickets = system.spawn(ticket_dispenser, int64_t{1});

  // A runtime that borrows the system: pools, stats, handler types are its
  // own; CAF's workers are the service's ("workers" and "max_throughput"
  // of the configuration are ignored). It must be destroyed before the system.
  auto made = mayfly::runtime::make(*cfg, system);
  if (!made) {
    std::fprintf(stderr, "mayfly-embed: %s\n", made.error().message().c_str());
    return 2;
  }
  auto& rt = **made;
  auto& ask = add_ask_handler(rt, tickets);
  // --8<-- [end:embed-system]

  // --8<-- [start:embed-loop]
  rt.start(); // before opening: a datagram that arrives first is not dropped
  auto ep = mayfly::udp_endpoint::open(rt, ask, *net); // the runtime owns it
  if (!ep) {
    std::fprintf(stderr, "mayfly-embed: cannot listen: %s\n",
                 ep.error().message().c_str());
    return 1;
  }
  int client = connect_to(ep->local_address());
  int answered = 0;
  for (int round = 0; round < rounds && client >= 0; ++round) {
    // ... the service's own work for this turn of its loop; here it queries
    // itself over UDP and waits 10 ms.
    answered += ask_once(client, round) ? 1 : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  rt.stop(); // stop receiving, drain handlers, flush and close the endpoint
  // --8<-- [end:embed-loop]
  if (client >= 0)
    ::close(client);

  // --8<-- [start:stats-in-code]
  auto stats = rt.collect_stats(); // any thread; allocates: not in a handler
  const auto& h = stats["handlers"]["ask"];
  std::printf("mayfly-embed: %d/%d answered; handler 'ask': spawned %lld, "
              "lingered %lld, finished %lld, replies %lld\n",
              answered, rounds, h["spawned"].get<long long>(),
              h["lingered"].get<long long>(), h["finished"].get<long long>(),
              h["replies"].get<long long>());
  auto balance = rt.balance(); // all zero after a clean stop()
  std::printf("mayfly-embed: balance after stop: %s\n",
              balance.zero() ? "all zero" : balance.to_json().dump().c_str());
  // --8<-- [end:stats-in-code]

  // --8<-- [start:embed-teardown]
  made.value().reset(); // 1. the runtime (its handler type holds `tickets`)
  caf::anon_send_exit(tickets, caf::exit_reason::user_shutdown); // 2. ours
  tickets = nullptr; // 3. no handle may keep an actor alive past the system
  // 4. `system` goes out of scope: its destructor waits for every actor.
  // --8<-- [end:embed-teardown]
  return answered == rounds && balance.zero() ? 0 : 1;
}

// -- mode 2: runtime::run() owns the main thread ------------------------------

int run_until_signal(const nlohmann::json& doc) {
  auto cfg = mayfly::parse_runtime_config(doc.at("mayfly"));
  auto net = mayfly::parse_endpoint_config(doc.at("mayfly"));
  if (!cfg || !net) {
    std::fprintf(stderr, "mayfly-embed: invalid configuration: %s\n",
                 (!cfg ? cfg.error() : net.error()).message().c_str());
    return 2;
  }
  net->address = *mayfly::udp_address::parse("127.0.0.1:0");
  // --8<-- [start:run]
  // First, before any thread exists: every thread made later (CAF's, the
  // endpoint's) inherits the blocked mask, so only run() sees the signals.
  mayfly::block_termination_signals();
  auto made = mayfly::runtime::make(*cfg); // owns its actor system
  if (!made) {
    std::fprintf(stderr, "mayfly-embed: %s\n", made.error().message().c_str());
    return 2;
  }
  auto& rt = **made;
  // Spawned through the runtime: told to exit (user_shutdown) by stop().
  auto tickets = rt.spawn(ticket_dispenser, int64_t{1});
  auto& ask = add_ask_handler(rt, tickets);
  auto ep = mayfly::udp_endpoint::open(rt, ask, *net);
  if (!ep) {
    std::fprintf(stderr, "mayfly-embed: cannot listen: %s\n",
                 ep.error().message().c_str());
    return 1;
  }
  std::printf("mayfly-embed: listening on udp %s; Ctrl-C to stop\n",
              ep->local_address().to_string().c_str());
  std::fflush(stdout);
  rt.run(); // start(); wait for SIGINT, SIGTERM or request_stop(); stop()
  // --8<-- [end:run]
  auto balance = rt.balance();
  std::printf("mayfly-embed: stopped; balance: %s\n",
              balance.zero() ? "all zero" : balance.to_json().dump().c_str());
  return balance.zero() ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (argc > 2 || (mode != "" && mode != "--run")) {
    std::fprintf(stderr, "usage: mayfly-embed [--run]\n");
    return 2;
  }
  auto doc = nlohmann::json::parse(kServiceConfig);
  return mode == "--run" ? run_until_signal(doc) : serve_in_own_loop(doc);
}

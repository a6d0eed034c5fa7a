// mayfly-handler-cost: instructions per handler, for callgrind.
//
// Runs N requests through one of three paths on a 1-worker actor system,
// from a foreign thread as the receive loop does, and waits until all are
// done:
//   caf     CAF's floor: spawn a class-based actor with the payload as
//           constructor argument, work in make_behavior(), return {} (the
//           pattern mayfly uses; docs/facts.md).
//   mayfly  runtime::dispatch of a pool binary to a handler that does the
//           same work (arena lease, admission, spawn, handler, release,
//           statistics).
//   mayfly-reply  the same, and the handler replies with a slice into a sink
//           that drops it.
//   caf-clock  the floor again, on an actor system with CAF's own
//           scheduler: its clock thread hears of every actor exit
//           (actors/scheduler.hpp explains why mayfly's does not).
// Measure with two values of N and divide the difference in instructions by
// the difference in N, so start-up and shutdown cancel out:
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null
//     build/bench/tests/mayfly-handler-cost caf 20000
// (docs/benchmarks.md has the script and the figures.)

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include <caf/all.hpp>

#include <mayfly/actors/handler.hpp>
#include <mayfly/actors/runtime.hpp>

namespace {

std::atomic<int64_t> finished{0};
int64_t target = 0;
std::mutex mtx;
std::condition_variable all_done;

// Counts a finished request; the last one wakes main (no spinning, which
// would add the waiting thread's instructions to the count).
void count_one() {
  if (finished.fetch_add(1, std::memory_order_relaxed) + 1 == target) {
    std::lock_guard<std::mutex> guard{mtx};
    all_done.notify_one();
  }
}

struct payload {
  mayfly::slice bytes;
  mayfly::udp_address peer;
};

// CAF's floor: the same spawn pattern with no mayfly code around it.
class floor_actor final : public caf::event_based_actor {
public:
  floor_actor(caf::actor_config& cfg, payload p)
    : caf::event_based_actor(cfg), p_(std::move(p)) {
  }

  caf::behavior make_behavior() override {
    volatile auto n = p_.bytes.size(); // touch the payload
    (void) n;
    return {};
  }

  void on_exit() override {
    p_.bytes.reset();
    count_one();
  }

private:
  payload p_;
};

struct null_sink final : mayfly::datagram_sink {
  bool send(const mayfly::datagram&, mayfly::slice,
            const caf::execution_unit*) noexcept override {
    return true; // dropped: measures the handler, not the network
  }
  bool send_copy(const mayfly::datagram&, std::string_view,
                 const caf::execution_unit*) noexcept override {
    return true;
  }
};

void wait_all() {
  std::unique_lock<std::mutex> guard{mtx};
  all_done.wait(guard, [] { return finished.load() >= target; });
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s caf|caf-clock|mayfly|mayfly-reply N\n",
                 argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  int64_t n = std::atoll(argv[2]);
  target = n;
  // Everything is dispatched up front (no waiting in the loop), so pools
  // and the in-flight bound hold all N.
  mayfly::runtime_config cfg;
  cfg.workers = 1;
  cfg.memory.buffers.standard_capacity = static_cast<uint32_t>(n + 64);
  cfg.memory.buffers.jumbo_capacity = 0;
  cfg.memory.arenas.capacity = static_cast<uint32_t>(n + 64);
  cfg.memory.arenas.block_size = 4096;
  cfg.memory.arenas.max_arena_bytes = 4096;
  cfg.max_in_flight = static_cast<uint32_t>(n + 64);
  auto rt = std::move(*mayfly::runtime::make(cfg));
  null_sink sink;
  auto peer = *mayfly::udp_address::parse("127.0.0.1:5000");
  // The same work as the floor actor: touch the payload. ("mayfly-reply"
  // also replies with a slice into a sink that drops it.)
  auto& h = rt->add_handler("bench", [](mayfly::handler_context&,
                                        const mayfly::datagram& d) {
    volatile auto n = d.payload.size();
    (void) n;
    count_one();
  });
  auto& h_reply = rt->add_handler("reply", [](mayfly::handler_context& ctx,
                                              const mayfly::datagram& d) {
    ctx.reply(d.payload);
    count_one();
  });
  rt->start();
  // caf-clock: the same 1-worker system, without mayfly's scheduler.
  caf::actor_system_config plain_cfg;
  plain_cfg.set("scheduler.max-threads", size_t{1});
  plain_cfg.set("scheduler.max-throughput",
                static_cast<size_t>(cfg.max_throughput));
  std::optional<caf::actor_system> plain;
  if (mode == "caf-clock")
    plain.emplace(plain_cfg);
  auto make_payload = [&] {
    auto buf = rt->buffers().standard().try_acquire();
    std::memset(buf.data(), 'x', 64);
    return std::move(buf).freeze(64);
  };
  int64_t stamp = 0;
  for (int64_t i = 0; i < n; ++i) {
    // The receive loop reads the clock once per batch of 32 and stamps each
    // datagram with it; do the same.
    if (i % 32 == 0)
      stamp = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now().time_since_epoch())
                .count();
    if (mode == "caf") {
      rt->system().spawn<floor_actor>(payload{make_payload(), peer});
    } else if (plain) {
      plain->spawn<floor_actor>(payload{make_payload(), peer});
    } else {
      mayfly::datagram d{make_payload(), peer, &sink, stamp};
      auto& type = mode == "mayfly-reply" ? h_reply : h;
      if (rt->dispatch(type, d) != mayfly::dispatch_status::spawned) {
        std::fprintf(stderr, "dispatch refused\n");
        return 1;
      }
    }
  }
  wait_all();
  plain.reset();
  rt->stop();
  std::printf("%s: %lld handlers, balance %s\n", mode.c_str(),
              static_cast<long long>(n),
              rt->balance().zero() ? "zero" : "NOT ZERO");
  return 0;
}

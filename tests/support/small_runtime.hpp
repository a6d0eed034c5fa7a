#pragma once

// A real runtime sized for loopback tests (2 workers, small pools, no
// prefaulting), one on CAF's test coordinator for deterministic actor
// tests, and the end-of-test check every such test makes: stop, then every
// pool, arena, binary and handler back at zero; and a bounded wait for
// what the workers do on their own time. Shared by the actors, net and
// dns test suites. Header-only.

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <mayfly/actors/runtime.hpp>

namespace mayfly::test {

inline runtime_config small_runtime_config() {
  runtime_config cfg;
  cfg.workers = 2;
  cfg.shutdown_deadline_ms = 2000;
  cfg.memory.buffers.standard_capacity = 256;
  cfg.memory.buffers.jumbo_capacity = 8;
  cfg.memory.buffers.prefault = false;
  cfg.memory.arenas.capacity = 256;
  cfg.memory.arenas.block_size = 4096;
  cfg.memory.arenas.prefault = false;
  return cfg;
}

/// Configuration for a runtime on CAF's deterministic test coordinator
/// (`make_testing_runtime`): 1 worker, a 100 ms shutdown deadline, 4 KiB
/// arena blocks, nothing prefaulted. Callers set the pool capacities they
/// need.
inline runtime_config testing_runtime_config() {
  runtime_config cfg;
  cfg.workers = 1;
  cfg.shutdown_deadline_ms = 100;
  cfg.memory.buffers.prefault = false;
  cfg.memory.arenas.block_size = 4096;
  cfg.memory.arenas.prefault = false;
  return cfg;
}

/// A runtime on CAF's deterministic test coordinator: nothing runs until
/// the test steps it (the test-only seam of `runtime::make`).
inline result<std::unique_ptr<runtime>>
make_testing_runtime(runtime_config cfg) {
  return runtime::make(std::move(cfg), detail::testing_scheduler_t{});
}

/// Whether `done()` holds within 5 s (polled every millisecond): for what
/// a real runtime's workers do on their own time.
template <class Predicate>
bool eventually(Predicate done) {
  for (int i = 0; i < 5000 && !done(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return done();
}

/// Adds the handler type `name` to `rt`: each datagram is answered with
/// itself (the reply is a slice of the request: no copy).
inline handler_type& add_echo_handler(runtime& rt,
                                      const std::string& name = "echo") {
  return rt.add_handler(name, [](handler_context& ctx, const datagram& d) {
    ctx.reply(d.payload);
  });
}

/// Stops `rt` (if any), expects all balances at zero, destroys it, and
/// expects no slice left alive in the process.
inline void stop_and_expect_balanced(std::unique_ptr<runtime>& rt) {
  if (rt) {
    rt->stop();
    EXPECT_TRUE(rt->balance().zero()) << rt->balance().to_json().dump();
    rt.reset();
  }
  EXPECT_EQ(slice::live_count(), 0);
}

} // namespace mayfly::test

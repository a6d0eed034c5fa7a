// mayfly-collector: a syslog collector in 20 lines, the first page of
// docs/guide.md. It counts the syslog messages it receives over UDP (one
// per datagram, as `logger -d` and rsyslog's UDP forwarding send them),
// answers nothing, and prints the count when it stops (SIGINT, SIGTERM or
// --exit-after). Try it:
//
//   mayfly-collector --port 5514 --stats 127.0.0.1:9100 &
//   seq 10000 | logger -n 127.0.0.1 -P 5514 -d
//   kill %1     # "mayfly-collector: 10000 syslog messages"
//
// Nothing is lost silently: a datagram the kernel dropped (receive buffer
// full) or the runtime refused is counted in the final summary and in
// /stats. The count is a std::atomic: a user counter API
// (`rt.counter(...)`, shown in /stats) is being built and will replace it.

// --8<-- [start:collector]
#include <atomic>
#include <cstdio>

#include <mayfly/mayfly.hpp>

int main(int argc, char** argv) {
  auto opts = mayfly::parse_serve_options(
    argc, argv, "mayfly-collector: counts syslog messages (UDP)", 5514);
  std::atomic<long long> messages{0};
  int status = mayfly::serve(opts, [&](mayfly::runtime& rt) -> auto& {
    return rt.add_handler("syslog", [&](mayfly::handler_context&,
                                        const mayfly::datagram& d) {
      if (!d.payload.empty()) // an empty datagram is no message
        messages.fetch_add(1, std::memory_order_relaxed);
    });
  });
  std::printf("%s: %lld syslog messages\n", opts.program.c_str(),
              messages.load());
  return status;
}
// --8<-- [end:collector]

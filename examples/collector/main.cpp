// mayfly-collector: a syslog collector in 20 lines, the first page of
// docs/guide.md. It counts the syslog messages it receives over UDP (one
// per datagram, as `logger -d` and rsyslog's UDP forwarding send them),
// answers nothing, and prints the count when it stops (SIGINT, SIGTERM or
// --exit-after). Try it:
//
//   mayfly-collector --port 5514 --stats 127.0.0.1:9100 &
//   seq 10000 | logger -n 127.0.0.1 -P 5514 -d
//   curl -s http://127.0.0.1:9100/metrics | grep messages
//   kill %1     # "mayfly-collector: 10000 syslog messages"
//
// The count is a user counter (`rt.counter`, runtime/user_metrics.hpp): it
// shows in /stats as "counters": {"messages": N} and in /metrics as
// `mayfly_counters_messages_total`. Nothing is lost silently: a datagram
// the kernel dropped (receive buffer full) or the runtime refused is
// counted in the final summary and in /stats.

// --8<-- [start:collector]
#include <cstdio>
#include <optional>

#include <mayfly/mayfly.hpp>

int main(int argc, char** argv) {
  auto opts = mayfly::parse_serve_options(
    argc, argv, "mayfly-collector: counts syslog messages (UDP)", 5514);
  std::optional<mayfly::user_counter> messages; // in /stats and /metrics
  return mayfly::serve(opts, [&](mayfly::runtime& rt) -> auto& {
    messages = rt.counter("messages", "syslog messages received").value();
    return rt.add_handler("syslog", [&](mayfly::handler_context&,
                                        const mayfly::datagram& d) {
      if (!d.payload.empty()) // an empty datagram is no message
        messages->add();
    });
  }, {}, [&] { // after the stop, before the runtime (and counter) is gone
    std::printf("%s: %lld syslog messages\n", opts.program.c_str(),
                static_cast<long long>(messages->value()));
  });
}
// --8<-- [end:collector]

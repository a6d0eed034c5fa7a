// mayfly-echo: the echo protocol of docs/workloads.md (port 9000).
//
// The whole service is the marked region below: `mayfly::serve`
// (<mayfly/net/serve.hpp>) brings the flags, the configuration file, the
// statistics endpoint, the signals and the final summary; the service adds
// its handler. Every request datagram is handled by a short-lived handler
// actor of its own, which replies with the received bytes themselves: the
// reply is a slice of the request's binary, so nothing is copied in user
// space between the receive and the send system calls, and the handler
// allocates nothing.
//
// With --demo N the program sends itself a burst of N echo requests (64
// outstanding) and prints what it measured, which makes it the quickest way
// to see mayfly work:
//
//   mayfly-echo --stats 127.0.0.1:9100 --demo 20000 --exit-after 30
//
// then open http://127.0.0.1:9100/ while it runs.

#include <cstdio>
#include <string>

#include <mayfly/mayfly.hpp> // mayfly::serve among the rest
#include "examples/common/echo_load.hpp"

namespace {

// --demo N: N echo requests to ourselves once listening, then a report.
void demo_burst(mayfly::runtime&, const mayfly::udp_address& at,
                uint64_t count) {
  example::echo_load_options load;
  load.server = at;
  load.requests = count;
  load.seconds = 30;
  std::printf("demo: %s\n", example::run_echo_load(load).to_text().c_str());
  std::fflush(stdout);
}

} // namespace

// --8<-- [start:echo-service]
int main(int argc, char** argv) {
  std::string demo; // a flag of our own, checked as a number
  auto opts = mayfly::parse_serve_options(
    argc, argv, "mayfly-echo: replies to every datagram with its own bytes.",
    9000,
    {{"demo", "send N echo requests to ourselves and report", &demo,
      mayfly::expect_uint(1, 100000000)}});
  // --8<-- [start:echo-handler]
  auto setup = [](mayfly::runtime& rt) -> mayfly::handler_type& {
    return rt.add_handler("echo", [](mayfly::handler_context& ctx,
                                     const mayfly::datagram& d) {
      if (d.payload.empty())
        return; // not a request (1 to 65507 bytes): no reply
      ctx.reply(d.payload); // zero-copy: a slice of the received binary
    });
  };
  // --8<-- [end:echo-handler]
  if (demo.empty())
    return mayfly::serve(opts, setup); // until SIGINT/SIGTERM or --exit-after
  return mayfly::serve(opts, setup, [&](auto& rt, const auto& at) {
    demo_burst(rt, at, std::stoull(demo)); // checked: digits, 1..10^8
  });
}
// --8<-- [end:echo-service]

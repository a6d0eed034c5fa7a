// mayfly-echo: the echo protocol of docs/workloads.md (port 9000).
//
// Every request datagram is handled by a short-lived handler actor of its
// own, which replies with the received bytes themselves: the reply is a
// slice of the request's binary, so nothing is copied in user space between
// the receive and the send system calls, and the handler allocates nothing.
// With --demo N the program sends itself a burst of N echo requests (64
// outstanding) and prints what it measured, which makes it the quickest way
// to see mayfly work:
//
//   mayfly-echo --stats 127.0.0.1:9100 --demo 20000 --exit-after 30
//
// then open http://127.0.0.1:9100/ while it runs.

#include <cstdio>
#include <string>

#include <mayfly/actors/handler.hpp>
#include <mayfly/actors/runtime.hpp>
#include "examples/common/echo_load.hpp"
#include "examples/common/service.hpp"

int main(int argc, char** argv) {
  std::string demo;
  auto opts = example::parse_options(
    argc, argv, "mayfly-echo: replies to every datagram with its own bytes.",
    9000, {{"demo", "send N echo requests to ourselves and report", &demo}});
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
  std::function<void(mayfly::runtime&, const mayfly::udp_address&)> burst;
  if (!demo.empty()) {
    auto count = std::stoull(demo);
    burst = [count](mayfly::runtime&, const mayfly::udp_address& at) {
      example::echo_load_options load;
      load.server = at;
      load.requests = count;
      load.seconds = 30;
      auto result = example::run_echo_load(load);
      std::printf("demo: %s\n", result.to_text().c_str());
      std::fflush(stdout);
    };
  }
  return example::serve(opts, setup, burst);
}

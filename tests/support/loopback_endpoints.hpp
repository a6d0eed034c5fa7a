#pragma once

// Opening the endpoints a net test serves on: a UDP endpoint and a stats
// endpoint on 127.0.0.1, each on a port the kernel chooses. A failure is
// added to the running test (with the reason) and answered with null, so a
// fixture writes `ASSERT_NE(udp, nullptr)` and reads the address from the
// endpoint. Header-only; controlling thread, like the calls it wraps.

#include <gtest/gtest.h>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/stats_endpoint.hpp>
#include <mayfly/net/udp_endpoint.hpp>

namespace mayfly::test {

/// `h`'s UDP endpoint on 127.0.0.1 (any port; `ec`'s address is replaced),
/// or null after a test failure.
inline udp_endpoint* open_udp_on_loopback(runtime& rt, handler_type& h,
                                          endpoint_config ec = {}) {
  ec.address = *udp_address::parse("127.0.0.1:0");
  auto ep = udp_endpoint::open(rt, h, ec);
  EXPECT_TRUE(ep) << ep.error().message();
  return ep ? *ep : nullptr;
}

/// A stats endpoint on 127.0.0.1 (any port), or null after a test failure.
inline stats_endpoint* open_stats_on_loopback(runtime& rt) {
  auto st = stats_endpoint::open(rt, *udp_address::parse("127.0.0.1:0"));
  EXPECT_TRUE(st) << st.error().message();
  return st ? *st : nullptr;
}

} // namespace mayfly::test

#pragma once

/// @file
/// Everything a service needs, in one include: the memory layer
/// (`<mayfly/runtime/...>`), the actor runtime and handler API
/// (`<mayfly/actors/...>`) and the UDP and stats endpoints
/// (`<mayfly/net/...>`), and `mayfly::serve`, the `main` of a service
/// (`<mayfly/net/serve.hpp>`). Each of those headers also compiles alone.

#include <mayfly/runtime/arena.hpp>
#include <mayfly/runtime/buffer_pool.hpp>
#include <mayfly/runtime/config.hpp>
#include <mayfly/runtime/errc.hpp>
#include <mayfly/runtime/parse.hpp>
#include <mayfly/runtime/result.hpp>
#include <mayfly/runtime/slice.hpp>

#include <mayfly/actors/address.hpp>
#include <mayfly/actors/barrier.hpp>
#include <mayfly/actors/config.hpp>
#include <mayfly/actors/datagram.hpp>
#include <mayfly/actors/detach_policy.hpp>
#include <mayfly/actors/errors.hpp>
#include <mayfly/actors/handler.hpp>
#include <mayfly/actors/messages.hpp>
#include <mayfly/actors/runtime.hpp>
#include <mayfly/actors/supervisor.hpp>

#include <mayfly/net/config.hpp>
#include <mayfly/net/serve.hpp>
#include <mayfly/net/stats_endpoint.hpp>
#include <mayfly/net/udp_endpoint.hpp>

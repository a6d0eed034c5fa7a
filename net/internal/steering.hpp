#pragma once

// `steering`: which receive thread reads a datagram (not installed).
//
// With `steering::cpu` an endpoint's SO_REUSEPORT group gets a classic BPF
// program, "return the CPU that runs the receive softirq modulo the number
// of sockets" (SO_ATTACH_REUSEPORT_CBPF), and the IO thread of socket i is
// pinned to a CPU c with c mod n == i: a datagram is then read on the CPU
// whose cache its packet is already in (Knot DNS does the same). Sockets
// are indexed in the order they joined the group, so the endpoint opens
// them in thread order.
//
// Every call goes through the `socket_calls` seam, so a test can make the
// kernel refuse the program or the pinning. Cold path only (endpoint
// open). Thread-safety: none needed (the endpoint's controlling thread).

#include <pthread.h>

#include <cstdint>
#include <string>
#include <vector>

#include <mayfly/net/internal/socket_calls.hpp>

namespace mayfly::detail {

/// The CPUs this process may run on (its affinity mask), ascending; at
/// least one entry (CPU 0 when the mask cannot be read).
std::vector<int> allowed_cpus() noexcept;

/// The CPU socket `index` of `count` is served from: one in `cpus` that
/// the program maps to that index (c mod count == index), else
/// cpus[index mod cpus.size()].
int steering_cpu(uint32_t index, uint32_t count, const std::vector<int>& cpus);

/// Attaches "return CPU mod count" to the reuseport group of `fd`: 0 or
/// -errno.
int attach_cpu_steering(const socket_calls& calls, int fd,
                        uint32_t count) noexcept;

/// Restricts `thread` to `cpu`: 0 or -errno.
int pin_thread(const socket_calls& calls, pthread_t thread, int cpu) noexcept;

/// Lets `thread` run on every CPU of `cpus` again: 0 or -errno.
int unpin_thread(const socket_calls& calls, pthread_t thread,
                 const std::vector<int>& cpus) noexcept;

} // namespace mayfly::detail

#pragma once

// `socket_calls`: the system calls under the receive and send paths, as a
// table of function pointers (not installed).
//
// The seam between an IO loop and the kernel (LevelDB's `Env` idea, at the
// size of two calls): the recvmmsg and GRO receive paths and the replier
// call the kernel only through the table they were given, so tests can
// inject what the kernel can do (EAGAIN, EINTR, ENOBUFS, EMSGSIZE,
// ECONNREFUSED, a partial sendmmsg, MSG_TRUNC, MSG_CTRUNC) and check that
// every datagram is delivered, retried or counted under a named reason.
// CPU steering (steering.hpp) attaches its program and pins its threads
// through the same table, so a test can make the kernel refuse either.
// Each call is made with MSG_DONTWAIT and returns what the kernel returned
// or -errno: errno as a value, never read twice.
//
// Thread-safety: the table is read at construction of an IO loop
// (`current_socket_calls`); replacing it affects loops opened afterwards.
// Cost: one indirect call per batch.

#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

namespace mayfly::detail {

/// See file comment.
struct socket_calls {
  /// recvmmsg(fd, msgs, n, MSG_DONTWAIT): messages read, or -errno.
  int (*recvmmsg)(int fd, mmsghdr* msgs, unsigned n) noexcept;
  /// sendmmsg(fd, msgs, n, MSG_DONTWAIT): messages sent, or -errno.
  int (*sendmmsg)(int fd, mmsghdr* msgs, unsigned n) noexcept;
  /// setsockopt(fd, level, name, value, len): 0, or -errno. Null: the
  /// kernel's (a table that only fakes the data path leaves it out).
  int (*setsockopt)(int fd, int level, int name, const void* value,
                    socklen_t len) noexcept
    = nullptr;
  /// pthread_setaffinity_np(thread, cpus): 0, or the error number negated.
  /// Null: the real one.
  int (*set_affinity)(pthread_t thread, const cpu_set_t& cpus) noexcept
    = nullptr;
};

/// `calls.setsockopt`, or the kernel's when the table has none.
int call_setsockopt(const socket_calls& calls, int fd, int level, int name,
                    const void* value, socklen_t len) noexcept;

/// `calls.set_affinity`, or the real one when the table has none.
int call_set_affinity(const socket_calls& calls, pthread_t thread,
                      const cpu_set_t& cpus) noexcept;

/// The kernel's own calls.
const socket_calls& real_socket_calls() noexcept;

/// The table loops opened from now on use: the real one unless a test
/// replaced it.
const socket_calls& current_socket_calls() noexcept;

/// Test hook: loops opened from now on use `calls` (null: the real ones).
/// `calls` must outlive those loops.
void replace_socket_calls(const socket_calls* calls) noexcept;

} // namespace mayfly::detail

#include <mayfly/net/internal/socket_calls.hpp>

#include <atomic>
#include <cerrno>

namespace mayfly::detail {

namespace {

int real_recvmmsg(int fd, mmsghdr* msgs, unsigned n) noexcept {
  int rc = ::recvmmsg(fd, msgs, n, MSG_DONTWAIT, nullptr);
  return rc < 0 ? -errno : rc;
}

int real_sendmmsg(int fd, mmsghdr* msgs, unsigned n) noexcept {
  int rc = ::sendmmsg(fd, msgs, n, MSG_DONTWAIT);
  return rc < 0 ? -errno : rc;
}

constexpr socket_calls kReal{real_recvmmsg, real_sendmmsg};

std::atomic<const socket_calls*> g_current{nullptr};

} // namespace

int call_setsockopt(const socket_calls& calls, int fd, int level, int name,
                    const void* value, socklen_t len) noexcept {
  if (calls.setsockopt != nullptr)
    return calls.setsockopt(fd, level, name, value, len);
  return ::setsockopt(fd, level, name, value, len) == 0 ? 0 : -errno;
}

int call_set_affinity(const socket_calls& calls, pthread_t thread,
                      const cpu_set_t& cpus) noexcept {
  if (calls.set_affinity != nullptr)
    return calls.set_affinity(thread, cpus);
  return -pthread_setaffinity_np(thread, sizeof(cpus), &cpus);
}

const socket_calls& real_socket_calls() noexcept {
  return kReal;
}

const socket_calls& current_socket_calls() noexcept {
  auto* calls = g_current.load(std::memory_order_acquire);
  return calls != nullptr ? *calls : kReal;
}

void replace_socket_calls(const socket_calls* calls) noexcept {
  g_current.store(calls, std::memory_order_release);
}

} // namespace mayfly::detail

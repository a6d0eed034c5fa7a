#include <mayfly/net/internal/steering.hpp>

#include <linux/filter.h>
#include <sched.h>

namespace mayfly::detail {

std::vector<int> allowed_cpus() noexcept {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set))
        out.push_back(c);
  if (out.empty())
    out.push_back(0);
  return out;
}

int steering_cpu(uint32_t index, uint32_t count, const std::vector<int>& cpus) {
  for (int c : cpus)
    if (static_cast<uint32_t>(c) % count == index)
      return c;
  return cpus[index % cpus.size()];
}

int attach_cpu_steering(const socket_calls& calls, int fd,
                        uint32_t count) noexcept {
  // A = the CPU running the receive path; return A mod count (an index
  // past the group's end would make the kernel fall back to its hash).
  sock_filter code[] = {
    {BPF_LD | BPF_W | BPF_ABS, 0, 0,
     static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_CPU)},
    {BPF_ALU | BPF_MOD | BPF_K, 0, 0, count},
    {BPF_RET | BPF_A, 0, 0, 0},
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(code) / sizeof(code[0])),
                  code};
  return call_setsockopt(calls, fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
                         sizeof(prog));
}

int pin_thread(const socket_calls& calls, pthread_t thread, int cpu) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return call_set_affinity(calls, thread, set);
}

int unpin_thread(const socket_calls& calls, pthread_t thread,
                 const std::vector<int>& cpus) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus)
    CPU_SET(c, &set);
  return call_set_affinity(calls, thread, set);
}

} // namespace mayfly::detail

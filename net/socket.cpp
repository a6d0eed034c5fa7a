#include <mayfly/net/socket.hpp>

#include <fcntl.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <cerrno>

#include <mayfly/net/internal/pktinfo.hpp>

namespace mayfly {

namespace {

template <class T>
bool set_opt(int fd, int level, int name, T value) noexcept {
  return setsockopt(fd, level, name, &value, sizeof(value)) == 0;
}

} // namespace

udp_socket::~udp_socket() {
  close();
}

void udp_socket::close() noexcept {
  if (fd_ >= 0)
    ::close(std::exchange(fd_, -1));
}

result<udp_socket> udp_socket::open(const udp_address& local,
                                    const socket_options& opts) noexcept {
  if (local.family() != AF_INET && local.family() != AF_INET6)
    return {errc::invalid_address, "bind address has no IP family"};
  int fd = ::socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    IPPROTO_UDP);
  if (fd < 0)
    return {errc::system_error, "socket() failed", errno};
  udp_socket sock{fd};
  if (local.is_v6()
      && !set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, opts.dual_stack ? 0 : 1))
    return {errc::system_error, "setsockopt(IPV6_V6ONLY) failed", errno};
  if (opts.reuse_port && !set_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1))
    return {errc::system_error, "setsockopt(SO_REUSEPORT) failed", errno};
  if (opts.receive_buffer > 0) {
    int size = static_cast<int>(opts.receive_buffer);
    // SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it, SO_RCVBUF is capped
    // at net.core.rmem_max. Either way the kernel doubles the value.
    if (!set_opt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size)
        && !set_opt(fd, SOL_SOCKET, SO_RCVBUF, size))
      return {errc::system_error, "setsockopt(SO_RCVBUF) failed", errno};
  }
  if (opts.send_buffer > 0) {
    int size = static_cast<int>(opts.send_buffer);
    if (!set_opt(fd, SOL_SOCKET, SO_SNDBUFFORCE, size)
        && !set_opt(fd, SOL_SOCKET, SO_SNDBUF, size))
      return {errc::system_error, "setsockopt(SO_SNDBUF) failed", errno};
  }
  if (opts.drop_counter && !set_opt(fd, SOL_SOCKET, SO_RXQ_OVFL, 1))
    return {errc::system_error, "setsockopt(SO_RXQ_OVFL) failed", errno};
  if (opts.destination_address) {
    if (int err = detail::enable_destination_address(
          fd, local.family(), local.is_v6() && opts.dual_stack);
        err != 0)
      return {errc::system_error, "setsockopt(IP_PKTINFO) failed", err};
  }
  if (opts.gro)
    sock.gro_ = set_opt(fd, IPPROTO_UDP, UDP_GRO, 1);
  if (::bind(fd, local.sockaddr_ptr(), local.size()) != 0) {
    // The message names the address: "127.0.0.1:9000: bind() failed:
    // Address already in use" (cold path: the string may allocate).
    int err = errno;
    return error_info{errc::system_error, "bind() failed", err,
                      local.to_string()};
  }
  return sock;
}

result<udp_address> udp_socket::local_address() const noexcept {
  udp_address addr;
  socklen_t len = udp_address::capacity();
  if (getsockname(fd_, addr.sockaddr_ptr(), &len) != 0)
    return {errc::system_error, "getsockname() failed", errno};
  return udp_address{addr.sockaddr_ptr(), len};
}

int udp_socket::receive_buffer() const noexcept {
  int size = 0;
  socklen_t len = sizeof(size);
  getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, &len);
  return size;
}

int64_t udp_socket::kernel_drops() const noexcept {
  uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof(mem);
  if (getsockopt(fd_, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0
      || len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
    return -1;
  return mem[SK_MEMINFO_DROPS];
}

bool udp_socket::gso_supported() const noexcept {
  int segment = 0;
  socklen_t len = sizeof(segment);
  return getsockopt(fd_, IPPROTO_UDP, UDP_SEGMENT, &segment, &len) == 0;
}

result<bool> udp_socket::connect(const udp_address& peer) noexcept {
  if (::connect(fd_, peer.sockaddr_ptr(), peer.size()) != 0)
    return {errc::system_error, "connect() failed", errno};
  return true;
}

result<bool> udp_socket::leave_port() noexcept {
  auto self = local_address();
  if (!self)
    return self.error();
  auto to = *self;
  // Connecting to the wildcard would mean the local host anyway: say so.
  if (to.is_v6()) {
    auto* a = reinterpret_cast<sockaddr_in6*>(to.sockaddr_ptr());
    if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
      a->sin6_addr = in6addr_loopback;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(to.sockaddr_ptr());
    if (a->sin_addr.s_addr == htonl(INADDR_ANY))
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  return connect(to);
}

} // namespace mayfly

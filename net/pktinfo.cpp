#include <mayfly/net/internal/pktinfo.hpp>

#include <cerrno>
#include <cstring>

namespace mayfly::detail {

namespace {

bool set_flag(int fd, int level, int name) noexcept {
  int one = 1;
  return setsockopt(fd, level, name, &one, sizeof(one)) == 0;
}

} // namespace

int enable_destination_address(int fd, int family, bool dual_stack) noexcept {
  if (family == AF_INET)
    return set_flag(fd, IPPROTO_IP, IP_PKTINFO) ? 0 : errno;
  if (!set_flag(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO))
    return errno;
  if (dual_stack && !set_flag(fd, IPPROTO_IP, IP_PKTINFO))
    return errno;
  return 0;
}

bool read_destination(const cmsghdr& c, udp_address& local) noexcept {
  auto* data = CMSG_DATA(const_cast<cmsghdr*>(&c));
  auto* sa = local.sockaddr_ptr();
  if (c.cmsg_level == IPPROTO_IP && c.cmsg_type == IP_PKTINFO
      && c.cmsg_len >= CMSG_LEN(sizeof(in_pktinfo))) {
    in_pktinfo info;
    std::memcpy(&info, data, sizeof(info));
    // ipi_spec_dst is the local address (ipi_addr the header's destination,
    // which for a broadcast is no address to reply from).
    if (local.family() == AF_INET) {
      reinterpret_cast<sockaddr_in*>(sa)->sin_addr = info.ipi_spec_dst;
    } else {
      auto& a = reinterpret_cast<sockaddr_in6*>(sa)->sin6_addr;
      std::memset(&a, 0, 10);
      std::memset(reinterpret_cast<char*>(&a) + 10, 0xff, 2);
      std::memcpy(reinterpret_cast<char*>(&a) + 12, &info.ipi_spec_dst, 4);
    }
    return true;
  }
  if (c.cmsg_level == IPPROTO_IPV6 && c.cmsg_type == IPV6_PKTINFO
      && c.cmsg_len >= CMSG_LEN(sizeof(in6_pktinfo))
      && local.family() == AF_INET6) {
    in6_pktinfo info;
    std::memcpy(&info, data, sizeof(info));
    reinterpret_cast<sockaddr_in6*>(sa)->sin6_addr = info.ipi6_addr;
    return true;
  }
  return false;
}

size_t write_source(cmsghdr* c, const udp_address& from) noexcept {
  auto* sa = from.sockaddr_ptr();
  if (from.is_v6()) {
    auto& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (!IN6_IS_ADDR_V4MAPPED(&a)) {
      in6_pktinfo info{};
      info.ipi6_addr = a;
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(info));
      std::memcpy(CMSG_DATA(c), &info, sizeof(info));
      return CMSG_SPACE(sizeof(info));
    }
  }
  in_pktinfo info{};
  if (from.is_v6())
    std::memcpy(&info.ipi_spec_dst,
                reinterpret_cast<const char*>(
                  &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr)
                  + 12,
                4);
  else
    info.ipi_spec_dst = reinterpret_cast<const sockaddr_in*>(sa)->sin_addr;
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(info));
  std::memcpy(CMSG_DATA(c), &info, sizeof(info));
  return CMSG_SPACE(sizeof(info));
}

} // namespace mayfly::detail

#pragma once

// A `socket_calls` table for tests that injects what the kernel can do:
// each receive or send call takes the next scripted action, if any, and
// otherwise goes to the real system call. Install it with
// `scoped_socket_calls` before opening an endpoint (loops read the table
// when they are made) and keep it until the runtime has stopped.

#include <sys/socket.h>

#include <cerrno>
#include <deque>
#include <mutex>

#include <mayfly/net/internal/socket_calls.hpp>

namespace mayfly::test {

/// One scripted answer.
struct fake_action {
  enum kind_t {
    fail,      ///< return -err without calling the kernel
    partial,   ///< send: pass only the first `count` messages to the kernel
    set_flags, ///< receive: call the kernel, then OR `flags` into message 0
    strip_control, ///< receive: as set_flags, and message 0 loses its
                   ///< control messages (a missing IP_PKTINFO)
  } kind;
  int err = 0;
  unsigned count = 0;
  int flags = 0;
};

class fake_socket_calls {
public:
  static fake_socket_calls& instance() {
    static fake_socket_calls f;
    return f;
  }

  void on_recv(fake_action a) {
    std::lock_guard<std::mutex> g{mtx_};
    recv_.push_back(a);
  }

  void on_send(fake_action a) {
    std::lock_guard<std::mutex> g{mtx_};
    send_.push_back(a);
  }

  /// Scripted actions not used yet.
  size_t left() {
    std::lock_guard<std::mutex> g{mtx_};
    return recv_.size() + send_.size();
  }

  /// Messages passed to sendmmsg, and calls, since the last clear().
  unsigned sent_messages() {
    std::lock_guard<std::mutex> g{mtx_};
    return sent_messages_;
  }

  void clear() {
    std::lock_guard<std::mutex> g{mtx_};
    recv_.clear();
    send_.clear();
    sent_messages_ = 0;
  }

  const detail::socket_calls& table() const {
    return table_;
  }

private:
  static bool next(std::deque<fake_action>& q, fake_action& out) {
    auto& f = instance();
    std::lock_guard<std::mutex> g{f.mtx_};
    if (q.empty())
      return false;
    out = q.front();
    q.pop_front();
    return true;
  }

  static int recvmmsg(int fd, mmsghdr* msgs, unsigned n) noexcept {
    auto& f = instance();
    fake_action a;
    // An action is taken only when a datagram waits (a loop that finds the
    // socket empty must not eat the script); and the kernel is asked only
    // then, so a datagram arriving between the look and the call cannot
    // slip past the script.
    if (::recv(fd, nullptr, 0, MSG_PEEK | MSG_DONTWAIT) < 0)
      return -EAGAIN;
    if (next(f.recv_, a)) {
      if (a.kind == fake_action::fail)
        return -a.err;
      int rc = detail::real_socket_calls().recvmmsg(fd, msgs, n);
      if (rc > 0 && a.kind != fake_action::fail)
        msgs[0].msg_hdr.msg_flags |= a.flags;
      if (rc > 0 && a.kind == fake_action::strip_control)
        msgs[0].msg_hdr.msg_controllen = 0;
      return rc;
    }
    return detail::real_socket_calls().recvmmsg(fd, msgs, n);
  }

  static int sendmmsg(int fd, mmsghdr* msgs, unsigned n) noexcept {
    auto& f = instance();
    fake_action a;
    if (next(f.send_, a)) {
      if (a.kind == fake_action::fail)
        return -a.err;
      if (a.kind == fake_action::partial && a.count < n)
        n = a.count;
    }
    {
      std::lock_guard<std::mutex> g{f.mtx_};
      f.sent_messages_ += n;
    }
    return detail::real_socket_calls().sendmmsg(fd, msgs, n);
  }

  std::mutex mtx_;
  std::deque<fake_action> recv_;
  std::deque<fake_action> send_;
  unsigned sent_messages_ = 0;
  detail::socket_calls table_{&fake_socket_calls::recvmmsg,
                              &fake_socket_calls::sendmmsg};
};

/// Installs the fake table for endpoints opened during its life.
class scoped_socket_calls {
public:
  scoped_socket_calls() {
    fake_socket_calls::instance().clear();
    detail::replace_socket_calls(&fake_socket_calls::instance().table());
  }

  ~scoped_socket_calls() {
    detail::replace_socket_calls(nullptr);
    fake_socket_calls::instance().clear();
  }

  scoped_socket_calls(const scoped_socket_calls&) = delete;
  scoped_socket_calls& operator=(const scoped_socket_calls&) = delete;
};

} // namespace mayfly::test

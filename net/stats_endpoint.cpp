#include <mayfly/net/stats_endpoint.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

// Debian's cpp-httplib 0.11.4 is built as a shared library (the header only
// declares); CMake passes the defines its pkg-config file lists
// (CPPHTTPLIB_OPENSSL_SUPPORT...), which change the layout of its types, so
// this file must see exactly them. No public mayfly header includes it.
#include <httplib.h>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/prometheus.hpp>
#include <mayfly/net/stats_page.hpp>
#include <mayfly/runtime/config.hpp>

// How this file uses cpp-httplib. Its `Server` parses requests, routes them
// and writes responses; mayfly replaces two pieces of it, both through
// extension points of its public header:
//
// - The task queue (`Server::new_task_queue`): httplib's `ThreadPool` queues
//   without limit. `worker_pool` has a fixed number of threads and a bounded
//   queue; a connection that finds it full is refused at once with 503 on
//   the listener thread (non-blocking), so the listener never blocks.
// - The connection loop (`process_and_close_socket`, virtual): httplib's
//   own loop reads with a timeout *per read call*, so a client that sends a
//   byte every few seconds, or an endless header block, holds a thread and
//   memory for as long as it likes; and it notices a shutdown only between
//   requests. mayfly's loop hands httplib a `connection` stream that enforces
//   a deadline per request, a byte budget per request and an immediate stop
//   (every wait also polls an eventfd that `close()` signals), then calls
//   httplib's `process_request` for parsing, routing and writing.
//
// Nothing else of httplib's internals is relied on.

namespace mayfly {

namespace {

using json = nlohmann::json;

int64_t now_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch())
    .count();
}

// -- counters ----------------------------------------------------------------------

enum http_counter : size_t {
  connections,       ///< connections accepted (served or refused)
  rejected,          ///< ... refused with 503: pool and queue full
  timeouts,          ///< requests or responses cut at their deadline
  oversize,          ///< requests cut at max_request_bytes
  requests,          ///< final responses written (one per request)
  bytes_in,          ///< bytes read from clients
  bytes_out,         ///< bytes written to clients (headers and bodies)
  listener_restarts, ///< the accept loop failed and was restarted
  num_http_counters,
};

// Status codes counted one by one ("other" for the rest): what this server
// and httplib's parser can answer.
constexpr int kCodes[] = {200, 206, 304, 400, 403, 404,
                          405, 413, 414, 416, 417, 500, 503};
constexpr size_t kNumCodes = std::size(kCodes);

// Written by the pool threads and the listener, read by `stats()`: relaxed
// atomics (a few per request; contention is not a concern at HTTP rates).
struct http_counters {
  std::array<std::atomic<int64_t>, num_http_counters> values{};
  std::array<std::atomic<int64_t>, kNumCodes + 1> codes{};
  std::atomic<int64_t> live{0};

  void add(http_counter c, int64_t n = 1) noexcept {
    values[c].fetch_add(n, std::memory_order_relaxed);
  }

  int64_t get(http_counter c) const noexcept {
    return values[c].load(std::memory_order_relaxed);
  }

  void count_status(int status) noexcept {
    size_t i = 0;
    while (i < kNumCodes && kCodes[i] != status)
      ++i;
    codes[i].fetch_add(1, std::memory_order_relaxed);
  }
};

/// What the listener, the pool threads and the handlers share.
struct core {
  runtime* rt = nullptr;
  stats_endpoint_limits limits;
  /// Bound to a loopback address: requests must name an IP or localhost.
  bool loopback = true;
  /// An eventfd, readable from `close()` on: every wait polls it.
  int stop_fd = -1;
  std::atomic<bool> stopping{false};
  http_counters counters;
};

class connection;

/// Set by `worker_pool` while it runs a job on the listener thread to refuse
/// it (pool and queue full).
thread_local bool t_refuse = false;

/// The connection the calling pool thread serves (for handlers that want it
/// closed after their response).
thread_local connection* t_connection = nullptr;

// -- addresses -------------------------------------------------------------------------

/// "127.0.0.1" / "::1" and the port of a sockaddr.
void split_address(const sockaddr_storage& ss, std::string& ip, int& port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
    port = ntohs(a.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    ::inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof(buf));
    port = ntohs(a.sin6_port);
  } else {
    port = 0;
  }
  ip = buf;
}

std::string host_of(const udp_address& a) {
  sockaddr_storage ss{};
  std::memcpy(&ss, a.sockaddr_ptr(), a.size());
  std::string ip;
  int port = 0;
  split_address(ss, ip, port);
  return ip;
}

bool is_loopback(const udp_address& a) {
  if (a.family() == AF_INET) {
    auto& in = reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr())->sin_addr;
    return (ntohl(in.s_addr) >> 24) == 127;
  }
  if (a.family() == AF_INET6) {
    auto& in6
      = reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr())->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&in6))
      return true;
    return IN6_IS_ADDR_V4MAPPED(&in6) && in6.s6_addr[12] == 127;
  }
  return false;
}

/// Whether a `Host` header may reach a loopback-bound endpoint: absent
/// (HTTP/1.0), an IP literal, or localhost. A DNS-rebinding page must use a
/// hostname of its own, which this refuses.
bool host_allowed(const std::string& host) {
  if (host.empty())
    return true;
  if (host.front() == '[') {
    auto end = host.find(']');
    if (end == std::string::npos)
      return false;
    auto ip = host.substr(1, end - 1);
    in6_addr a6;
    return ::inet_pton(AF_INET6, ip.c_str(), &a6) == 1;
  }
  auto name = host.substr(0, host.rfind(':'));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  if (name == "localhost" || name == "localhost.")
    return true;
  in_addr a4;
  return ::inet_pton(AF_INET, name.c_str(), &a4) == 1;
}

// -- responses ---------------------------------------------------------------------------

const char* reason(int status) noexcept {
  switch (status) {
    case 400:
      return "bad request";
    case 403:
      return "forbidden";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 413:
      return "payload too large";
    case 414:
      return "uri too long";
    case 416:
      return "range not satisfiable";
    case 417:
      return "expectation failed";
    case 500:
      return "internal error";
    case 503:
      return "busy";
    default:
      return "error";
  }
}

// Every JSON body goes through here: invalid UTF-8 (in a path a client
// sent, say) is replaced rather than thrown on.
std::string dump(const json& doc, int indent = -1) {
  return doc.dump(indent, ' ', false, json::error_handler_t::replace);
}

void set_json_error(httplib::Response& res, int status, json extra = {}) {
  json body = {{"error", reason(status)}};
  if (extra.is_object())
    body.update(extra);
  res.status = status;
  res.set_content(dump(body), "application/json");
}

// -- worker_pool ---------------------------------------------------------------------------

/// A fixed set of threads and a bounded queue of connections (see the
/// comment at the top of this file).
class worker_pool final : public httplib::TaskQueue {
public:
  worker_pool(size_t threads, size_t max_queued)
    : max_queued_(max_queued), idle_(threads) {
    // A thread counts as idle from the start, not from when it first waits:
    // a connection arriving before the threads got scheduled is queued for
    // them rather than refused.
    threads_.reserve(threads);
    for (size_t i = 0; i < threads; ++i)
      threads_.emplace_back([this] { work(); });
  }

  ~worker_pool() override {
    shutdown();
  }

  /// Called by the listener thread for each accepted connection; never
  /// blocks. When every thread is busy and the queue is full, runs `fn`
  /// right here with `t_refuse` set: the connection loop then only writes a
  /// 503 (non-blocking) and closes.
  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (!stopped_ && jobs_.size() < max_queued_ + idle_) {
        jobs_.push_back(std::move(fn));
        cv_.notify_one();
        return;
      }
    }
    t_refuse = true;
    run(fn);
    t_refuse = false;
  }

  /// Lets the threads finish the queue (each job ends quickly once the
  /// endpoint is stopping), then joins them. Idempotent.
  void shutdown() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopped_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }

private:
  static void run(std::function<void()>& fn) noexcept {
    try {
      fn();
    } catch (...) {
      // httplib catches what handlers throw; this is the last line against
      // std::bad_alloc out of the connection loop: drop the connection.
    }
  }

  void work() {
    pthread_setname_np(pthread_self(), "mayfly-http");
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      cv_.wait(lock, [this] { return stopped_ || !jobs_.empty(); });
      if (jobs_.empty())
        return; // stopped and drained
      auto fn = std::move(jobs_.front());
      jobs_.pop_front();
      --idle_;
      lock.unlock();
      run(fn);
      fn = nullptr;
      lock.lock();
      ++idle_;
    }
  }

  size_t max_queued_;
  std::vector<std::thread> threads_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_; // mtx_
  size_t idle_;                            // mtx_: threads not running a job
  bool stopped_ = false;                   // mtx_
};

// -- connection ------------------------------------------------------------------------------

/// One client connection as an httplib stream: buffered reads with a
/// per-request deadline and byte budget, writes with a deadline, and every
/// wait cut short by the endpoint's stop eventfd. Used by one pool thread.
class connection final : public httplib::Stream {
public:
  connection(core& c, int fd) noexcept : core_(c), fd_(fd) {
  }

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  using httplib::Stream::write;

  bool is_readable() const override {
    return pos_ < len_ || wait(POLLIN, read_deadline_) > 0;
  }

  bool is_writable() const override {
    return wait(POLLOUT, now_ms() + core_.limits.request_timeout_ms) > 0;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == len_ && !fill())
      return read_eof_ ? 0 : -1;
    auto n = std::min(size, len_ - pos_);
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (write_failed_)
      return -1;
    if (write_deadline_ == 0)
      write_deadline_ = now_ms() + core_.limits.request_timeout_ms;
    count_response(ptr, size);
    size_t done = 0;
    while (done < size) {
      auto n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        done += static_cast<size_t>(n);
        core_.counters.add(bytes_out, n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        auto w = wait(POLLOUT, write_deadline_);
        if (w > 0)
          continue;
        if (w == 0)
          core_.counters.add(timeouts);
      }
      write_failed_ = true;
      break;
    }
    return done > 0 ? static_cast<ssize_t>(done) : -1;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
      ss.ss_family = AF_UNSPEC;
    split_address(ss, ip, port);
  }

  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
      ss.ss_family = AF_UNSPEC;
    split_address(ss, ip, port);
  }

  socket_t socket() const override {
    return fd_;
  }

  /// Waits up to `timeout_ms` for the next request to start (or for the
  /// client to hang up, which the read then reports).
  bool wait_for_request(int64_t timeout_ms) const {
    return pos_ < len_ || wait(POLLIN, now_ms() + timeout_ms) > 0;
  }

  /// Fresh deadlines and budget for the request that starts now.
  void begin_request() noexcept {
    read_deadline_ = now_ms() + core_.limits.request_timeout_ms;
    write_deadline_ = 0;
    budget_ = core_.limits.max_request_bytes;
  }

  /// The response being built is the last on this connection.
  void close_after() noexcept {
    close_after_ = true;
  }

  /// Whether the connection must not serve another request.
  bool done() const noexcept {
    return close_after_ || read_failed_ || read_eof_ || write_failed_;
  }

  /// Closes gracefully: FIN first, then reads and discards what the client
  /// still sends (at most 64 KiB and 200 ms), so that the close does not
  /// reset the connection before the client has read the last response
  /// (Apache's "lingering close").
  void linger_and_close() noexcept {
    ::shutdown(fd_, SHUT_WR);
    auto deadline = now_ms() + 200;
    size_t left = 64 * 1024;
    while (left > 0 && wait(POLLIN, deadline) > 0) {
      auto n = ::recv(fd_, buf_, std::min(sizeof(buf_), left), MSG_DONTWAIT);
      if (n <= 0 && !(n < 0 && errno == EINTR))
        break;
      if (n > 0)
        left -= static_cast<size_t>(n);
    }
    ::close(fd_);
    fd_ = -1;
  }

private:
  /// Counts a response when httplib writes its status line (it writes the
  /// line and the headers in one call, the body in others): before the
  /// client can see the response, so a client reading the statistics next
  /// finds its previous request counted. Interim 1xx responses are not.
  void count_response(const char* ptr, size_t size) noexcept {
    if (size < 12 || std::memcmp(ptr, "HTTP/1.", 7) != 0 || ptr[8] != ' ')
      return;
    int status = 0;
    for (size_t i = 9; i < 12; ++i) {
      if (ptr[i] < '0' || ptr[i] > '9')
        return;
      status = status * 10 + (ptr[i] - '0');
    }
    if (status < 200)
      return;
    core_.counters.add(requests);
    core_.counters.count_status(status);
    // After these, what remains in the stream is not known to be a request
    // boundary (a request line that did not parse, a body not read): the
    // response is the connection's last.
    if (status == 400 || status == 408 || status == 413 || status == 414
        || status == 417 || status == 431 || status >= 500)
      close_after_ = true;
  }

  /// Refills the buffer; false on EOF (read_eof_), error, deadline, budget
  /// or stop (read_failed_).
  bool fill() {
    if (read_failed_ || read_eof_)
      return false;
    if (budget_ == 0) {
      core_.counters.add(oversize);
      read_failed_ = true;
      return false;
    }
    for (;;) {
      auto w = wait(POLLIN, read_deadline_);
      if (w <= 0) {
        if (w == 0)
          core_.counters.add(timeouts);
        read_failed_ = true;
        return false;
      }
      auto n = ::recv(fd_, buf_, std::min(sizeof(buf_), budget_), MSG_DONTWAIT);
      if (n > 0) {
        budget_ -= static_cast<size_t>(n);
        core_.counters.add(bytes_in, n);
        pos_ = 0;
        len_ = static_cast<size_t>(n);
        return true;
      }
      if (n == 0) {
        read_eof_ = true;
        return false;
      }
      if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
        read_failed_ = true;
        return false;
      }
    }
  }

  /// Polls the socket for `events` and the stop eventfd until `deadline`:
  /// 1 ready (or hung up: the next call says how), 0 deadline, -1 stopping
  /// or error.
  int wait(short events, int64_t deadline) const {
    for (;;) {
      auto left = deadline - now_ms();
      if (left <= 0)
        return 0;
      pollfd fds[2] = {{fd_, events, 0}, {core_.stop_fd, POLLIN, 0}};
      auto rc = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
      if (rc < 0 && errno != EINTR)
        return -1;
      if (rc <= 0)
        continue;
      if (fds[1].revents != 0)
        return -1;
      if (fds[0].revents & POLLNVAL)
        return -1;
      return 1;
    }
  }

  core& core_;
  int fd_;
  char buf_[4096];
  size_t pos_ = 0;
  size_t len_ = 0;
  size_t budget_ = 0;
  int64_t read_deadline_ = 0;
  int64_t write_deadline_ = 0; // 0: no response started
  bool read_failed_ = false;
  bool read_eof_ = false;
  bool write_failed_ = false;
  bool close_after_ = false;
};

// -- http_server -----------------------------------------------------------------------------

/// httplib's server with mayfly's connection loop (see top of file).
class http_server final : public httplib::Server {
public:
  explicit http_server(core& c) noexcept : core_(c) {
  }

  /// The listening socket, or -1.
  int listener() const noexcept {
    return svr_sock_.load();
  }

  /// Makes the accept loop end at its next check: the listening socket is
  /// forgotten here (the caller shuts it down to wake `accept`).
  void forget_listener() noexcept {
    svr_sock_.store(INVALID_SOCKET);
  }

private:
  // Called by httplib for each accepted connection, on a pool thread (or on
  // the listener thread with t_refuse set, see worker_pool::enqueue).
  bool process_and_close_socket(socket_t sock) override {
    auto& counters = core_.counters;
    counters.add(connections);
    ::fcntl(sock, F_SETFD, FD_CLOEXEC);
    if (t_refuse || core_.stopping.load(std::memory_order_acquire)) {
      if (t_refuse)
        refuse(sock);
      ::close(sock);
      return true;
    }
    int one = 1;
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    counters.live.fetch_add(1, std::memory_order_relaxed);
    connection conn{core_, sock};
    t_connection = &conn;
    auto& lim = core_.limits;
    for (uint32_t n = 0; n < lim.keep_alive_max; ++n) {
      auto idle = n == 0 ? lim.request_timeout_ms : lim.keep_alive_timeout_ms;
      if (core_.stopping.load(std::memory_order_acquire)
          || !conn.wait_for_request(idle))
        break;
      conn.begin_request();
      bool closed = false;
      bool ok = false;
      try {
        ok = process_request(conn, n + 1 == lim.keep_alive_max, closed,
                             nullptr);
      } catch (...) {
        ok = false; // bad_alloc inside httplib: drop the connection
      }
      if (!ok || closed || conn.done())
        break;
    }
    t_connection = nullptr;
    conn.linger_and_close();
    counters.live.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }

  /// 503 without reading the request, without blocking (a full socket
  /// buffer just loses it: the client sees the connection closed).
  void refuse(int sock) noexcept {
    static constexpr char kBusy[]
      = "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 16\r\n"
        "Retry-After: 1\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n"
        "\r\n"
        "{\"error\":\"busy\"}";
    auto n = ::send(sock, kBusy, sizeof(kBusy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    core_.counters.add(rejected);
    core_.counters.count_status(503);
    if (n > 0)
      core_.counters.add(bytes_out, n);
    ::shutdown(sock, SHUT_WR);
  }

  core& core_;
};

/// Connections the kernel completes before the listener accepts them.
constexpr int kListenBacklog = 64;

// Applied by httplib to the listening socket: SO_REUSEADDR (restart while
// old connections linger in TIME_WAIT) but not httplib's default
// SO_REUSEPORT, which would let a second endpoint, or another process of the
// same user, bind the same port and take a share of the connections.
void listener_options(socket_t sock) {
  int one = 1;
  ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::fcntl(sock, F_SETFD, FD_CLOEXEC);
}

} // namespace

// -- stats_endpoint::state ----------------------------------------------------------------

struct stats_endpoint::state {
  explicit state(runtime& rt, const stats_endpoint_limits& limits)
    : server(shared) {
    shared.rt = &rt;
    shared.limits = limits;
  }

  ~state() {
    if (shared.stop_fd >= 0)
      ::close(shared.stop_fd);
  }

  void configure();
  bool bind(const std::string& host, int port);
  void run() noexcept;
  void stop() noexcept;

  core shared;
  http_server server;
  std::string host;
  int port = 0;
  std::thread listener;

  std::mutex mtx; // guards the fields below and binding against stop()
  /// The listening socket as httplib holds it (-1 once httplib closed it
  /// itself after a failed accept), and a duplicate of it that only this
  /// object uses: shutting the duplicate down wakes `accept` without ever
  /// touching a descriptor number httplib might have closed and the process
  /// reused.
  int listen_fd = -1;
  int listen_dup = -1;
  bool stopped = false;
};

void stats_endpoint::state::configure() {
  auto& s = server;
  auto& lim = shared.limits;
  auto* c = &shared;
  s.set_socket_options(listener_options);
  s.set_tcp_nodelay(true);
  // Applied by httplib to accepted sockets (SO_RCVTIMEO/SO_SNDTIMEO) and in
  // the Keep-Alive response header; our connection loop enforces the real
  // limits.
  auto secs = [](uint32_t ms) { return static_cast<time_t>((ms + 999) / 1000); };
  s.set_read_timeout(secs(lim.request_timeout_ms), 0);
  s.set_write_timeout(secs(lim.request_timeout_ms), 0);
  s.set_keep_alive_timeout(secs(lim.keep_alive_timeout_ms));
  s.set_keep_alive_max_count(lim.keep_alive_max);
  s.set_payload_max_length(lim.max_request_bytes);
  s.set_default_headers({{"Cache-Control", "no-store"},
                         {"X-Content-Type-Options", "nosniff"}});
  s.new_task_queue = [c]() -> httplib::TaskQueue* {
    // httplib takes ownership of the raw pointer (its API) and deletes it
    // after shutdown().
    return std::make_unique<worker_pool>(c->limits.threads,
                                         c->limits.max_queued)
      .release();
  };
  s.set_pre_routing_handler(
    [c](const httplib::Request& req, httplib::Response& res) {
      using hr = httplib::Server::HandlerResponse;
      // A GET with a body: httplib does not read it, so the connection
      // cannot carry another request.
      bool has_body = req.has_header("Transfer-Encoding")
                      || req.get_header_value<uint64_t>("Content-Length") > 0;
      if (has_body && t_connection != nullptr)
        t_connection->close_after();
      if (c->loopback && !host_allowed(req.get_header_value("Host"))) {
        set_json_error(res, 403, {{"reason", "Host must be an IP address or "
                                             "localhost (DNS rebinding)"}});
        return hr::Handled;
      }
      if (req.method != "GET" && req.method != "HEAD") {
        // Any body is left unread: this response is the connection's last.
        if (t_connection != nullptr)
          t_connection->close_after();
        res.set_header("Allow", "GET, HEAD");
        res.set_header("Connection", "close");
        set_json_error(res, 405, {{"method", req.method}});
        return hr::Handled;
      }
      return hr::Unhandled;
    });
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    auto page = stats_page_html();
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; "
                   "style-src 'unsafe-inline'; connect-src 'self'; "
                   "img-src data:; base-uri 'none'; form-action 'none'; "
                   "frame-ancestors 'none'");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  s.Get("/stats", [c](const httplib::Request& req, httplib::Response& res) {
    auto doc = c->rt->collect_stats();
    if (req.has_param("pretty"))
      res.set_content(dump(doc, 2) + "\n", "application/json");
    else
      res.set_content(dump(doc), "application/json");
  });
  s.Get("/metrics", [c](const httplib::Request&, httplib::Response& res) {
    res.set_content(to_prometheus(c->rt->collect_stats()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  // (Spelled as HandlerWithResponse: a lambda alone is ambiguous between
  // the two overloads.)
  s.set_error_handler(httplib::Server::HandlerWithResponse{
    [](const httplib::Request& req, httplib::Response& res) {
    using hr = httplib::Server::HandlerResponse;
    if (!res.body.empty())
      return hr::Unhandled; // ours already
    json extra = json::object();
    if (res.status == 404)
      extra["path"] = req.path.substr(0, 256);
    set_json_error(res, res.status, std::move(extra));
    return hr::Handled;
  }});
  s.set_exception_handler(
    [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      // Never the exception's text: it is nobody's business outside.
      set_json_error(res, 500);
    });
}

bool stats_endpoint::state::bind(const std::string& bind_host, int bind_port) {
  errno = 0;
  if (!server.bind_to_port(bind_host, bind_port))
    return false;
  listen_fd = server.listener();
  listen_dup = ::fcntl(listen_fd, F_DUPFD_CLOEXEC, 0);
  // httplib listens with a backlog of 5 (compiled into Debian's library): a
  // burst of connections (a browser opening several, a test) then waits
  // for SYN retransmits, a second each. Calling listen() again on a
  // listening socket sets a new backlog (Linux). Refusal stays our job
  // (worker_pool), not the kernel's.
  ::listen(listen_fd, kListenBacklog);
  return true;
}

// The listener thread: httplib's accept loop, restarted should it end on
// its own (accept failing for lack of memory or descriptors, or EINTR,
// which httplib 0.11 treats as fatal), until stop().
void stats_endpoint::state::run() noexcept {
  pthread_setname_np(pthread_self(), "mayfly-http-ls");
  for (;;) {
    bool clean = server.listen_after_bind();
    std::unique_lock<std::mutex> lock{mtx};
    if (stopped)
      return;
    // Not asked to stop: httplib closed the listening socket itself.
    if (!clean)
      listen_fd = -1;
    if (listen_dup >= 0)
      ::close(listen_dup);
    listen_dup = -1;
    shared.counters.add(listener_restarts);
    lock.unlock();
    pollfd p{shared.stop_fd, POLLIN, 0};
    ::poll(&p, 1, 100); // back off; stop() cuts it short
    lock.lock();
    if (stopped)
      return;
    if (listen_fd >= 0) // clean exit without stop(): should not happen
      ::close(listen_fd);
    listen_fd = -1;
    if (!bind(host, port))
      server.forget_listener(); // listen_after_bind returns at once; retry
  }
}

void stats_endpoint::state::stop() noexcept {
  {
    std::lock_guard<std::mutex> guard{mtx};
    if (stopped)
      return;
    stopped = true;
    shared.stopping.store(true, std::memory_order_release);
    uint64_t one = 1;
    [[maybe_unused]] auto rc = ::write(shared.stop_fd, &one, sizeof(one));
    server.forget_listener();
    if (listen_dup >= 0)
      ::shutdown(listen_dup, SHUT_RDWR); // wakes accept() (Linux)
  }
  if (listener.joinable())
    listener.join();
  std::lock_guard<std::mutex> guard{mtx};
  if (listen_fd >= 0)
    ::close(listen_fd);
  if (listen_dup >= 0)
    ::close(listen_dup);
  listen_fd = listen_dup = -1;
}

// -- stats_endpoint ----------------------------------------------------------------------------

namespace {

result<bool> check_limits(const stats_endpoint_limits& l) {
  auto bad = [](const char* field) {
    return error_info{errc::invalid_config, "value out of range", 0,
                      std::string{"stats."} + field};
  };
  if (l.threads < 1 || l.threads > 64)
    return bad("threads");
  if (l.max_queued > 1024)
    return bad("max_queued");
  if (l.request_timeout_ms == 0)
    return bad("request_timeout_ms");
  if (l.keep_alive_timeout_ms == 0)
    return bad("keep_alive_timeout_ms");
  if (l.keep_alive_max == 0)
    return bad("keep_alive_max");
  if (l.max_request_bytes < 1024 || l.max_request_bytes > (1u << 20))
    return bad("max_request_bytes");
  return true;
}

} // namespace

result<stats_config> parse_stats_config(const nlohmann::json& doc,
                                        stats_config cfg) {
  config_reader top{doc, ""};
  const auto& section = top.object("stats");
  if (!top.ok())
    return top.error();
  config_reader r{section, "stats"};
  std::string address;
  auto& l = cfg.limits;
  r.only({"address", "threads", "max_queued", "request_timeout_ms",
          "keep_alive_timeout_ms", "keep_alive_max", "max_request_bytes"})
    .read("address", address)
    .read("threads", l.threads)
    .read("max_queued", l.max_queued)
    .read("request_timeout_ms", l.request_timeout_ms)
    .read("keep_alive_timeout_ms", l.keep_alive_timeout_ms)
    .read("keep_alive_max", l.keep_alive_max)
    .read("max_request_bytes", l.max_request_bytes);
  if (!r.ok())
    return r.error();
  if (auto ok = check_limits(l); !ok)
    return ok.error();
  if (!address.empty()) {
    auto at = udp_address::parse(address);
    if (!at) {
      error_info err = at.error();
      err.subject = "stats.address";
      return err;
    }
    cfg.address = *at;
  }
  return cfg;
}

stats_endpoint::stats_endpoint(runtime& rt, const stats_endpoint_limits& limits)
  : state_(std::make_unique<state>(rt, limits)) {
}

result<stats_endpoint*> stats_endpoint::open(runtime& rt,
                                             const udp_address& address) {
  return open(rt, address, stats_endpoint_limits{});
}

result<stats_endpoint*> stats_endpoint::open(runtime& rt,
                                             const udp_address& address,
                                             const stats_endpoint_limits& limits) {
  if (auto ok = check_limits(limits); !ok)
    return ok.error();
  if (address.family() != AF_INET && address.family() != AF_INET6) {
    error_info err{errc::invalid_address, "not an IPv4 or IPv6 address", 0,
                   "stats endpoint"};
    return err;
  }
  std::unique_ptr<stats_endpoint> ep{new stats_endpoint(rt, limits)};
  auto& st = *ep->state_;
  st.shared.stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (st.shared.stop_fd < 0) {
    error_info err{errc::system_error, "eventfd failed", errno,
                   address.to_string()};
    return err;
  }
  st.configure();
  if (!st.bind(host_of(address), address.port())) {
    auto code = errno;
    error_info err{errc::system_error, "cannot bind the stats endpoint",
                   code, address.to_string()};
    return err;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(st.listen_fd, reinterpret_cast<sockaddr*>(&ss), &len)
      != 0) {
    error_info err{errc::system_error, "getsockname failed", errno,
                   address.to_string()};
    return err; // ~stats_endpoint closes the socket
  }
  ep->local_ = udp_address{reinterpret_cast<sockaddr*>(&ss), len};
  st.host = host_of(ep->local_);
  st.port = ep->local_.port();
  st.shared.loopback = is_loopback(ep->local_);
  st.listener = std::thread{[s = &st] { s->run(); }};
  auto* ptr = ep.get();
  rt.attach(std::move(ep));
  return ptr;
}

stats_endpoint::~stats_endpoint() {
  close();
}

std::string stats_endpoint::name() const {
  std::string n{"http:"};
  return n.append(local_.to_string());
}

void stats_endpoint::stop_receiving() noexcept {
  // Keep serving while the runtime drains its handlers: the figures of a
  // shutdown are worth watching. close() stops the server.
}

void stats_endpoint::close() noexcept {
  state_->stop();
}

nlohmann::json stats_endpoint::stats() const {
  auto& c = state_->shared.counters;
  auto responses = json::object();
  for (size_t i = 0; i < kNumCodes; ++i)
    responses[std::to_string(kCodes[i])]
      = c.codes[i].load(std::memory_order_relaxed);
  responses["other"] = c.codes[kNumCodes].load(std::memory_order_relaxed);
  return {
    {"address", local_.to_string()},
    {"threads", state_->shared.limits.threads},
    {"connections", c.get(connections)},
    {"connections_live", c.live.load(std::memory_order_relaxed)},
    {"rejected", c.get(rejected)},
    {"timeouts", c.get(timeouts)},
    {"oversize", c.get(oversize)},
    {"requests", c.get(requests)},
    {"responses", std::move(responses)},
    {"bytes_in", c.get(bytes_in)},
    {"bytes_out", c.get(bytes_out)},
    {"listener_restarts", c.get(listener_restarts)},
  };
}

} // namespace mayfly

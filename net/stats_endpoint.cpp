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

// How this file uses cpp-httplib. Its `Server` accepts connections, parses
// requests, routes them and writes responses; mayfly replaces what happens
// to a connection between accept and parse, through two extension points of
// its public header:
//
// - The task queue (`Server::new_task_queue`) and the connection loop
//   (`process_and_close_socket`, virtual). httplib gives each connection a
//   thread from accept to close and reads with a timeout *per read call*:
//   a client sending a header byte a second holds a thread as long as it
//   likes, and a handful of them deny every other client (issue 18). Here
//   the accept loop only hands the socket to the `reception`: one thread
//   that polls every connection waiting for a request head, without
//   blocking, under a deadline and a byte budget per request, and bounds
//   their number (`max_connections`, beyond: 503). Only a connection whose
//   head is whole goes to a `worker_pool` thread, which calls httplib's
//   `process_request` on it (a `connection` stream: the head from memory,
//   writes with a deadline, every wait also polling an eventfd that
//   `close()` signals) and gives a kept-alive connection back to the
//   reception. So slow clients cost descriptors and bounded memory, never
//   threads.
//
// Nothing else of httplib's internals is relied on.
//
// Why not libmicrohttpd (Debian's libmicrohttpd-dev), which is event-driven
// by design: its MHD_OPTION_CONNECTION_TIMEOUT is an *inactivity* timeout
// in whole seconds, so a client sending a byte a second is never cut; the
// responses it writes itself (malformed requests, 413/414/431, the
// connection limit, which it answers by closing) carry its own HTML bodies
// and reach no counter of ours, so the endpoint's contract (JSON errors,
// 503 with Retry-After, every response counted by status, bytes in and out)
// would need as much code around it as the reception here. Reconsider if
// its timeouts gain a per-request deadline.

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

class reception;

/// What the listener, the pool threads and the handlers share.
struct core {
  runtime* rt = nullptr;
  stats_endpoint_limits limits;
  /// Host names accepted besides IP literals and localhost (lower case,
  /// no trailing dot).
  std::vector<std::string> allowed_hosts;
  /// An eventfd, readable from `close()` on: every wait polls it.
  int stop_fd = -1;
  std::atomic<bool> stopping{false};
  http_counters counters;
  /// Where connections wait for a request head (set before serving starts).
  reception* rx = nullptr;
};

class connection;

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

/// A host name lower-cased, without a trailing dot.
std::string normalized_name(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  if (!name.empty() && name.back() == '.')
    name.pop_back();
  return name;
}

/// Whether a `Host` value (one header, present) may reach the endpoint,
/// whatever address it is bound to: an IP literal, `localhost`, or one of
/// `allowed` (normalized). A DNS-rebinding page reaches the endpoint only
/// through a name it controls, which this refuses; a browser that sends an
/// IP literal treats it as the origin, so the same-origin policy already
/// keeps other pages out. Wildcard binds included: a service bound to
/// 0.0.0.0 is no less reachable from a local browser.
bool host_allowed(const std::string& host,
                  const std::vector<std::string>& allowed) {
  if (host.empty())
    return false;
  if (host.front() == '[') {
    auto end = host.find(']');
    if (end == std::string::npos)
      return false;
    auto rest = host.substr(end + 1);
    if (!rest.empty() && rest.front() != ':')
      return false;
    auto ip = host.substr(1, end - 1);
    in6_addr a6;
    return ::inet_pton(AF_INET6, ip.c_str(), &a6) == 1;
  }
  auto name = normalized_name(host.substr(0, host.rfind(':')));
  if (name == "localhost")
    return true;
  in_addr a4;
  if (::inet_pton(AF_INET, name.c_str(), &a4) == 1)
    return true;
  return std::find(allowed.begin(), allowed.end(), name) != allowed.end();
}

/// Whether `name` may be listed in `allowed_hosts`: a DNS name (letters,
/// digits, '-', '.'; at most 253 characters).
bool valid_host_name(const std::string& name) {
  if (name.empty() || name.size() > 253)
    return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.';
  });
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

// -- connection ------------------------------------------------------------------------------

/// One client connection: its socket, the bytes received and not yet
/// consumed, the current request's deadline and byte budget.
///
/// Two owners in turn, never at once (a `std::unique_ptr` is handed over):
/// the reception thread while the connection waits for a whole request head
/// (non-blocking reads, `receive()`), then a pool thread that lets httplib
/// parse, route and answer it (this class is then httplib's stream:
/// buffered reads, writes with a deadline, every wait cut short by the
/// endpoint's stop eventfd). Closes its socket when destroyed.
class connection final : public httplib::Stream {
public:
  /// What `receive()` found.
  enum class progress {
    waiting, ///< no whole head yet: poll again
    ready,   ///< a pool thread can serve it (see `receive()`)
    closed,  ///< nothing to serve: drop it
  };

  connection(core& c, int fd) noexcept
    : core_(c),
      fd_(fd),
      budget_(c.limits.max_request_bytes),
      idle_deadline_(now_ms() + c.limits.request_timeout_ms) {
    core_.counters.live.fetch_add(1, std::memory_order_relaxed);
  }

  ~connection() override {
    if (fd_ >= 0)
      ::close(fd_);
    core_.counters.live.fetch_sub(1, std::memory_order_relaxed);
  }

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  using httplib::Stream::write;

  int fd() const noexcept {
    return fd_;
  }

  // -- reception side ---------------------------------------------------------

  /// When the reception cuts the connection: `request_timeout_ms` after the
  /// request's first byte; before any byte, the idle deadline (accept +
  /// `request_timeout_ms`, or the last response + `keep_alive_timeout_ms`).
  int64_t deadline() const noexcept {
    return request_deadline_ != 0 ? request_deadline_ : idle_deadline_;
  }

  /// Whether a byte of the current request has arrived (a connection cut
  /// before that merely idled out: not counted as a timeout).
  bool started() const noexcept {
    return request_deadline_ != 0;
  }

  /// Reads what the socket holds without blocking. `ready` once a whole
  /// request head is buffered, and also when the byte budget is spent or the
  /// client hung up after sending something: httplib then answers that
  /// (400) or the connection closes, on a pool thread as any request.
  /// Throws only std::bad_alloc (growing the buffer).
  progress receive() {
    for (;;) {
      if (budget_ == 0)
        return progress::ready;
      char chunk[4096];
      auto n = ::recv(fd_, chunk, std::min(sizeof(chunk), budget_),
                      MSG_DONTWAIT);
      if (n > 0) {
        take(chunk, static_cast<size_t>(n));
        if (has_head())
          return progress::ready;
        continue;
      }
      if (n == 0) {
        read_eof_ = true;
        return pos_ < in_.size() ? progress::ready : progress::closed;
      }
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return progress::waiting;
      read_failed_ = true;
      return progress::closed;
    }
  }

  /// Whether the buffer holds a whole request head: an empty line ends it
  /// ("\n\n" or "\n\r\n": httplib also accepts bare LF line ends). Scans
  /// each byte about once.
  bool has_head() noexcept {
    size_t i = std::max(scanned_, pos_);
    for (; i + 1 < in_.size(); ++i) {
      if (in_[i] != '\n')
        continue;
      if (in_[i + 1] == '\n')
        return true;
      if (in_[i + 1] == '\r' && i + 2 < in_.size() && in_[i + 2] == '\n')
        return true;
    }
    scanned_ = in_.size() >= 2 ? in_.size() - 2 : 0;
    return false;
  }

  // -- pool thread side -------------------------------------------------------

  /// Requests answered on this connection so far.
  uint32_t served() const noexcept {
    return served_;
  }

  /// After a response: drops what the request consumed; what the client
  /// already sent of the next one stays. Budget and deadlines start afresh.
  void next_request() noexcept {
    in_.erase(0, pos_);
    pos_ = 0;
    scanned_ = 0;
    ++served_;
    auto& lim = core_.limits;
    budget_ = in_.size() < lim.max_request_bytes
                ? lim.max_request_bytes - in_.size()
                : 0;
    write_deadline_ = 0;
    auto now = now_ms();
    idle_deadline_ = now + lim.keep_alive_timeout_ms;
    request_deadline_ = in_.empty() ? 0 : now + lim.request_timeout_ms;
  }

  bool is_readable() const override {
    return pos_ < in_.size() || (!read_eof_ && wait(POLLIN, deadline()) > 0);
  }

  bool is_writable() const override {
    return wait(POLLOUT, now_ms() + core_.limits.request_timeout_ms) > 0;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == in_.size() && !fill())
      return read_eof_ ? 0 : -1;
    auto n = std::min(size, in_.size() - pos_);
    std::memcpy(ptr, in_.data() + pos_, n);
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
    char sink[4096];
    while (left > 0 && wait(POLLIN, deadline) > 0) {
      auto n = ::recv(fd_, sink, std::min(sizeof(sink), left), MSG_DONTWAIT);
      if (n <= 0 && !(n < 0 && errno == EINTR))
        break;
      if (n > 0)
        left -= static_cast<size_t>(n);
    }
    ::close(fd_);
    fd_ = -1;
  }

private:
  /// Appends received bytes; the request's deadline starts at its first.
  void take(const char* bytes, size_t n) {
    if (request_deadline_ == 0)
      request_deadline_ = now_ms() + core_.limits.request_timeout_ms;
    if (pos_ == in_.size()) { // all consumed: reuse the buffer from its start
      in_.clear();
      pos_ = 0;
      scanned_ = 0;
    }
    in_.append(bytes, n);
    budget_ -= n;
    core_.counters.add(bytes_in, static_cast<int64_t>(n));
  }

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

  /// Blocking refill on a pool thread (httplib reading past what the
  /// reception gathered: a body); false on EOF (read_eof_), error,
  /// deadline, budget or stop (read_failed_).
  bool fill() {
    if (read_failed_ || read_eof_)
      return false;
    if (budget_ == 0) {
      core_.counters.add(oversize);
      read_failed_ = true;
      return false;
    }
    for (;;) {
      auto w = wait(POLLIN, deadline());
      if (w <= 0) {
        if (w == 0)
          core_.counters.add(timeouts);
        read_failed_ = true;
        return false;
      }
      char chunk[4096];
      auto n = ::recv(fd_, chunk, std::min(sizeof(chunk), budget_),
                      MSG_DONTWAIT);
      if (n > 0) {
        take(chunk, static_cast<size_t>(n));
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
  std::string in_;      ///< received, from pos_ on not yet consumed
  size_t pos_ = 0;      ///< consumed by httplib
  size_t scanned_ = 0;  ///< has_head() looked at in_ before this
  size_t budget_;       ///< bytes the current request may still bring
  int64_t idle_deadline_;
  int64_t request_deadline_ = 0; ///< 0: no byte of the request yet
  int64_t write_deadline_ = 0;   ///< 0: no response started
  uint32_t served_ = 0;
  bool read_failed_ = false;
  bool read_eof_ = false;
  bool write_failed_ = false;
  bool close_after_ = false;
};

using connection_ptr = std::unique_ptr<connection>;

/// 503 without reading the request, without blocking (a full socket buffer
/// just loses it: the client sees the connection closed). The caller
/// closes the socket.
void refuse(core& c, int sock) noexcept {
  static constexpr char kBusy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Content-Length: 16\r\n"
                                  "Retry-After: 1\r\n"
                                  "Cache-Control: no-store\r\n"
                                  "Connection: close\r\n"
                                  "\r\n"
                                  "{\"error\":\"busy\"}";
  auto n = ::send(sock, kBusy, sizeof(kBusy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  c.counters.add(rejected);
  c.counters.count_status(503);
  if (n > 0)
    c.counters.add(bytes_out, n);
  ::shutdown(sock, SHUT_WR);
}

// -- worker_pool ---------------------------------------------------------------------------

/// A fixed set of threads and a bounded queue of connections whose request
/// head is complete: a pool thread never waits for a client to send one.
class worker_pool {
public:
  using serve_fn = std::function<void(connection_ptr)>;

  worker_pool(size_t threads, size_t max_queued, serve_fn serve)
    : max_queued_(max_queued), idle_(threads), serve_(std::move(serve)) {
    // A thread counts as idle from the start, not from when it first waits:
    // a connection arriving before the threads got scheduled is queued for
    // them rather than refused.
    threads_.reserve(threads);
    for (size_t i = 0; i < threads; ++i)
      threads_.emplace_back([this] { work(); });
  }

  ~worker_pool() {
    shutdown();
  }

  /// Queues `conn` for a pool thread; never blocks. False (and `conn` left
  /// with the caller) when every thread is busy and the queue is full, or
  /// after shutdown.
  bool submit(connection_ptr& conn) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (stopped_ || jobs_.size() >= max_queued_ + idle_)
        return false;
      jobs_.push_back(std::move(conn));
    }
    cv_.notify_one();
    return true;
  }

  /// Lets the threads finish the queue (each job ends quickly once the
  /// endpoint is stopping), then joins them. Idempotent.
  void shutdown() {
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
  void work() {
    pthread_setname_np(pthread_self(), "mayfly-http");
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      cv_.wait(lock, [this] { return stopped_ || !jobs_.empty(); });
      if (jobs_.empty())
        return; // stopped and drained
      auto conn = std::move(jobs_.front());
      jobs_.pop_front();
      --idle_;
      lock.unlock();
      try {
        serve_(std::move(conn));
      } catch (...) {
        // httplib catches what handlers throw; this is the last line
        // against std::bad_alloc: the connection is dropped.
      }
      lock.lock();
      ++idle_;
    }
  }

  size_t max_queued_;
  std::vector<std::thread> threads_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<connection_ptr> jobs_; // mtx_
  size_t idle_;                     // mtx_: threads not serving
  bool stopped_ = false;            // mtx_
  serve_fn serve_;
};

// -- reception -----------------------------------------------------------------------------

/// One thread that holds every connection waiting for a request head (new
/// ones from the listener, kept-alive ones from the pool threads), reads
/// them without blocking in one `poll` loop, cuts those past their deadline
/// and hands each whole head to `on_ready`. So a slow client costs a
/// descriptor and at most `max_request_bytes` of buffer, never a thread;
/// `max_connections` bounds how many there are.
class reception {
public:
  using ready_fn = std::function<void(connection_ptr)>;

  reception(core& c, ready_fn on_ready)
    : core_(c), on_ready_(std::move(on_ready)) {
  }

  ~reception() {
    stop();
    if (wake_fd_ >= 0)
      ::close(wake_fd_);
  }

  /// Starts the thread; false if no eventfd is available (errno set).
  bool start() {
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0)
      return false;
    thread_ = std::thread{[this] { run(); }};
    return true;
  }

  /// Takes `conn` to wait for its next request; any thread, never blocks.
  /// After `stop()`, leaves it with the caller (who drops it).
  bool admit(connection_ptr& conn) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (stopped_)
        return false;
      inbox_.push_back(std::move(conn));
    }
    uint64_t one = 1;
    [[maybe_unused]] auto rc = ::write(wake_fd_, &one, sizeof(one));
    return true;
  }

  /// Joins the thread (which ends once the stop eventfd is signalled) and
  /// closes every waiting connection. Idempotent.
  void stop() {
    std::vector<connection_ptr> dropped;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopped_ = true;
      dropped.swap(inbox_);
    }
    if (thread_.joinable())
      thread_.join();
  }

private:
  void run() noexcept {
    pthread_setname_np(pthread_self(), "mayfly-http-rx");
    std::vector<connection_ptr> waiting;
    std::vector<pollfd> fds;
    for (;;) {
      {
        std::lock_guard<std::mutex> guard{mtx_};
        for (auto& c : inbox_)
          waiting.push_back(std::move(c));
        inbox_.clear();
      }
      fds.clear();
      fds.push_back({core_.stop_fd, POLLIN, 0});
      fds.push_back({wake_fd_, POLLIN, 0});
      int64_t next = INT64_MAX;
      for (auto& c : waiting) {
        fds.push_back({c->fd(), POLLIN, 0});
        next = std::min(next, c->deadline());
      }
      int timeout = -1;
      if (next != INT64_MAX)
        timeout = static_cast<int>(
          std::clamp<int64_t>(next - now_ms(), 0, INT_MAX));
      auto rc = ::poll(fds.data(), fds.size(), timeout);
      if (rc < 0 && errno != EINTR)
        break; // cannot happen with valid arguments; stop() still joins
      if (fds[0].revents != 0)
        break;
      if (fds[1].revents != 0) {
        uint64_t n;
        [[maybe_unused]] auto r = ::read(wake_fd_, &n, sizeof(n));
      }
      auto now = now_ms();
      for (size_t i = 0; i < waiting.size(); ++i) {
        auto& c = waiting[i];
        auto p = connection::progress::waiting;
        if (rc > 0 && fds[i + 2].revents != 0) {
          try {
            p = c->receive();
          } catch (...) {
            p = connection::progress::closed; // no memory: drop this one
          }
        }
        if (p == connection::progress::waiting && now >= c->deadline()) {
          if (c->started())
            core_.counters.add(timeouts);
          p = connection::progress::closed;
        }
        if (p == connection::progress::ready)
          on_ready_(std::move(c));
        else if (p == connection::progress::closed)
          c.reset();
      }
      waiting.erase(std::remove(waiting.begin(), waiting.end(), nullptr),
                    waiting.end());
    }
    // Stopping: `waiting` closes its connections on the way out.
  }

  core& core_;
  ready_fn on_ready_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::mutex mtx_;
  std::vector<connection_ptr> inbox_; // mtx_
  bool stopped_ = false;              // mtx_
};

/// httplib's task queue, replaced by one that runs each accepted
/// connection's job right away on the listener thread: the job only hands
/// the socket to the reception (`http_server::process_and_close_socket`).
class inline_queue final : public httplib::TaskQueue {
public:
  void enqueue(std::function<void()> fn) override {
    try {
      fn();
    } catch (...) {
      // process_and_close_socket closes the socket itself on failure.
    }
  }

  void shutdown() override {
  }
};

// -- http_server -----------------------------------------------------------------------------

/// httplib's server with mayfly's connection handling (see top of file).
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

  /// Serves the requests `conn` holds whole, on a pool thread; gives the
  /// connection back to the reception to wait for the next one, or closes
  /// it.
  void serve(connection_ptr conn) {
    auto& lim = core_.limits;
    for (;;) {
      if (core_.stopping.load(std::memory_order_acquire))
        return;
      bool last = conn->served() + 1 >= lim.keep_alive_max;
      bool closed = false;
      bool ok = false;
      t_connection = conn.get();
      try {
        ok = process_request(*conn, last, closed, nullptr);
      } catch (...) {
        ok = false; // bad_alloc inside httplib: drop the connection
      }
      t_connection = nullptr;
      if (!ok || closed || last || conn->done()) {
        conn->linger_and_close();
        return;
      }
      conn->next_request();
      if (!conn->has_head()) {
        core_.rx->admit(conn); // after stop(), conn closes here
        return;
      }
    }
  }

private:
  // Called by httplib's accept loop for each accepted connection, on the
  // listener thread (inline_queue): admits it to the reception or refuses it.
  bool process_and_close_socket(socket_t sock) override {
    auto& counters = core_.counters;
    counters.add(connections);
    ::fcntl(sock, F_SETFD, FD_CLOEXEC);
    if (core_.stopping.load(std::memory_order_acquire)) {
      ::close(sock);
      return true;
    }
    if (counters.live.load(std::memory_order_relaxed)
        >= static_cast<int64_t>(core_.limits.max_connections)) {
      refuse(core_, sock);
      ::close(sock);
      return true;
    }
    int one = 1;
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    connection_ptr conn;
    try {
      conn = std::make_unique<connection>(core_, sock);
    } catch (...) {
      ::close(sock); // no memory for it
      return true;
    }
    core_.rx->admit(conn); // after stop(), conn closes here
    return true;
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
    : server(shared),
      rx(shared,
         [this](connection_ptr conn) {
           // On the reception thread: a whole head for a pool thread, or
           // 503 when every thread is busy and the queue is full.
           if (!pool.submit(conn)) {
             refuse(shared, conn->fd());
             conn.reset();
           }
         }),
      pool(limits.threads, limits.max_queued,
           [this](connection_ptr conn) { server.serve(std::move(conn)); }) {
    shared.rt = &rt;
    shared.limits = limits;
    for (auto& name : limits.allowed_hosts)
      shared.allowed_hosts.push_back(normalized_name(name));
    shared.rx = &rx;
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
  // Stopped in this order by stop(), and destroyed in reverse: the pool
  // threads give connections back to the reception.
  reception rx;
  worker_pool pool;
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
  s.new_task_queue = []() -> httplib::TaskQueue* {
    // httplib takes ownership of the raw pointer (its API) and deletes it
    // after shutdown().
    return std::make_unique<inline_queue>().release();
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
      // Host: exactly one on HTTP/1.1 (RFC 9112, 3.2), at most one on
      // HTTP/1.0, and a name this endpoint answers to (DNS rebinding).
      auto hosts = req.get_header_value_count("Host");
      if (hosts > 1 || (hosts == 0 && req.version != "HTTP/1.0")) {
        set_json_error(res, 400,
                       {{"reason", hosts > 1 ? "more than one Host header"
                                             : "no Host header"}});
        return hr::Handled;
      }
      if (hosts == 1
          && !host_allowed(req.get_header_value("Host"), c->allowed_hosts)) {
        set_json_error(res, 403, {{"reason", "Host must be an IP address, "
                                             "localhost or an allowed name "
                                             "(DNS rebinding)"}});
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
    res.set_content(to_prometheus(c->rt->collect_stats(),
                                  c->rt->stats().descriptions()),
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
  // No new connection from here; the reception closes those waiting, the
  // pool threads finish theirs (every wait ends on the stop eventfd).
  rx.stop();
  pool.shutdown();
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
  if (l.max_connections < 1 || l.max_connections > 4096)
    return bad("max_connections");
  if (l.request_timeout_ms == 0)
    return bad("request_timeout_ms");
  if (l.keep_alive_timeout_ms == 0)
    return bad("keep_alive_timeout_ms");
  if (l.keep_alive_max == 0)
    return bad("keep_alive_max");
  if (l.max_request_bytes < 1024 || l.max_request_bytes > (1u << 20))
    return bad("max_request_bytes");
  if (l.allowed_hosts.size() > 64)
    return bad("allowed_hosts");
  for (auto& name : l.allowed_hosts)
    if (!valid_host_name(name))
      return error_info{errc::invalid_config, "not a host name", 0,
                        "stats.allowed_hosts"};
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
  r.only({"address", "threads", "max_queued", "max_connections",
          "request_timeout_ms", "keep_alive_timeout_ms", "keep_alive_max",
          "max_request_bytes", "allowed_hosts"})
    .read("address", address)
    .read("threads", l.threads)
    .read("max_queued", l.max_queued)
    .read("max_connections", l.max_connections)
    .read("request_timeout_ms", l.request_timeout_ms)
    .read("keep_alive_timeout_ms", l.keep_alive_timeout_ms)
    .read("keep_alive_max", l.keep_alive_max)
    .read("max_request_bytes", l.max_request_bytes);
  if (!r.ok())
    return r.error();
  if (section.contains("allowed_hosts")) {
    const auto& names = section["allowed_hosts"];
    bool strings = names.is_array();
    for (size_t i = 0; strings && i < names.size(); ++i)
      strings = names[i].is_string();
    if (!strings) {
      r.fail("allowed_hosts", "expected an array of host names");
      return r.error();
    }
    l.allowed_hosts = names.get<std::vector<std::string>>();
  }
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
  if (!st.rx.start()) {
    error_info err{errc::system_error, "eventfd failed", errno,
                   address.to_string()};
    return err;
  }
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
    {"max_connections", state_->shared.limits.max_connections},
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

std::vector<metric_section> stats_endpoint::stats_sections() const {
  return {stats_endpoint_metrics};
}

// -- descriptions (runtime/metrics.hpp) ------------------------------------------

namespace {

constexpr metric_info kStatsEndpointMetrics[] = {
  {"address", metric_kind::text, "", "bound address"},
  {"threads", metric_kind::config, "", "pool threads answering requests"},
  {"max_connections", metric_kind::config, "",
   "open connections allowed (`stats_endpoint_limits::max_connections`)"},
  {"connections", metric_kind::counter, "",
   "connections accepted (served or refused)"},
  {"connections_live", metric_kind::gauge, "",
   "connections open now: waiting for a request head or being answered"},
  {"rejected", metric_kind::counter, "",
   "connections refused with 503: `max_connections` open, or all threads "
   "busy and `max_queued` whole requests waiting"},
  {"timeouts", metric_kind::counter, "",
   "requests cut at their deadline (a head that never completes: slow "
   "clients) or responses not written within theirs"},
  {"oversize", metric_kind::counter, "",
   "requests cut at `max_request_bytes`"},
  {"requests", metric_kind::counter, "",
   "responses written, one per request (refusals not included)"},
  {"responses.{code}", metric_kind::counter, "",
   "responses by status: `200`, `206`, `304`, `400`, `403`, `404`, `405`, "
   "`413`, `414`, `416`, `417`, `500`, `503`, `other`"},
  {"bytes_in", metric_kind::counter, "bytes", "bytes read from clients"},
  {"bytes_out", metric_kind::counter, "bytes",
   "bytes written to clients (headers and bodies)"},
  {"listener_restarts", metric_kind::counter, "",
   "times the accept loop failed on its own and was restarted"},
};

} // namespace

const metric_section stats_endpoint_metrics{"net.http", "/net/{endpoint}",
                                            kStatsEndpointMetrics};

} // namespace mayfly

#include <mayfly/net/stats_endpoint.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/tcp.h> // struct tcp_info with tcpi_bytes_received/_sent
#include <netinet/in.h>
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
#include <cstring>
#include <iterator>
#include <strings.h>
#include <thread>
#include <vector>

#include <microhttpd.h>

#include <mayfly/actors/runtime.hpp>
#include <mayfly/net/prometheus.hpp>
#include <mayfly/net/stats_page.hpp>
#include <mayfly/runtime/config.hpp>

// How this file uses libmicrohttpd (MHD, Debian's libmicrohttpd-dev 0.9.75).
// MHD parses requests, writes responses and multiplexes every connection on
// one thread without blocking (epoll): a client sending a header byte a
// second costs a descriptor and at most MHD's per-connection memory pool,
// never a thread, so it cannot stall other clients (issue 18). This file
// adds only what MHD 0.9.75 cannot express:
//
// - Accepting (MHD_USE_NO_LISTEN_SOCKET + MHD_add_connection): beyond
//   `max_connections`, MHD would close silently; we answer 503 with
//   Retry-After and count it.
// - A deadline per request: MHD_OPTION_CONNECTION_TIMEOUT is an
//   *inactivity* timeout in whole seconds, which a client sending a byte a
//   second never reaches. The event loop below (MHD_run on our thread)
//   checks each connection's deadline between MHD's steps, learns from the
//   kernel (TCP_INFO) whether a request's first byte or more than
//   `max_request_bytes` arrived, and cuts an overdue connection with
//   shutdown(2); MHD then sees the end of stream and closes it. Every
//   callback and cut runs on that one thread, so a descriptor is never used
//   after MHD closed it (MHD notifies MHD_CONNECTION_NOTIFY_CLOSED first).
//
// Requests MHD rejects itself before any handler runs (a malformed request
// line or header, HTTP/2+ on the HTTP/1 port: 505, a head beyond its pool:
// 414/431) get MHD's short HTML bodies; they are counted from the status
// MHD queued when the connection closes.

namespace mayfly {

namespace {

using json = nlohmann::json;

int64_t now_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch())
    .count();
}

// -- counters ----------------------------------------------------------------------

// X(name, kind, unit, help): the counters of the event thread, declared once.
// The enum, the JSON keys of `stats()` and the descriptions (Prometheus
// TYPE/HELP, the docs/stats.md table "net.http") are derived from it.
#define MAYFLY_HTTP_COUNTERS(X)                                                \
  X(connections, counter, "", "connections accepted (served or refused)")      \
  X(rejected, counter, "", "connections refused with 503: `max_connections` " \
    "open")                                                                    \
  X(timeouts, counter, "", "requests cut at their deadline (a head that "      \
    "never completes: slow clients) or responses not written within theirs")  \
  X(oversize, counter, "", "requests cut at `max_request_bytes`, and heads "   \
    "libmicrohttpd refused as too large (its 413, 414, 431)")                  \
  X(requests, counter, "", "responses, one per request, including those "     \
    "libmicrohttpd wrote itself to malformed requests (counted when the "      \
    "connection closes)")                                                      \
  X(bytes_in, counter, "bytes", "bytes received from clients, as the kernel "  \
    "counts them (`TCP_INFO`), added after each response and at close")        \
  X(bytes_out, counter, "bytes", "bytes sent to clients, headers and bodies, " \
    "likewise (`tcpi_bytes_sent`, retransmissions included)")

enum http_counter : size_t {
#define MAYFLY_X(name, kind, unit, help) name,
  MAYFLY_HTTP_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  num_http_counters,
};

// Status codes counted one by one ("other" for the rest): what this server
// and MHD can answer.
constexpr int kCodes[] = {200, 400, 403, 404, 405, 413,
                          414, 417, 431, 500, 503, 505};
constexpr size_t kNumCodes = std::size(kCodes);

// Written by the event thread, read by `stats()`: relaxed atomics.
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

  void count_response(int status) noexcept {
    size_t i = 0;
    while (i < kNumCodes && kCodes[i] != status)
      ++i;
    codes[i].fetch_add(1, std::memory_order_relaxed);
    add(requests);
  }
};

// -- addresses -------------------------------------------------------------------------

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


/// Every JSON error body: `{"error": reason(status), ...extra}`.
std::string error_body(int status, json extra = {}) {
  json body = {{"error", reason(status)}};
  if (extra.is_object())
    body.update(extra);
  return dump(body);
}

/// The 503 written to a connection refused at accept, without blocking (a
/// full socket buffer just loses it: the client sees the connection closed).
void refuse(http_counters& counters, int sock) noexcept {
  static constexpr char kBusy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Content-Length: 16\r\n"
                                  "Retry-After: 1\r\n"
                                  "Cache-Control: no-store\r\n"
                                  "Connection: close\r\n"
                                  "\r\n"
                                  "{\"error\":\"busy\"}";
  auto n = ::send(sock, kBusy, sizeof(kBusy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  counters.add(rejected);
  counters.count_response(503);
  if (n > 0)
    counters.add(bytes_out, n);
  ::shutdown(sock, SHUT_WR);
}

/// Bytes the kernel received and sent on a TCP socket so far.
struct tcp_totals {
  int64_t in = 0;
  int64_t out = 0;
};

tcp_totals totals_of(int fd) noexcept {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
    return {};
  return {static_cast<int64_t>(info.tcpi_bytes_received),
          static_cast<int64_t>(info.tcpi_bytes_sent)};
}

/// What the event thread knows of one MHD connection (its socket context).
struct client {
  int fd = -1;
  /// Requests answered so far.
  uint32_t served = 0;
  /// Since when the connection waits for a request (accept or last response).
  int64_t waiting_since = 0;
  /// When the current request's first byte was seen; 0: none yet.
  int64_t request_started = 0;
  /// When the current response was queued; 0: not responding.
  int64_t responding_since = 0;
  /// TCP totals when the connection last started waiting, and as counted.
  tcp_totals mark;
  tcp_totals counted;
  /// Status of the last response this file queued.
  int last_status = 0;
  /// shutdown(2) done: MHD closes it on its next step.
  bool cut = false;
};

/// HTTP methods RFC 9110 and 5789 define: refused with 405; others 400.
bool known_method(const char* m) noexcept {
  for (auto* k : {"POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
                  "PATCH", "PRI"})
    if (std::strcmp(m, k) == 0)
      return true;
  return false;
}

constexpr size_t kMaxTarget = 8192; ///< longer request targets: 414

} // namespace

// -- stats_endpoint::state ----------------------------------------------------------

struct stats_endpoint::state {
  state(runtime& r, const stats_endpoint_limits& l) : rt(&r), limits(l) {
    for (auto& name : l.allowed_hosts)
      allowed_hosts.push_back(normalized_name(name));
  }

  ~state() {
    stop();
    for (int fd : {listen_fd, stop_fd})
      if (fd >= 0)
        ::close(fd);
  }

  bool start(std::string& failed);
  void run() noexcept;
  void stop() noexcept;
  void accept_all() noexcept;
  int64_t enforce_deadlines() noexcept;
  void account(client& c) noexcept;
  /// Routes one request and queues its response; `has_body`: the
  /// connection closes after it (the body is never read).
  MHD_Result answer(MHD_Connection* conn, const char* url,
                    const char* method, const char* version, bool has_body);

  // MHD callbacks (`cls` is the state): all on the event thread, inside
  // MHD_run, or in MHD_stop_daemon after that thread ended.
  static void on_connection(void* cls, MHD_Connection* conn,
                            void** socket_context,
                            MHD_ConnectionNotificationCode code);
  static void on_completed(void* cls, MHD_Connection* conn, void**,
                           MHD_RequestTerminationCode);
  static MHD_Result on_request(void* cls, MHD_Connection* conn,
                               const char* url, const char* method,
                               const char* version, const char*, size_t*,
                               void**);

  runtime* rt;
  stats_endpoint_limits limits;
  /// Host names accepted besides IP literals and localhost (lower case, no
  /// trailing dot).
  std::vector<std::string> allowed_hosts;
  http_counters counters;
  int listen_fd = -1;
  int stop_fd = -1; ///< eventfd, readable from stop() on
  MHD_Daemon* daemon = nullptr;
  int epoll_fd = -1; ///< MHD's, readable when a connection has work
  /// Live connections (event thread only).
  std::vector<client*> clients;
  std::thread thread;
  std::atomic<bool> stopped{false};
};

void stats_endpoint::state::on_connection(void* cls, MHD_Connection* conn,
                                          void** socket_context,
                                          MHD_ConnectionNotificationCode code) {
  auto& st = *static_cast<state*>(cls);
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    auto* c = new client;
    auto* info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = info != nullptr ? info->connect_fd : -1;
    c->waiting_since = now_ms();
    st.clients.push_back(c);
    *socket_context = c;
    return;
  }
  auto* c = static_cast<client*>(*socket_context);
  if (c == nullptr)
    return;
  // A response MHD wrote itself (malformed request, head too large).
  auto* info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
  int status = info != nullptr ? static_cast<int>(info->http_status) : 0;
  if (status != 0 && status != c->last_status) {
    st.counters.count_response(status);
    if (status == 413 || status == 414 || status == 431)
      st.counters.add(oversize);
  }
  st.account(*c);
  st.clients.erase(std::find(st.clients.begin(), st.clients.end(), c));
  st.counters.live.fetch_sub(1, std::memory_order_relaxed);
  delete c;
  *socket_context = nullptr;
}

void stats_endpoint::state::on_completed(void* cls, MHD_Connection* conn,
                                         void**, MHD_RequestTerminationCode) {
  auto& st = *static_cast<state*>(cls);
  auto* info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  auto* c = info != nullptr ? static_cast<client*>(info->socket_context)
                            : nullptr;
  if (c == nullptr)
    return;
  st.account(*c);
  ++c->served;
  c->responding_since = 0;
  c->request_started = 0;
  c->waiting_since = now_ms();
  c->mark = totals_of(c->fd);
}

MHD_Result stats_endpoint::state::on_request(void* cls, MHD_Connection* conn,
                                             const char* url,
                                             const char* method,
                                             const char* version, const char*,
                                             size_t*, void** req_cls) {
  // MHD 0.9.75 closes the connection after a response queued on the first
  // call (before the body): right for a request with a body or another
  // method, which this endpoint never reads; a bodiless GET or HEAD is
  // answered on the second call, which keeps the connection alive.
  static char deferred;
  bool bodiless
    = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding")
        == nullptr
      && [&] {
           auto* len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   "Content-Length");
           return len == nullptr || std::strcmp(len, "0") == 0;
         }();
  bool get = std::strcmp(method, "GET") == 0 || std::strcmp(method, "HEAD") == 0;
  if (*req_cls == nullptr && bodiless && get) {
    *req_cls = &deferred;
    return MHD_YES;
  }
  return static_cast<state*>(cls)->answer(conn, url, method, version,
                                          !bodiless);
}

namespace {

/// Leaves the request target as sent ("/%00" stays 4 bytes): the routes
/// are exact ASCII paths, and an escaped one is not one of them.
size_t keep_escaped(void*, MHD_Connection*, char* s) {
  return std::strlen(s);
}

} // namespace

void stats_endpoint::state::account(client& c) noexcept {
  auto now = totals_of(c.fd);
  if (now.in > c.counted.in)
    counters.add(bytes_in, now.in - c.counted.in);
  if (now.out > c.counted.out)
    counters.add(bytes_out, now.out - c.counted.out);
  c.counted = {std::max(now.in, c.counted.in), std::max(now.out, c.counted.out)};
}

MHD_Result stats_endpoint::state::answer(MHD_Connection* conn, const char* url,
                                         const char* method,
                                         const char* version, bool has_body) {
  auto* info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  auto* c = info != nullptr ? static_cast<client*>(info->socket_context)
                            : nullptr;
  int status = 200;
  std::string body;
  const char* type = "application/json";
  bool close = false;
  bool page = false;
  bool allow = false;
  // Host: exactly one on HTTP/1.1 (RFC 9112, 3.2), at most one on HTTP/1.0,
  // and a name this endpoint answers to (DNS rebinding).
  struct host_headers {
    int count = 0;
    const char* value = nullptr;
  } hosts;
  MHD_get_connection_values(
    conn, MHD_HEADER_KIND,
    [](void* cls, MHD_ValueKind, const char* key, const char* value) {
      auto& found = *static_cast<host_headers*>(cls);
      if (strcasecmp(key, "Host") == 0) {
        ++found.count;
        found.value = value;
      }
      return MHD_YES;
    },
    &hosts);
  bool get = std::strcmp(method, "GET") == 0 || std::strcmp(method, "HEAD") == 0;
  if (hosts.count > 1
      || (hosts.count == 0 && std::strcmp(version, "HTTP/1.0") != 0)) {
    status = 400;
    body = error_body(400, {{"reason", hosts.count > 1 ? "more than one Host header"
                                                 : "no Host header"}});
  } else if (hosts.count == 1
             && !host_allowed(hosts.value != nullptr ? hosts.value : "",
                              allowed_hosts)) {
    status = 403;
    body = error_body(403, {{"reason", "Host must be an IP address, localhost "
                                       "or an allowed name (DNS rebinding)"}});
  } else if (!get) {
    // Any body is left unread: this response is the connection's last.
    status = known_method(method) ? 405 : 400;
    allow = status == 405;
    body = error_body(status, {{"method", method}});
    close = true;
  } else if (std::strlen(url) > kMaxTarget) {
    status = 414;
    body = error_body(414);
    close = true;
  } else if (std::strcmp(url, "/") == 0) {
    auto html = stats_page_html();
    body.assign(html.data(), html.size());
    type = "text/html; charset=utf-8";
    page = true;
  } else if (std::strcmp(url, "/stats") == 0) {
    bool pretty = false;
    MHD_get_connection_values(
      conn, MHD_GET_ARGUMENT_KIND,
      [](void* cls, MHD_ValueKind, const char* key, const char*) {
        if (std::strcmp(key, "pretty") == 0)
          *static_cast<bool*>(cls) = true;
        return MHD_YES;
      },
      &pretty);
    auto doc = rt->collect_stats();
    body = pretty ? dump(doc, 2) + "\n" : dump(doc);
  } else if (std::strcmp(url, "/metrics") == 0) {
    body = to_prometheus(rt->collect_stats(), rt->stats().descriptions());
    type = "text/plain; version=0.0.4; charset=utf-8";
  } else {
    status = 404;
    body = error_body(404, {{"path", std::string{url}.substr(0, 256)}});
  }
  if (has_body || status == 400 || (c != nullptr && c->served + 1 >= limits.keep_alive_max))
    close = true;
  auto* res = MHD_create_response_from_buffer(body.size(), body.data(),
                                              MHD_RESPMEM_MUST_COPY);
  if (res == nullptr)
    return MHD_NO;
  MHD_add_response_header(res, "Content-Type", type);
  MHD_add_response_header(res, "Cache-Control", "no-store");
  MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
  if (page) {
    MHD_add_response_header(res, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; "
                            "style-src 'unsafe-inline'; connect-src 'self'; "
                            "img-src data:; base-uri 'none'; "
                            "form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(res, "Referrer-Policy", "no-referrer");
  }
  if (allow)
    MHD_add_response_header(res, "Allow", "GET, HEAD");
  if (close)
    MHD_add_response_header(res, "Connection", "close");
  auto queued = MHD_queue_response(conn, static_cast<unsigned>(status), res);
  MHD_destroy_response(res);
  if (queued == MHD_YES) {
    counters.count_response(status);
    if (c != nullptr) {
      c->last_status = status;
      c->responding_since = now_ms();
    }
  }
  return queued;
}

bool stats_endpoint::state::start(std::string& failed) {
  stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    failed = "eventfd failed";
    return false;
  }
  auto secs = [](uint32_t ms) { return (ms + 999) / 1000; };
  // MHD's own inactivity timeout only backs up the deadlines below.
  unsigned backstop
    = secs(std::max(limits.request_timeout_ms, limits.keep_alive_timeout_ms))
      + 1;
  // A pool twice the request budget: MHD's own 431 stays a backstop of the
  // budget check (enforce_deadlines), which answers with our JSON 400.
  size_t pool = 2 * static_cast<size_t>(limits.max_request_bytes) + 32768;
  daemon = MHD_start_daemon(
    MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET, 0, nullptr, nullptr, &on_request,
    this, MHD_OPTION_CONNECTION_LIMIT,
    static_cast<unsigned>(limits.max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
    backstop, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
    MHD_OPTION_NOTIFY_CONNECTION, &on_connection, this,
    MHD_OPTION_NOTIFY_COMPLETED, &on_completed, this,
    MHD_OPTION_UNESCAPE_CALLBACK, &keep_escaped, nullptr, MHD_OPTION_END);
  if (daemon == nullptr) {
    failed = "MHD_start_daemon failed";
    return false;
  }
  auto* info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
  epoll_fd = info != nullptr ? info->epoll_fd : -1;
  thread = std::thread{[this] { run(); }};
  return true;
}

void stats_endpoint::state::accept_all() noexcept {
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return; // EAGAIN, or out of descriptors: the next wakeup retries
    counters.add(connections);
    if (counters.live.load(std::memory_order_relaxed) >= limits.max_connections) {
      refuse(counters, fd);
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    counters.live.fetch_add(1, std::memory_order_relaxed);
    // On failure MHD closes the socket itself, without a notification.
    if (MHD_add_connection(daemon, fd, reinterpret_cast<sockaddr*>(&ss), len)
        != MHD_YES)
      counters.live.fetch_sub(1, std::memory_order_relaxed);
  }
}

/// Cuts connections past their deadline or byte budget; returns the ms
/// until the next deadline (-1: none).
int64_t stats_endpoint::state::enforce_deadlines() noexcept {
  auto now = now_ms();
  int64_t next = -1;
  for (auto* c : clients) {
    if (c->cut || c->fd < 0)
      continue;
    int64_t deadline;
    bool counts = true; // a cut request, not an idle connection
    if (c->responding_since != 0) {
      deadline = c->responding_since + limits.request_timeout_ms;
    } else {
      auto got = totals_of(c->fd).in - c->mark.in;
      if (got > limits.max_request_bytes) {
        static constexpr char kTooLarge[]
          = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
            "Content-Length: 23\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n{\"error\":\"bad request\"}";
        counters.count_response(400);
        counters.add(oversize);
        ::send(c->fd, kTooLarge, sizeof(kTooLarge) - 1,
               MSG_NOSIGNAL | MSG_DONTWAIT);
        c->last_status = 400;
        ::shutdown(c->fd, SHUT_RDWR);
        c->cut = true;
        continue;
      }
      if (got > 0 && c->request_started == 0)
        c->request_started = now;
      if (c->request_started != 0) {
        deadline = c->request_started + limits.request_timeout_ms;
      } else {
        counts = false;
        deadline = c->waiting_since
                   + (c->served == 0 ? limits.request_timeout_ms
                                     : limits.keep_alive_timeout_ms);
      }
    }
    if (now >= deadline) {
      if (counts) // before the client can see the cut
        counters.add(timeouts);
      ::shutdown(c->fd, SHUT_RDWR);
      c->cut = true;
    } else if (next < 0 || deadline - now < next) {
      next = deadline - now;
    }
  }
  return next;
}

// The event thread: accepts, enforces deadlines, lets MHD work, sleeps in
// poll(2) until a connection, a client, a deadline or stop().
void stats_endpoint::state::run() noexcept {
  pthread_setname_np(pthread_self(), "mayfly-http");
  for (;;) {
    auto wait = enforce_deadlines();
    MHD_UNSIGNED_LONG_LONG mhd_ms = 0;
    if (MHD_get_timeout(daemon, &mhd_ms) == MHD_YES
        && (wait < 0 || static_cast<int64_t>(mhd_ms) < wait))
      wait = static_cast<int64_t>(mhd_ms);
    pollfd fds[] = {{stop_fd, POLLIN, 0}, {listen_fd, POLLIN, 0},
                    {epoll_fd, POLLIN, 0}};
    ::poll(fds, std::size(fds), static_cast<int>(std::min<int64_t>(wait, 60000)));
    if (fds[0].revents != 0)
      return;
    if (fds[1].revents != 0)
      accept_all();
    enforce_deadlines(); // before MHD reads what arrived: the byte budget
    MHD_run(daemon);
  }
}

void stats_endpoint::state::stop() noexcept {
  if (stopped.exchange(true))
    return;
  if (stop_fd >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] auto rc = ::write(stop_fd, &one, sizeof(one));
  }
  if (thread.joinable())
    thread.join();
  // Closes every connection (notifications run here, on this thread).
  if (daemon != nullptr)
    MHD_stop_daemon(daemon);
  daemon = nullptr;
  if (listen_fd >= 0)
    ::close(listen_fd);
  listen_fd = -1;
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
  auto fail = [&](const char* what) {
    error_info err{errc::system_error, what, errno, address.to_string()};
    return err;
  };
  st.listen_fd = ::socket(address.family(),
                          SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (st.listen_fd < 0)
    return fail("cannot bind the stats endpoint");
  int one = 1;
  ::setsockopt(st.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (address.family() == AF_INET6) // [::] serves IPv4 too, as before
    one = 0, ::setsockopt(st.listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
                          sizeof(one));
  if (::bind(st.listen_fd, address.sockaddr_ptr(), address.size()) != 0
      || ::listen(st.listen_fd, 64) != 0)
    return fail("cannot bind the stats endpoint");
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(st.listen_fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return fail("getsockname failed");
  ep->local_ = udp_address{reinterpret_cast<sockaddr*>(&ss), len};
  std::string failed;
  if (!st.start(failed))
    return fail(failed.c_str());
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
  auto& c = state_->counters;
  auto responses = json::object();
  for (size_t i = 0; i < kNumCodes; ++i)
    responses[std::to_string(kCodes[i])]
      = c.codes[i].load(std::memory_order_relaxed);
  responses["other"] = c.codes[kNumCodes].load(std::memory_order_relaxed);
  json out = {
    {"address", local_.to_string()},
    {"threads", 1},
    {"max_connections", state_->limits.max_connections},
    {"connections_live", c.live.load(std::memory_order_relaxed)},
    {"responses", std::move(responses)},
  };
#define MAYFLY_X(name, kind, unit, help) out[#name] = c.get(name);
  MAYFLY_HTTP_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
  return out;
}

std::vector<metric_section> stats_endpoint::stats_sections() const {
  return {stats_endpoint_metrics};
}

// -- descriptions (runtime/metrics.hpp) ------------------------------------------

namespace {

constexpr metric_info kStatsEndpointMetrics[] = {
  {"address", metric_kind::text, "", "bound address"},
  {"threads", metric_kind::config, "",
   "threads serving HTTP: always 1 (libmicrohttpd's event loop); "
   "`stats.threads` is ignored"},
  {"max_connections", metric_kind::config, "",
   "open connections allowed (`stats_endpoint_limits::max_connections`)"},
  {"connections_live", metric_kind::gauge, "",
   "connections open now: waiting for a request head or being answered"},
  {"responses.{code}", metric_kind::counter, "",
   "responses by status: `200`, `400`, `403`, `404`, `405`, `413`, `414`, "
   "`417`, `431`, `500`, `503`, `505`, `other` (503 includes refusals)"},
#define MAYFLY_X(name, kind, unit, help) {#name, metric_kind::kind, unit, help},
  MAYFLY_HTTP_COUNTERS(MAYFLY_X)
#undef MAYFLY_X
};

} // namespace

const metric_section stats_endpoint_metrics{"net.http", "/net/{endpoint}",
                                            kStatsEndpointMetrics};

} // namespace mayfly

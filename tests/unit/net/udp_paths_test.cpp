// The optional IO paths of a UDP endpoint on real loopback sockets: the GRO
// receive path (coalescing really observed, with a GSO sender), GSO replies
// (really used, counted), their fallbacks, and configuration. Every test ends
// with the pools and slices balanced back to zero (the fixture's TearDown).

#include <mayfly/net/udp_endpoint.hpp>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <mayfly/actors/runtime.hpp>
#include "tests/support/small_runtime.hpp"
#include "tests/support/net_clients.hpp"

namespace {

using namespace mayfly;

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 gen{seed};
  for (auto& c : s)
    c = static_cast<char>(gen());
  return s;
}

/// Sends `bytes` as one GSO message of `segment`-byte datagrams (the last
/// may be shorter) on the connected socket `fd`. Returns errno or 0.
int send_gso(int fd, const std::string& bytes, uint16_t segment) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  auto* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  std::memcpy(CMSG_DATA(c), &segment, sizeof(segment));
  return ::sendmsg(fd, &msg, 0) == static_cast<ssize_t>(bytes.size()) ? 0
                                                                      : errno;
}

/// The fd of this process's UDP socket bound to `addr` (the endpoint's), or
/// -1. Test-only: lets a test change the server socket the way a hostile
/// kernel configuration would.
int find_socket(const udp_address& addr) {
  int found = -1;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (auto* e = ::readdir(dir)) {
      int fd = std::atoi(e->d_name);
      if (fd <= 2)
        continue;
      udp_address local;
      socklen_t len = udp_address::capacity();
      int type = 0;
      socklen_t tlen = sizeof(type);
      if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0
          || type != SOCK_DGRAM
          || ::getsockname(fd, local.sockaddr_ptr(), &len) != 0)
        continue;
      if (udp_address{local.sockaddr_ptr(), len} == addr)
        found = fd;
    }
    ::closedir(dir);
  }
  return found;
}

// The endpoint falls back to recvmmsg (and logs it) when the kernel refuses
// UDP_GRO (before 5.0).
// io_uring can be missing (old kernel, seccomp, io_uring_disabled, built
// without liburing): the endpoint then falls back to recvmmsg.
#define SKIP_WITHOUT_IO_URING()                                                \
  do {                                                                         \
    if (net_stats()["receive_path"] != "io_uring")                             \
      GTEST_SKIP() << "io_uring receive is unavailable here (kernel 6.0+ "     \
                      "with io_uring enabled and liburing needed): the "       \
                      "endpoint fell back to recvmmsg";                        \
  } while (false)

#define SKIP_WITHOUT_GRO()                                                     \
  do {                                                                         \
    if (net_stats()["receive_path"] != "gro")                                  \
      GTEST_SKIP() << "this kernel refused UDP_GRO (needs Linux 5.0+): the "   \
                      "endpoint fell back to recvmmsg";                        \
  } while (false)

class PathsTest : public ::testing::Test {
protected:
  /// A runtime whose handler replies `copies` times with the request and
  /// then, if `half`, once more with its first half; an endpoint with `ec`.
  void start(endpoint_config ec, const char* address = "127.0.0.1:0",
             int copies = 1, bool half = false,
             runtime_config cfg = test::small_runtime_config()) {
    auto made = runtime::make(cfg);
    ASSERT_TRUE(made) << made.error().message();
    rt = std::move(*made);
    auto& h = rt->add_handler("echo", [copies, half](handler_context& ctx,
                                                     const datagram& d) {
      for (int i = 0; i < copies; ++i)
        ctx.reply(d.payload);
      if (half)
        ctx.reply(d.payload.sub(0, d.payload.size() / 2));
    });
    ec.address = *udp_address::parse(address);
    auto ep = udp_endpoint::open(*rt, h, ec);
    ASSERT_TRUE(ep) << ep.error().message();
    endpoint = *ep;
    rt->start();
  }

  static runtime_config roomy() {
    auto cfg = test::small_runtime_config();
    cfg.memory.buffers.jumbo_capacity = 32;
    return cfg;
  }

  void TearDown() override {
    test::stop_and_expect_balanced(rt);
  }

  nlohmann::json net_stats() {
    return rt->collect_stats()["net"][endpoint->name()];
  }

  /// Waits (bounded) until the IO thread counted `n` replies out: the client
  /// can see a reply before sendmmsg returned and was counted.
  void wait_out(int64_t n) {
    for (int i = 0; i < 2000 && net_stats()["datagrams_out"] < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  std::unique_ptr<runtime> rt;
  udp_endpoint* endpoint = nullptr;
};

// -- configuration ------------------------------------------------------------

TEST(PathsConfig, ParsesReceivePathAndGso) {
  auto doc = nlohmann::json::parse(
    R"({"net": {"receive_path": "gro", "gso": true, "batch": 16}})");
  auto cfg = parse_endpoint_config(doc);
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_EQ(cfg->receive_path, receive_path::gro);
  EXPECT_TRUE(cfg->gso);
  EXPECT_EQ(cfg->batch, 16u);
  auto defaults = parse_endpoint_config(nlohmann::json::object());
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->receive_path, receive_path::recvmmsg);
  EXPECT_TRUE(defaults->gso); // on where the kernel accepts it
  EXPECT_EQ(defaults->handler_start, handler_start::io_thread);
  auto workers = parse_endpoint_config(
    nlohmann::json{{"net", {{"handler_start", "workers"}}}});
  ASSERT_TRUE(workers);
  EXPECT_EQ(workers->handler_start, handler_start::workers);
  auto bad = parse_endpoint_config(
    nlohmann::json{{"net", {{"handler_start", "inline"}}}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().subject, "net.handler_start");
}

TEST(PathsConfig, RefusesUnknownPaths) {
  auto uring = parse_endpoint_config(
    nlohmann::json{{"net", {{"receive_path", "io_uring"}}}});
  ASSERT_TRUE(uring);
  EXPECT_EQ(uring->receive_path, receive_path::io_uring);
  for (const char* path : {"epoll", "GRO", ""}) {
    auto doc = nlohmann::json{{"net", {{"receive_path", path}}}};
    auto cfg = parse_endpoint_config(doc);
    ASSERT_FALSE(cfg) << path;
    EXPECT_EQ(cfg.error().code, errc::invalid_config);
    EXPECT_EQ(cfg.error().subject, "net.receive_path");
  }
  auto doc = nlohmann::json{{"net", {{"gso", "yes"}}}};
  EXPECT_FALSE(parse_endpoint_config(doc));
}

// -- GRO receive ----------------------------------------------------------------

TEST_F(PathsTest, GroEchoesEverySizeByteForByte) {
  endpoint_config ec;
  ec.receive_path = receive_path::gro;
  start(ec, "127.0.0.1:0", 1, false, roomy());
  SKIP_WITHOUT_GRO();
  test::udp_client client{endpoint->local_address()};
  uint32_t seed = 11;
  for (size_t size : {0, 1, 1472, 2048, 2049, 9000, 65507}) {
    auto msg = pattern(size, seed++);
    ASSERT_TRUE(client.send(msg)) << size;
    auto reply = client.receive();
    ASSERT_TRUE(reply) << "no reply for size " << size;
    EXPECT_EQ(*reply, msg) << "size " << size;
  }
  wait_out(7);
  auto st = net_stats();
  EXPECT_EQ(st["datagrams_in"], 7);
  EXPECT_EQ(st["datagrams_out"], 7);
  EXPECT_EQ(st["gro_copied"], 4); // 0, 1, 1472, 2048 left the jumbo slot
  EXPECT_EQ(st["spilled"], 0);    // large ones stayed in theirs: no copy
  EXPECT_EQ(st["truncated"], 0);
}

TEST_F(PathsTest, GroDeliversEachCoalescedDatagramAsASliceOfOneBinary) {
  endpoint_config ec;
  ec.receive_path = receive_path::gro;
  start(ec, "127.0.0.1:0", 1, false, roomy());
  SKIP_WITHOUT_GRO();
  test::udp_client client{endpoint->local_address()};
  // 9 datagrams of 1000 bytes and a last one of 333, each distinct, sent as
  // ONE GSO message: on loopback it arrives as one coalesced receive.
  std::multiset<std::string> sent;
  std::string burst;
  for (uint32_t i = 0; i < 10; ++i) {
    auto part = pattern(i < 9 ? 1000 : 333, 100 + i);
    sent.insert(part);
    burst += part;
  }
  ASSERT_EQ(send_gso(client.fd(), burst, 1000), 0) << std::strerror(errno);
  std::multiset<std::string> got;
  for (int i = 0; i < 10; ++i) {
    auto reply = client.receive();
    ASSERT_TRUE(reply) << "reply " << i << " missing";
    got.insert(*reply);
  }
  EXPECT_EQ(got, sent); // byte for byte (handlers run in any order)
  wait_out(11);
  auto st = net_stats();
  EXPECT_EQ(st["datagrams_in"], 10);
  EXPECT_EQ(st["gro_receives"], 1);  // all ten in one receive
  EXPECT_EQ(st["gro_segments"], 10);
  EXPECT_EQ(st["recv_calls"], 1);
}

TEST_F(PathsTest, GroOverIpv6WithGsoReplies) {
  endpoint_config ec;
  ec.receive_path = receive_path::gro;
  ec.gso = true;
  start(ec, "[::1]:0", 1, false, roomy());
  SKIP_WITHOUT_GRO();
  test::udp_client client{endpoint->local_address()};
  for (size_t size : {0, 1, 1452, 9000, 65487}) {
    auto msg = pattern(size, 5);
    ASSERT_TRUE(client.send(msg));
    auto reply = client.receive();
    ASSERT_TRUE(reply) << size;
    EXPECT_EQ(*reply, msg) << size;
  }
  std::string burst;
  std::multiset<std::string> sent;
  for (uint32_t i = 0; i < 6; ++i) {
    auto part = pattern(700, 200 + i);
    sent.insert(part);
    burst += part;
  }
  ASSERT_EQ(send_gso(client.fd(), burst, 700), 0);
  std::multiset<std::string> got;
  for (int i = 0; i < 6; ++i) {
    auto reply = client.receive();
    ASSERT_TRUE(reply);
    got.insert(*reply);
  }
  EXPECT_EQ(got, sent);
  EXPECT_GE(net_stats()["gro_segments"], 6);
}

TEST_F(PathsTest, GroFallsBackToRecvmmsgWithoutJumboClass) {
  auto cfg = test::small_runtime_config();
  cfg.memory.buffers.jumbo_capacity = 0;
  endpoint_config ec;
  ec.receive_path = receive_path::gro;
  start(ec, "127.0.0.1:0", 1, false, cfg);
  EXPECT_EQ(net_stats()["receive_path"], "recvmmsg");
  test::udp_client client{endpoint->local_address()};
  ASSERT_TRUE(client.send("still served"));
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, "still served");
}

TEST_F(PathsTest, DefaultPathIsRecvmmsgWithGsoWhereTheKernelHasIt) {
  start(endpoint_config{});
  auto st = net_stats();
  EXPECT_EQ(st["receive_path"], "recvmmsg");
  EXPECT_EQ(st["gso"], true); // loopback on any kernel since 4.18
}

TEST_F(PathsTest, GsoCanBeSwitchedOff) {
  endpoint_config ec;
  ec.gso = false;
  start(ec, "127.0.0.1:0", 4);
  test::udp_client client{endpoint->local_address()};
  ASSERT_TRUE(client.send("one by one"));
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(client.receive());
  wait_out(4);
  auto st = net_stats();
  EXPECT_EQ(st["gso"], false);
  EXPECT_EQ(st["gso_sends"], 0);
}

// -- GSO send -----------------------------------------------------------------------

TEST_F(PathsTest, GsoSendsARunToOnePeerAsOneMessage) {
  endpoint_config ec;
  ec.gso = true;
  // Each request is answered 8 times whole and once by its first half: a
  // run of 9 for one peer whose last datagram is shorter.
  start(ec, "127.0.0.1:0", 8, true);
  EXPECT_EQ(net_stats()["gso"], true);
  test::udp_client client{endpoint->local_address()};
  int64_t expected = 0;
  // The IO thread may wake before the handler queued all nine; a few rounds
  // make a batched run certain enough (bounded).
  for (int round = 0; round < 20 && net_stats()["gso_sends"] == 0; ++round) {
    auto msg = pattern(1200, 300 + round);
    ASSERT_TRUE(client.send(msg));
    for (int i = 0; i < 8; ++i) {
      auto reply = client.receive();
      ASSERT_TRUE(reply) << "round " << round << " reply " << i;
      EXPECT_EQ(*reply, msg);
    }
    auto last = client.receive();
    ASSERT_TRUE(last);
    EXPECT_EQ(*last, msg.substr(0, 600)); // order kept within the run
    expected += 9;
    wait_out(expected);
  }
  auto st = net_stats();
  if (st["gso_errors"] > 0)
    GTEST_SKIP() << "this kernel refused UDP GSO on loopback (needs 4.18+)";
  EXPECT_GT(st["gso_sends"], 0);
  EXPECT_GE(st["gso_segments"], 2 * st["gso_sends"].get<int64_t>());
  EXPECT_EQ(st["datagrams_out"], expected);
  EXPECT_EQ(st["gso_errors"], 0);
  EXPECT_EQ(st["send_errors"], 0);
  EXPECT_DOUBLE_EQ(st["gso_batch_avg"].get<double>(),
                   st["gso_segments"].get<double>()
                     / st["gso_sends"].get<double>());
}

// The send side's figures (issue 17): every datagram out is counted by the
// class of the buffer it left from, and copied replies by how full the
// packer left its standard buffers.
TEST_F(PathsTest, SendSideCountsBufferClassesAndFill) {
  auto cfg = roomy();
  cfg.memory.buffers.jumbo_slot_size = 8192;
  auto made = runtime::make(cfg);
  ASSERT_TRUE(made) << made.error().message();
  rt = std::move(*made);
  // Zero-copy replies (the request's own slot) and one copied reply of a
  // quarter of the request's size; an 8-byte request also gets a copied
  // reply larger than a jumbo slot (a dedicated buffer).
  static const std::string oversize(9000, 'o');
  auto& h = rt->add_handler("echo", [](handler_context& ctx,
                                       const datagram& d) {
    ctx.reply(d.payload);
    auto bytes = d.payload.view();
    ctx.reply(bytes.substr(0, bytes.size() / 4));
    if (bytes.size() == 8)
      ctx.reply(std::string_view{oversize});
  });
  endpoint_config ec;
  ec.address = *udp_address::parse("127.0.0.1:0");
  auto ep = udp_endpoint::open(*rt, h, ec);
  ASSERT_TRUE(ep) << ep.error().message();
  endpoint = *ep;
  rt->start();
  const size_t standard = rt->buffers().standard().slot_size();
  const size_t jumbo = rt->buffers().jumbo()->slot_size();
  test::udp_client client{endpoint->local_address()};
  // 4 requests that fit a standard slot, 1 that needs a jumbo slot.
  int64_t std_bytes = 0, jumbo_bytes = 0, copied = 0;
  for (size_t size : {size_t{100}, size_t{400}, standard, size_t{8}, standard + 1}) {
    ASSERT_LT(size, jumbo);
    auto msg = pattern(size, static_cast<uint32_t>(size));
    ASSERT_TRUE(client.send(msg));
    for (int i = 0; i < (size == 8 ? 3 : 2); ++i)
      ASSERT_TRUE(client.receive()) << size;
    (size <= standard ? std_bytes : jumbo_bytes) += static_cast<int64_t>(size);
    copied += static_cast<int64_t>(size / 4);
  }
  wait_out(11);
  auto st = net_stats();
  // The copies (at most a quarter of a standard slot + 1) all fit standard
  // send buffers; the requests went back from their own slots.
  EXPECT_EQ(st["datagrams_out_standard"], 9);
  EXPECT_EQ(st["bytes_out_standard"], std_bytes + copied);
  EXPECT_EQ(st["datagrams_out_jumbo"], 1);
  EXPECT_EQ(st["bytes_out_jumbo"], jumbo_bytes);
  EXPECT_EQ(st["datagrams_out_oversize"], 1);
  EXPECT_EQ(st["bytes_out_oversize"], 9000);
  EXPECT_EQ(st["datagrams_out"], 11);
  EXPECT_EQ(st["bytes_out"], std_bytes + jumbo_bytes + copied + 9000);
  EXPECT_EQ(st["bytes_packed"], copied);
  auto buffers = st["send_buffers"].get<int64_t>();
  EXPECT_GE(buffers, 1);
  EXPECT_DOUBLE_EQ(st["send_buffer_fill_avg"].get<double>(),
                   static_cast<double>(copied)
                     / static_cast<double>(buffers * static_cast<int64_t>(standard)));
}

TEST_F(PathsTest, GsoLeavesZeroLengthAndOversizeRepliesAlone) {
  endpoint_config ec;
  ec.gso = true;
  start(ec, "127.0.0.1:0", 3);
  test::udp_client client{endpoint->local_address()};
  for (size_t size : {0, 1473, 9000}) { // no GSO: empty, or above one MTU
    auto msg = pattern(size, 9);
    ASSERT_TRUE(client.send(msg));
    for (int i = 0; i < 3; ++i) {
      auto reply = client.receive();
      ASSERT_TRUE(reply) << size;
      EXPECT_EQ(*reply, msg) << size;
    }
  }
  wait_out(9);
  EXPECT_EQ(net_stats()["gso_sends"], 0);
  EXPECT_EQ(net_stats()["datagrams_out"], 9);
}

TEST_F(PathsTest, GsoRefusedByTheKernelIsSwitchedOffAndNothingIsLost) {
  endpoint_config ec;
  ec.gso = true;
  start(ec, "127.0.0.1:0", 8);
  // SO_NO_CHECK makes the kernel refuse UDP_SEGMENT sends with EINVAL, as a
  // device without checksum offload refuses them with EIO.
  int fd = find_socket(endpoint->local_address());
  ASSERT_GE(fd, 0);
  int one = 1;
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)), 0);
  test::udp_client client{endpoint->local_address()};
  int64_t expected = 0;
  for (int round = 0; round < 20 && net_stats()["gso_errors"] == 0; ++round) {
    auto msg = pattern(800, 400 + round);
    ASSERT_TRUE(client.send(msg));
    for (int i = 0; i < 8; ++i) {
      auto reply = client.receive();
      ASSERT_TRUE(reply) << "round " << round << " reply " << i;
      EXPECT_EQ(*reply, msg);
    }
    expected += 8;
    wait_out(expected);
  }
  auto st = net_stats();
  EXPECT_EQ(st["gso_errors"], 1);
  EXPECT_EQ(st["gso"], false);
  EXPECT_EQ(st["gso_sends"], 0);
  EXPECT_EQ(st["send_errors"], 0);
  EXPECT_EQ(st["datagrams_out"], expected);
}

// -- io_uring receive ------------------------------------------------------------------

TEST_F(PathsTest, IoUringEchoesByteForByteAndCountsOversize) {
  endpoint_config ec;
  ec.receive_path = receive_path::io_uring;
  start(ec);
  SKIP_WITHOUT_IO_URING();
  test::udp_client client{endpoint->local_address(), 300};
  uint32_t seed = 21;
  // What fits a 2 KiB slot after the kernel's header, address and control
  // room is delivered whole, without a copy...
  for (size_t size : {0, 1, 64, 1472, 1900}) {
    auto msg = pattern(size, seed++);
    ASSERT_TRUE(client.send(msg)) << size;
    auto reply = client.receive();
    ASSERT_TRUE(reply) << "no reply for size " << size;
    EXPECT_EQ(*reply, msg) << "size " << size;
  }
  // ... anything larger is counted as truncated and never delivered cut.
  for (size_t size : {2048, 9000, 65507}) {
    ASSERT_TRUE(client.send(pattern(size, seed++)));
    EXPECT_FALSE(client.receive()) << size;
  }
  ASSERT_TRUE(client.send("after"));
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, "after");
  wait_out(6);
  auto st = net_stats();
  EXPECT_EQ(st["datagrams_in"], 6);
  EXPECT_EQ(st["truncated"], 3);
  EXPECT_EQ(st["datagrams_out"], 6);
}

TEST_F(PathsTest, IoUringOverIpv6) {
  endpoint_config ec;
  ec.receive_path = receive_path::io_uring;
  start(ec, "[::1]:0");
  SKIP_WITHOUT_IO_URING();
  test::udp_client client{endpoint->local_address()};
  for (size_t size : {0, 100, 1452}) {
    auto msg = pattern(size, 31);
    ASSERT_TRUE(client.send(msg));
    auto reply = client.receive();
    ASSERT_TRUE(reply) << size;
    EXPECT_EQ(*reply, msg) << size;
  }
}

TEST_F(PathsTest, IoUringRearmsAfterTheRingRanDry) {
  // 16 slots in the ring (batch 8), 24 in the pool: a handler that keeps
  // every datagram drains the pool, the ring runs dry (-ENOBUFS ends the
  // multishot receive), the kernel queues the rest. Letting go refills the
  // ring and re-arms the receive: every datagram not kept is answered.
  auto cfg = test::small_runtime_config();
  cfg.memory.buffers.standard_capacity = 24;
  auto made = runtime::make(cfg);
  ASSERT_TRUE(made);
  rt = std::move(*made);
  std::mutex mtx;
  std::vector<datagram> kept;
  bool keep = true; // guarded by mtx
  auto& h = rt->add_handler("keeper", [&](handler_context& ctx,
                                          const datagram& d) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (keep) {
        kept.push_back(d);
        return;
      }
    }
    ctx.reply(d.payload);
  });
  endpoint_config ec;
  ec.address = *udp_address::parse("127.0.0.1:0");
  ec.receive_path = receive_path::io_uring;
  ec.batch = 8;
  endpoint = *udp_endpoint::open(*rt, h, ec);
  rt->start();
  SKIP_WITHOUT_IO_URING();
  test::udp_client client{endpoint->local_address()};
  constexpr int total = 60;
  for (int i = 0; i < total; ++i)
    ASSERT_TRUE(client.send("req" + std::to_string(i)));
  for (int i = 0; i < 5000 && net_stats()["uring_ring_empty"] == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_GT(net_stats()["uring_ring_empty"], 0);
  int in_hand;
  {
    std::lock_guard<std::mutex> guard{mtx};
    in_hand = static_cast<int>(kept.size());
    keep = false;
    kept.clear();
  }
  EXPECT_LT(in_hand, total);
  int replies = 0;
  while (replies < total - in_hand && client.receive())
    ++replies;
  EXPECT_EQ(replies, total - in_hand); // nothing lost while dry
  auto st = net_stats();
  EXPECT_GT(st["uring_rearms"], 0);
  EXPECT_EQ(st["kernel_drops"], 0);
  EXPECT_EQ(st["datagrams_in"], total);
}

TEST_F(PathsTest, IoUringFallsBackWhenThePoolCannotFillTheRing) {
  auto cfg = test::small_runtime_config();
  cfg.memory.buffers.standard_capacity = 16; // the ring wants 2 x 32
  endpoint_config ec;
  ec.receive_path = receive_path::io_uring;
  start(ec, "127.0.0.1:0", 1, false, cfg);
  EXPECT_EQ(net_stats()["receive_path"], "recvmmsg");
  test::udp_client client{endpoint->local_address()};
  ASSERT_TRUE(client.send("still served"));
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, "still served");
}

// -- every datagram accounted for ------------------------------------------------------

/// Sends `total` datagrams to an endpoint on `path` whose only handler is
/// stuck, so that the loop pauses and the kernel drops most of them; then
/// lets go. Every datagram must end up either received (and answered) or
/// in `kernel_drops`, with no later traffic needed to reveal the drops.
void expect_every_datagram_accounted_for(std::unique_ptr<runtime>& rt,
                                         udp_endpoint*& endpoint,
                                         receive_path path) {
  auto made = runtime::make(test::small_runtime_config());
  ASSERT_TRUE(made);
  rt = std::move(*made);
  std::atomic<bool> release{false};
  auto& h = rt->add_handler(
    "stuck",
    [&](handler_context& ctx, const datagram& d) {
      while (!release.load())
        std::this_thread::yield();
      ctx.reply(d.payload);
    },
    1);
  endpoint_config ec;
  ec.address = *udp_address::parse("127.0.0.1:0");
  ec.receive_path = path;
  ec.receive_buffer = 16384; // a few dozen datagrams
  // The stuck handler on a worker: the loop pauses at the in-flight bound.
  ec.handler_start = handler_start::workers;
  endpoint = *udp_endpoint::open(*rt, h, ec);
  rt->start();
  auto stats = [&] { return rt->collect_stats()["net"][endpoint->name()]; };
  if (stats()["receive_path"] != to_string(path)) {
    release = true;
    GTEST_SKIP() << to_string(path) << " is unavailable here";
  }
  test::udp_client client{endpoint->local_address(), 300};
  constexpr int total = 2000;
  for (int i = 0; i < total; ++i)
    ASSERT_TRUE(client.send(pattern(100, i)));
  for (int i = 0; i < 2000 && stats()["kernel_drops"] == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  release = true;
  int64_t replies = 0;
  while (client.receive())
    ++replies;
  auto st = stats();
  EXPECT_GT(st["kernel_drops"], 0);
  EXPECT_EQ(st["datagrams_in"].get<int64_t>() + st["kernel_drops"].get<int64_t>(),
            total)
    << st.dump();
  EXPECT_EQ(replies, st["datagrams_in"].get<int64_t>());
}

TEST_F(PathsTest, EveryDatagramIsReceivedOrCountedOnRecvmmsg) {
  expect_every_datagram_accounted_for(rt, endpoint, receive_path::recvmmsg);
}

TEST_F(PathsTest, EveryDatagramIsReceivedOrCountedOnIoUring) {
  expect_every_datagram_accounted_for(rt, endpoint, receive_path::io_uring);
}

} // namespace

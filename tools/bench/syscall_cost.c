/* What a system call costs on this machine, and what batching saves.
 *
 *   cc -O2 -o /tmp/syscall_cost tools/bench/syscall_cost.c && /tmp/syscall_cost
 *
 * Prints, single-threaded on loopback (no other process involved):
 *   - a null system call (getppid through syscall(2), never cached);
 *   - clock_gettime(CLOCK_MONOTONIC): tens of ns if it goes through the
 *     vDSO, a system call's cost if it does not;
 *   - one datagram moved with sendto + recvfrom (two calls per datagram,
 *     how NSD without recvmmsg serves a query);
 *   - the same with sendmmsg + recvmmsg of 64 (two calls per 64).
 * Wall and CPU time per operation. Bounded: fixed counts, about 2 s in all.
 * Used by docs/benchmarks.md, "Why NSD costs more per query here". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { kNullCalls = 1000000, kDatagrams = 200000, kBatch = 64, kPayload = 40 };

static double seconds(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void report(const char* what, double wall0, double cpu0, int count) {
  printf("%-58s %6.0f ns wall, %6.0f ns CPU\n", what,
         (seconds(CLOCK_MONOTONIC) - wall0) / count * 1e9,
         (seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / count * 1e9);
}

int main(void) {
  double wall = seconds(CLOCK_MONOTONIC), cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 0; i < kNullCalls; ++i) syscall(SYS_getppid);
  report("null system call (getppid)", wall, cpu, kNullCalls);

  struct timespec ts;
  long sink = 0;
  wall = seconds(CLOCK_MONOTONIC), cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 0; i < kNullCalls; ++i) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sink += ts.tv_nsec;
  }
  report("clock_gettime(CLOCK_MONOTONIC)", wall, cpu, kNullCalls);

  int sender = socket(AF_INET, SOCK_DGRAM, 0), receiver = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t to_len = sizeof to;
  int rcvbuf = 4 << 20;
  if (sender < 0 || receiver < 0 || bind(receiver, (struct sockaddr*)&to, to_len) != 0 ||
      getsockname(receiver, (struct sockaddr*)&to, &to_len) != 0) {
    perror("loopback sockets");
    return 1;
  }
  setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  char payload[kPayload] = {0};
  static char received[kBatch][2048];

  wall = seconds(CLOCK_MONOTONIC), cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 0; i < kDatagrams; ++i) {
    if (sendto(sender, payload, sizeof payload, 0, (struct sockaddr*)&to, to_len) < 0 ||
        recvfrom(receiver, received[0], sizeof received[0], 0, NULL, NULL) < 0) {
      perror("sendto/recvfrom");
      return 1;
    }
  }
  report("per datagram, sendto + recvfrom (one each)", wall, cpu, kDatagrams);

  struct mmsghdr messages[kBatch];
  struct iovec parts[kBatch];
  wall = seconds(CLOCK_MONOTONIC), cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (int round = 0; round < kDatagrams / kBatch; ++round) {
    memset(messages, 0, sizeof messages);
    for (int k = 0; k < kBatch; ++k) {
      parts[k] = (struct iovec){.iov_base = payload, .iov_len = sizeof payload};
      messages[k].msg_hdr = (struct msghdr){.msg_name = &to, .msg_namelen = to_len,
                                            .msg_iov = &parts[k], .msg_iovlen = 1};
    }
    if (sendmmsg(sender, messages, kBatch, 0) != kBatch) {
      perror("sendmmsg");
      return 1;
    }
    memset(messages, 0, sizeof messages);
    for (int k = 0; k < kBatch; ++k) {
      parts[k] = (struct iovec){.iov_base = received[k], .iov_len = sizeof received[k]};
      messages[k].msg_hdr = (struct msghdr){.msg_iov = &parts[k], .msg_iovlen = 1};
    }
    if (recvmmsg(receiver, messages, kBatch, 0, NULL) != kBatch) {
      perror("recvmmsg");
      return 1;
    }
  }
  report("per datagram, sendmmsg + recvmmsg of 64", wall, cpu, kDatagrams / kBatch * kBatch);
  return (int)(sink & 0);
}

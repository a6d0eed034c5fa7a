# Spread of a 2-thread mayfly-echo endpoint with and without --steer-cpu
# (issue 16 part 3; docs/guide.md, "Steering datagrams to CPUs"):
# two sender processes, pinned to CPU 0 and CPU 1, 4 source ports each,
# 20000 datagrams each at ~10k/s; the per-thread counts come from the stop
# summary ("datagrams in by thread"). Loopback only, bounded (3 runs of
# each, ~2 s apiece). Needs a machine with CPUs 0 and 1.
#
#   python3 tools/reliability/steering_spread.py build/dev/examples/mayfly-echo
import os, re, signal, socket, subprocess, sys, time
ECHO = sys.argv[1]
def run(steer):
    args = [ECHO, "--port", "0", "--receive-threads", "2", "--workers", "1"] + (["--steer-cpu"] if steer else [])
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    port = int(re.search(r"listening on udp [\d.]+:(\d+)", line).group(1))
    kids = []
    for cpu in (0, 1):
        pid = os.fork()
        if pid == 0:
            os.sched_setaffinity(0, {cpu})
            socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
            t0 = time.monotonic()
            for i in range(20000):
                if i % 100 == 0:
                    d = t0 + i / 10000 - time.monotonic()
                    if d > 0: time.sleep(d)
                socks[i % 4].sendto(b"x" * 32, ("127.0.0.1", port))
            os._exit(0)
        kids.append(pid)
    for k in kids: os.waitpid(k, 0)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    m = re.search(r"datagrams in by thread:(.*)", err)
    print("steer" if steer else "hash ", m.group(1) if m else err[-800:])
for r in range(3):
    run(False); run(True)

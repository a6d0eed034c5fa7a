#!/usr/bin/env python3
"""Tally under flood and at a fixed rate, the bare loop measured in the same run.

  tools/bench/tally_flood.py [build-dir] [repetitions]   (default build/release, 3)

Environment: BENCH_SECONDS (default 4) per flood, TALLY_NAMES (10000),
TALLY_LINES (45), TALLY_NAME_BYTES (26: ~1400-byte datagrams), TALLY_RATE
(10000 datagrams/s for the fixed-rate part), TALLY_EXTRA (a further
mayfly-tally binary to measure in the same run, e.g. the previous commit's),
TALLY_ONLY (flood,fixed).

Two methods (issue 14), each server alone on the machine while it runs:

- flood: mayfly-flood sends open loop at its maximum for S seconds.
  processed lines/s = (datagrams sent - kernel drops on the server's port,
  from /proc/net/udp) x lines per datagram / (time from the first datagram
  until '?*' returned the final totals). The totals must be exact:
  sum == processed lines (every value is 1), keys == names.
- fixed: mayfly-flood at TALLY_RATE datagrams/s for S seconds; server CPU as
  % of one core = (utime + stime delta, /proc/PID/stat) / wall time over the
  same interval; totals exact.

Peak RSS: VmHWM of the server (/proc/PID/status) after '?*'. Every server
exits by itself (--exit-after) and is killed after its measurement; every
flood is bounded (--seconds). Loopback only. Prints one line per run and the
medians.
"""

import os
import socket
import statistics
import subprocess
import sys
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build/release"
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
secs = float(os.environ.get("BENCH_SECONDS", "4"))
names = int(os.environ.get("TALLY_NAMES", "10000"))
lines = int(os.environ.get("TALLY_LINES", "45"))
name_bytes = int(os.environ.get("TALLY_NAME_BYTES", "26"))
rate = int(os.environ.get("TALLY_RATE", "10000"))
only = os.environ.get("TALLY_ONLY", "flood,fixed")
tick = os.sysconf("SC_CLK_TCK")

servers = [("bare", f"{build}/tools/mayfly-raw-tally"),
           ("mayfly", f"{build}/examples/mayfly-tally")]
if os.environ.get("TALLY_EXTRA"):
    servers.append(("extra", os.environ["TALLY_EXTRA"]))
flood_bin = f"{build}/tools/reliability/mayfly-flood"


def udp_drops(port):
    """Kernel drops of the UDP socket bound to 127.0.0.1:port."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        for row in f.readlines()[1:]:
            cols = row.split()
            if cols[1] == want:
                return int(cols[-1])
    return 0


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def vm_hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for row in f:
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    return 0.0


def ask(port, query, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    s.send(query)
    try:
        return s.recv(200).decode()
    except (socket.timeout, ConnectionRefusedError):
        return None
    finally:
        s.close()


def rx_queue(port):
    """Bytes waiting in the receive queue of 127.0.0.1:port."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        for row in f.readlines()[1:]:
            cols = row.split()
            if cols[1] == want:
                return int(cols[4].split(":")[1], 16)
    return 0


def summary(port):
    """'?*' until it answers (bounded: 60 s); (keys, sum) or None. Asks
    once the server's socket queue is empty (polled every 2 ms), so that
    the query is not itself dropped by a full queue (it would count as a
    kernel drop of an ingest datagram)."""
    deadline = time.time() + 60
    while rx_queue(port) > 0 and time.time() < deadline:
        time.sleep(0.002)
    while time.time() < deadline:
        r = ask(port, b"?*\n", 10)
        if r:
            kv = dict(x.split(":") for x in r.split())
            return int(kv["keys"]), int(kv["sum"])
    return None


def start(binary, port):
    proc = subprocess.Popen([binary, "--port", str(port), "--exit-after",
                             str(int(secs * 3 + 60))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):  # bounded: 10 s
        if ask(port, b"?*\n", 0.1):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{binary} did not answer on {port}")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(binary, port, flood_rate):
    proc = start(binary, port)
    _, base_sum = summary(port)  # the probes' nothing: 0
    drops0 = udp_drops(port)
    cpu0 = cpu_ticks(proc.pid)
    t0 = time.time()
    out = subprocess.run([flood_bin, "tally", "--target", f"127.0.0.1:{port}",
                          "--rate", str(flood_rate), "--seconds", str(secs),
                          "--names", str(names), "--lines", str(lines),
                          "--name-bytes", str(name_bytes)],
                         capture_output=True, text=True, timeout=secs + 30)
    sent = int(out.stdout.split('"sent":')[1].split(",")[0])
    got = summary(port)
    t1 = time.time()
    cpu1 = cpu_ticks(proc.pid)
    drops = udp_drops(port) - drops0
    rss = vm_hwm_mb(proc.pid)
    stop(proc)
    processed = (sent - drops) * lines
    exact = got is not None and got[1] - base_sum == processed \
        and (drops > 0 or got[0] == names)
    return {"sent": sent, "drops": drops, "lines_per_s": processed / (t1 - t0),
            "exact": exact, "totals": got, "rss_mb": rss, "seconds": t1 - t0,
            "cpu_pct": 100.0 * (cpu1 - cpu0) / tick / (t1 - t0)}


def med(xs):
    return statistics.median(xs) if xs else 0.0


print(f"machine: {os.cpu_count()} cpus, load average before: "
      f"{open('/proc/loadavg').read().split()[:3]}")
print(f"datagrams of {lines} lines, names of {name_bytes} bytes, "
      f"{names} names, {secs} s per run, {reps} runs")
port = 19500
if "flood" in only:
    res = {n: [] for n, _ in servers}
    for r in range(reps):
        for name, binary in servers:
            port += 1
            x = run(binary, port, 0)
            res[name].append(x)
            print(f"flood run {r + 1} {name}: {x['lines_per_s'] / 1e6:.2f}M lines/s "
                  f"(sent {x['sent']} datagrams, kernel drops {x['drops']}, "
                  f"{x['seconds']:.2f} s to the final '?*'), exact {x['exact']}, "
                  f"peak RSS {x['rss_mb']:.1f} MB, cpu {x['cpu_pct']:.0f}%", flush=True)
    bare = med([x["lines_per_s"] for x in res["bare"]])
    for name, _ in servers:
        m = med([x["lines_per_s"] for x in res[name]])
        print(f"flood MEDIAN {name}: {m / 1e6:.2f}M lines/s, x bare {m / bare:.2f}, "
              f"peak RSS {med([x['rss_mb'] for x in res[name]]):.1f} MB, "
              f"all exact {all(x['exact'] for x in res[name])}")
if "fixed" in only:
    res = {n: [] for n, _ in servers}
    for r in range(reps):
        for name, binary in servers:
            port += 1
            x = run(binary, port, rate)
            res[name].append(x)
            print(f"fixed {rate}/s run {r + 1} {name}: cpu {x['cpu_pct']:.1f}% of a core, "
                  f"exact {x['exact']} (drops {x['drops']}), "
                  f"peak RSS {x['rss_mb']:.1f} MB", flush=True)
    bare = med([x["cpu_pct"] for x in res["bare"]])
    for name, _ in servers:
        m = med([x["cpu_pct"] for x in res[name]])
        print(f"fixed {rate}/s MEDIAN {name}: cpu {m:.1f}% of a core, "
              f"x bare {m / max(bare, 0.01):.2f}, "
              f"all exact {all(x['exact'] for x in res[name])}")
print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")

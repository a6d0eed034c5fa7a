#!/usr/bin/env python3
"""Helpers of overload.sh and soak.sh: read a mayfly stats endpoint.

  stats.py get ADDR FILE            GET /stats into FILE; prints the seconds
                                    it took, or "fail" (no 200 within 2 s)
  stats.py field FILE EXPR...       Python expressions over the document `s`
                                    (`udp`: the UDP endpoint's section, `h`:
                                    the handler type's, `quiet()`), printed
                                    on one line separated by spaces
  stats.py quiet ADDR SECONDS       polls until nothing is outstanding;
                                    prints the seconds it took or "timeout"
  stats.py rate ADDR SECONDS         handlers finished per second on the
                                    server over SECONDS (server uptime)
  stats.py sample PID ADDR WATCH_PID MAX_S OUT
                                    every second until WATCH_PID ends (at
                                    most MAX_S): RSS of PID, GET /stats
                                    latency, in_flight and drops, one line
                                    each into OUT; prints a JSON summary

Only loopback addresses; every wait is bounded.
"""
import json
import os
import sys
import time
import urllib.request

TIMEOUT = float(os.environ.get("STATS_TIMEOUT", "2"))


def fetch(addr):
    """(document or None, seconds)."""
    host = addr.rsplit(":", 1)[0]
    if not (host.startswith("127.") or host == "[::1]"):
        sys.exit("stats.py: loopback addresses only")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://{addr}/stats", timeout=TIMEOUT) as r:
            body = r.read()
            if r.status != 200:
                return None, time.monotonic() - start
        took = time.monotonic() - start
        return json.loads(body), took
    except Exception:
        return None, time.monotonic() - start


def quiet(s):
    """Nothing outstanding but what the endpoint keeps for itself: 32 ready
    receive slots per receive thread and a partly filled send buffer per
    worker (as tests/integration/wire/wire_support.hpp). mayfly-tally's
    aggregators keep one detached name per key: a slice over a dedicated
    binary each, so live slices must equal dedicated binaries."""
    b = s["runtime"]["balance"]
    reserve = s["runtime"]["workers"] + sum(
        32 * v["receive_threads"] for k, v in s["net"].items() if k.startswith("udp:"))
    return (b["handlers"] == 0 and b["arenas_out"] == 0 and b["arena_blocks"] == 0
            and b["slices_live"] == s["binaries"]["dedicated_live"]
            and s["runtime"]["in_flight"] == 0
            and s["pools"]["standard"]["in_use"] <= reserve
            and s["pools"].get("jumbo", {}).get("in_use", 0) == 0
            and ("tally" in s["handlers"] or s["binaries"]["dedicated_live"] == 0))


def udp_of(s):
    return next(v for k, v in s["net"].items() if k.startswith("udp:"))


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def main(argv):
    cmd = argv[1]
    if cmd == "get":
        doc, took = fetch(argv[2])
        if doc is None:
            print("fail")
            return
        with open(argv[3], "w") as f:
            json.dump(doc, f)
        print(f"{took:.4f}")
    elif cmd == "field":
        s = json.load(open(argv[2]))
        env = {"s": s, "udp": udp_of(s), "h": next(iter(s["handlers"].values())),
               "quiet": lambda: quiet(s)}
        print(" ".join(str(eval(e, env)) for e in argv[3:]))
    elif cmd == "quiet":
        addr, limit = argv[2], float(argv[3])
        start = time.monotonic()
        while time.monotonic() - start < limit:
            doc, _ = fetch(addr)
            if doc is not None and quiet(doc):
                print(f"{time.monotonic() - start:.1f}")
                return
            time.sleep(0.2)
        print("timeout")
    elif cmd == "rate":
        addr, secs = argv[2], float(argv[3])
        a, _ = fetch(addr)
        time.sleep(secs)
        b, _ = fetch(addr)
        if a is None or b is None:
            print(0)
            return
        fa = sum(h["finished"] for h in a["handlers"].values())
        fb = sum(h["finished"] for h in b["handlers"].values())
        print(int((fb - fa) / (b["runtime"]["uptime_s"] - a["runtime"]["uptime_s"])))
    elif cmd == "sample":
        pid, addr, watch, max_s, out = int(argv[2]), argv[3], int(argv[4]), float(argv[5]), argv[6]
        start = time.monotonic()
        n = fails = 0
        max_rss = max_ms = peak_if = 0
        rss_series = []
        with open(out, "w") as f:
            f.write("t_s rss_MiB stats_ms in_flight kernel_drops policy_drops datagrams_in\n")
            next_at = start + 1
            while n == 0 or (alive(watch) and time.monotonic() - start < max_s):
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += 1
                rss = rss_kb(pid)
                max_rss = max(max_rss, rss)
                rss_series.append(rss)
                doc, took = fetch(addr)
                n += 1
                t = time.monotonic() - start
                if doc is None:
                    fails += 1
                    f.write(f"{t:.0f} {rss / 1024:.1f} fail - - - -\n")
                    continue
                ms = took * 1000
                max_ms = max(max_ms, ms)
                u = udp_of(doc)
                peak_if = max(peak_if, doc["runtime"]["in_flight"])
                f.write(f"{t:.0f} {rss / 1024:.1f} {ms:.1f} {doc['runtime']['in_flight']} "
                        f"{u['kernel_drops']} {u['policy_drops']} {u['datagrams_in']}\n")
                f.flush()
        print(json.dumps({"samples": n, "stats_failures": fails, "max_rss_kb": max_rss,
                          "max_stats_ms": round(max_ms, 1), "peak_in_flight": peak_if,
                          "rss_mib": [round(r / 1024) for r in rss_series]}))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

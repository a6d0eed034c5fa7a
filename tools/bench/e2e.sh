#!/usr/bin/env bash
# End-to-end benchmarks on loopback, each alternative measured in the same
# run, repeated; prints one line per run and the medians. Bounded: every
# server exits by itself (--exit-after) and every load run has a time limit.
#
#   tools/bench/e2e.sh [build-dir] [repetitions]   (default build/release, 3)
#
# Needs: the release build (examples + tools), and for DNS: dnsperf and nsd
# (Debian packages). Results go to stdout; docs/benchmarks.md has them.
set -euo pipefail
build=${1:-build/release}
reps=${2:-3}
ex=$build/examples
tools=$build/tools
secs=${BENCH_SECONDS:-4}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
json_field() { python3 -c "import json,sys; print(json.loads(sys.stdin.readlines()[-1])['$1'])"; }

wait_port() { # port: wait until something answers on UDP (bounded)
  for _ in $(seq 50); do
    if python3 - "$1" <<'PY' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.1)
s.connect(("127.0.0.1", int(sys.argv[1]))); s.send(b"?*\n"); s.recv(100)
PY
    sleep 0.1
  done
}

echo "machine: $(nproc) cpus, $(lscpu | sed -n 's/Model name: *//p'), kernel $(uname -r)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

only=${E2E_ONLY:-echo,tally,dns} # which parts to run

# -- echo: raw recvmmsg/sendmmsg loop vs mayfly (a handler actor per datagram)
[[ $only == *echo* ]] && for size in 64 512; do
  for window in 64 1; do
    raw=(); mf=(); mf_p99=(); raw_p99=()
    for r in $(seq "$reps"); do
      "$tools/mayfly-raw-echo" --port 19200 --exit-after $((2 * secs + 3)) >/dev/null 2>&1 &
      "$ex/mayfly-echo" --port 19201 --exit-after $((2 * secs + 3)) >/dev/null 2>&1 &
      sleep 1
      out=$("$tools/mayfly-load" echo --target 127.0.0.1:19200 --size $size --window $window --requests 100000000 --seconds $secs 2>/dev/null)
      raw+=("$(echo "$out" | json_field replies_per_s)"); raw_p99+=("$(echo "$out" | json_field p99_us)")
      out=$("$tools/mayfly-load" echo --target 127.0.0.1:19201 --size $size --window $window --requests 100000000 --seconds $secs 2>/dev/null)
      mf+=("$(echo "$out" | json_field replies_per_s)"); mf_p99+=("$(echo "$out" | json_field p99_us)")
      wait
      echo "echo ${size}B W=$window run $r: raw ${raw[-1]}/s (p99 ${raw_p99[-1]} us), mayfly ${mf[-1]}/s (p99 ${mf_p99[-1]} us)"
    done
    r_med=$(printf '%s\n' "${raw[@]}" | median); m_med=$(printf '%s\n' "${mf[@]}" | median)
    echo "echo ${size}B W=$window MEDIAN: raw $r_med/s, mayfly $m_med/s, ratio $(python3 -c "print(round($m_med/$r_med,3))"); p99 us raw $(printf '%s\n' "${raw_p99[@]}" | median) mayfly $(printf '%s\n' "${mf_p99[@]}" | median)"
  done
done

# -- latency: the cost of the latency histograms (docs/benchmarks.md, "Cost of
# the latency histograms"): echo 64 B through the bare loop, mayfly-echo with
# the histograms on (the default) and off (runtime.latency_histograms: false),
# in the same run. Opt-in: E2E_ONLY=latency.
if [[ $only == *latency* ]]; then
  off=$(mktemp --suffix=.json)
  echo '{"runtime": {"latency_histograms": false}}' >"$off"
  load_echo() { # port window -> "rate p99"
    local out
    out=$("$tools/mayfly-load" echo --target "127.0.0.1:$1" --size 64 \
      --window "$2" --requests 100000000 --seconds "$secs" 2>/dev/null)
    echo "$(echo "$out" | json_field replies_per_s) $(echo "$out" | json_field p99_us)"
  }
  for window in ${LATENCY_WINDOWS:-64 1}; do
    raw=(); on=(); offr=()
    for r in $(seq "$reps"); do
      life=$((3 * secs + 4))
      "$tools/mayfly-raw-echo" --port 19210 --exit-after $life >/dev/null 2>&1 &
      "$ex/mayfly-echo" --port 19211 --exit-after $life >/dev/null 2>&1 &
      "$ex/mayfly-echo" --port 19212 --config "$off" --exit-after $life >/dev/null 2>&1 &
      sleep 1
      # On and off swap places every run: a machine whose load changes
      # during a run favours neither.
      read -r a ap <<<"$(load_echo 19210 "$window")"
      if ((r % 2)); then
        read -r b bp <<<"$(load_echo 19211 "$window")"
        read -r c cp <<<"$(load_echo 19212 "$window")"
      else
        read -r c cp <<<"$(load_echo 19212 "$window")"
        read -r b bp <<<"$(load_echo 19211 "$window")"
      fi
      wait
      raw+=("$a"); on+=("$b"); offr+=("$c")
      echo "latency 64B W=$window run $r: raw $a/s (p99 $ap us), histograms on $b/s (p99 $bp us), off $c/s (p99 $cp us)"
    done
    r_med=$(printf '%s\n' "${raw[@]}" | median)
    on_med=$(printf '%s\n' "${on[@]}" | median)
    off_med=$(printf '%s\n' "${offr[@]}" | median)
    echo "latency 64B W=$window MEDIAN: raw $r_med/s, on $on_med/s, off $off_med/s, on/off $(python3 -c "print(round($on_med/$off_med,3))"), on/raw $(python3 -c "print(round($on_med/$r_med,3))")"
  done
  rm -f "$off"
fi

# -- tally: highest rate with exact totals (kept: docs/benchmarks.md's
# earlier figures use it), raw inline loop vs mayfly. Start
# flat out; while totals differ (kernel drops), retry at 85% of the rate
# that was achieved (the found rate is within 15% of the highest exact one).
tally_max() { # server-binary port -> prints lines/s at the best exact rate
  "$1" --port "$2" --exit-after $((secs * 14 + 20)) >/dev/null 2>&1 &
  local pid=$! rate=0 out exact lps dps
  wait_port "$2"
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    out=$("$tools/mayfly-load" tally --target 127.0.0.1:"$2" --datagrams 100000000 --seconds $secs --rate $rate 2>/dev/null || true)
    exact=$(echo "$out" | json_field exact); lps=$(echo "$out" | json_field lines_per_s)
    dps=$(echo "$out" | json_field datagrams_per_s)
    echo "  $(basename "$1") attempt $attempt rate ${rate:-0}: $lps lines/s, exact $exact" >&2
    if [[ $exact == True ]]; then echo "$lps"; kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; return 0; fi
    rate=$(python3 -c "print(int($dps*0.85))")
  done
  echo 0; kill $pid 2>/dev/null; wait $pid 2>/dev/null || true
}
raw=(); mf=()
[[ $only == *tally* ]] && for r in $(seq "$reps"); do
  raw+=("$(tally_max "$tools/mayfly-raw-tally" 19300)")
  mf+=("$(tally_max "$ex/mayfly-tally" 19301)")
  echo "tally run $r: raw ${raw[-1]} lines/s, mayfly ${mf[-1]} lines/s (highest exact rates)"
done
[[ $only == *tally* ]] && r_med=$(printf '%s\n' "${raw[@]}" | median) && m_med=$(printf '%s\n' "${mf[@]}" | median) &&
echo "tally exact MEDIAN: raw $r_med lines/s, mayfly $m_med lines/s, ratio $(python3 -c "print(round($m_med/max($r_med,1),3))")"
# -- tally under flood and at a fixed rate (issue 14's methods), the bare
# loop in the same run: tools/bench/tally_flood.py (bounded, loopback).
[[ $only == *tally* ]] && BENCH_SECONDS=$secs "$(dirname "$0")/tally_flood.py" "$build" "$reps"
# -- dns: mayfly-dns vs NSD serving the same zone, dnsperf as the client.
# NSD is configured as its operators would for this test, at its best on
# one core (the configuration below is printed with the figures): one
# server process, no reuseport, no rate limiting, no database, no zone
# checks, 4 MiB socket buffers. The two servers run one at a time; each
# run reports queries/s (dnsperf -q 64 -c 1), the server's CPU seconds over
# that run (utime+stime of every process of the server, from /proc), and
# at a fixed 20,000 q/s (mayfly-load dns --rate) the p50/p99 latency.
# NSD=/path/to/nsd measures another NSD build (default: the one on PATH, the
# Debian package). How it was built matters here: Debian's (and upstream's
# default) build has no recvmmsg/sendmmsg, so NSD makes one recvfrom and one
# sendto per query, and a system call costs about 1 us in this VM
# (docs/benchmarks.md, "Why NSD costs more per query here").
nsd_bin=${NSD:-nsd}
if [[ $only == *dns* ]] && command -v "$nsd_bin" >/dev/null && command -v dnsperf >/dev/null && [[ -x $ex/mayfly-dns ]]; then
  here=$(cd "$(dirname "$0")" && pwd)
  nsdir=$(mktemp -d)
  cp "$here/../../examples/dns/example.zone" "$nsdir/"
  cat >"$nsdir/nsd.conf" <<NSD
server:
  ip-address: 127.0.0.1@19401
  server-count: 1
  reuseport: no
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  verbosity: 0
  database: ""
  zonefiles-check: no
  receive-buffer-size: 4194304
  send-buffer-size: 4194304
  username: ""
  chroot: ""
  zonesdir: "$nsdir"
  pidfile: "$nsdir/nsd.pid"
  xfrdfile: "$nsdir/xfrd.state"
  zonelistfile: "$nsdir/zone.list"
remote-control:
  control-enable: no
zone:
  name: example.test
  zonefile: example.zone
NSD
  echo "nsd $("$nsd_bin" -v 2>&1 | head -1 | awk '{print $3}') ($nsd_bin), built with:$("$nsd_bin" -v 2>&1 | grep -o -e '--[a-z]*-recvmmsg' -e '--[a-z]*-checking' | tr '\n' ' ' | sed 's/^/ /')"
  echo "configuration:"; sed -n '/^server:/,/send-buffer/p' "$nsdir/nsd.conf" | sed 's/^/  /'
  qps() { dnsperf -s 127.0.0.1 -p "$1" -d "$here/dns_queries.txt" -l "$secs" -q 64 -c 1 2>/dev/null \
            | sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p'; }
  tree() { local p; for p in "$@"; do echo "$p"; tree $(pgrep -P "$p"); done; }
  cpu_ticks() { # pid -> utime+stime ticks of it and all its descendants
    local t=0 p
    for p in $(tree "$1"); do
      # (fields after the command name: NSD's titles contain spaces)
      [[ -r /proc/$p/stat ]] && t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo $t
  }
  measure() { # port pid -> "qps cpu_s p50 p99"
    local c0 c1 q lat
    c0=$(cpu_ticks "$2"); q=$(qps "$1"); c1=$(cpu_ticks "$2")
    lat=$("$tools/mayfly-load" dns --target 127.0.0.1:"$1" --queries "$here/dns_queries.txt" \
          --rate 20000 --window 1000 --requests 100000000 --seconds "$secs" 2>/dev/null | tail -1)
    echo "$q $(python3 -c "print(round(($c1-$c0)/$(getconf CLK_TCK),2))") \
$(echo "$lat" | json_field p50_us) $(echo "$lat" | json_field p99_us)"
  }
  nsd_q=(); mf_q=(); nsd_e=(); mf_e=(); nsd_p99=(); mf_p99=()
  for r in $(seq "$reps"); do
    timeout $((3 * secs + 10)) "$nsd_bin" -d -c "$nsdir/nsd.conf" >/dev/null 2>&1 &
    pid=$!; sleep 1.5
    read -r q c p50 p99 < <(measure 19401 "$pid")
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    nsd_q+=("$q"); nsd_e+=("$(python3 -c "print(round($q*$secs/max($c,0.01)))")"); nsd_p99+=("$p99")
    echo "dns run $r: nsd $q q/s, ${c} CPU-s in ${secs} s ($(python3 -c "print(round(100*$c/$secs))")% of a core), ${nsd_e[-1]} q per CPU-s; at 20k q/s p50 $p50 us p99 $p99 us"
    "$ex/mayfly-dns" --zone "$here/../../examples/dns/example.zone" --port 19402 \
      --exit-after $((3 * secs + 10)) >/dev/null 2>&1 &
    pid=$!; sleep 1.5
    read -r q c p50 p99 < <(measure 19402 "$pid")
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    mf_q+=("$q"); mf_e+=("$(python3 -c "print(round($q*$secs/max($c,0.01)))")"); mf_p99+=("$p99")
    echo "dns run $r: mayfly $q q/s, ${c} CPU-s in ${secs} s ($(python3 -c "print(round(100*$c/$secs))")% of a core), ${mf_e[-1]} q per CPU-s; at 20k q/s p50 $p50 us p99 $p99 us"
  done
  n_med=$(printf '%s\n' "${nsd_q[@]}" | median); m_med=$(printf '%s\n' "${mf_q[@]}" | median)
  ne_med=$(printf '%s\n' "${nsd_e[@]}" | median); me_med=$(printf '%s\n' "${mf_e[@]}" | median)
  echo "dns MEDIAN: nsd $n_med q/s, mayfly $m_med q/s, ratio $(python3 -c "print(round($m_med/max($n_med,1),3))"); per CPU-s nsd $ne_med mayfly $me_med ratio $(python3 -c "print(round($me_med/max($ne_med,1),3))"); p99 at 20k q/s nsd $(printf '%s\n' "${nsd_p99[@]}" | median) us mayfly $(printf '%s\n' "${mf_p99[@]}" | median) us"
  rm -rf "$nsdir"
else
  echo "dns: skipped (needs nsd, dnsperf and mayfly-dns)"
fi

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

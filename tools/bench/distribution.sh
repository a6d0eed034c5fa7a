#!/usr/bin/env bash
# The cost of a remote forward next to a local one (docs/design/distribution.md).
#
#   tools/bench/distribution.sh BUILD_DIR [REPETITIONS] [DATAGRAMS] [RATE]
#
# Runs mayfly-tally two ways in the same session, alternating, REPETITIONS
# times (default 3):
#   local  - one process: handlers forward to local aggregators;
#   remote - an ingest node forwarding to an aggregator node on 127.0.0.1
#            over CAF's middleman (BASP over TCP).
# Each run sends DATAGRAMS (default 20000) tally datagrams of 40 lines at
# RATE datagrams/s (default 5000: below saturation, so that nothing is
# dropped and the totals are exact) with mayfly-load, then reads the CPU
# time the server process(es) used from /proc (utime + stime) and prints
# CPU nanoseconds per line: the total, and for the remote case each node's
# share. Each process's idle CPU over as long a quiet interval, measured just
# before, is printed too (idle_ns: what its threads cost per line's worth of
# time while nothing arrives) and subtracted in the net_ns figures. Medians
# and ranges at the end. Loopback only; every run is bounded.
set -euo pipefail

build=${1:?usage: distribution.sh BUILD_DIR [REPETITIONS] [DATAGRAMS] [RATE]}
reps=${2:-3}
datagrams=${3:-20000}
rate=${4:-5000}
tally=$build/examples/mayfly-tally
load=$build/tools/mayfly-load
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # FILE SED-EXPR: first match, up to 20 s
  local hit=
  for _ in $(seq 1 200); do
    hit=$(sed -n "$2" "$1" 2>/dev/null | head -n1)
    [[ -n $hit ]] && { echo "$hit"; return 0; }
    sleep 0.1
  done
  echo "timed out waiting for $2 in $1" >&2
  cat "$1" >&2
  exit 1
}

cpu_ticks() { # PID: utime + stime in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

run_load() { # UDP-PORT -> prints "lines exact"
  "$load" tally --target "127.0.0.1:$1" --datagrams "$datagrams" \
    --rate "$rate" --names 1000 --seconds 60 >"$work/load.log" 2>&1 || true
  jq -r '"\(.lines) \(.exact)"' <<<"$(grep '^{' "$work/load.log" | tail -n1)"
}

hz=$(getconf CLK_TCK)
quiet_s=$(( (datagrams + rate - 1) / rate ))
results=()

one_local() {
  "$tally" --workers 2 --port 0 >"$work/local.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local udp
  udp=$(wait_for "$work/local.log" 's|.*listening on udp 127\.0\.0\.1:\([0-9]*\) .*|\1|p')
  local q0 t0 r t1
  q0=$(cpu_ticks "$pid"); sleep "$quiet_s"
  t0=$(cpu_ticks "$pid")
  r=$(run_load "$udp")
  t1=$(cpu_ticks "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  local lines=${r% *}
  local ns=$(( (t1 - t0) * 1000000000 / hz / lines ))
  local idle=$(( (t0 - q0) * 1000000000 / hz / lines ))
  echo "local  lines=$lines exact=${r#* } cpu_ns_per_line=$ns idle_ns=$idle net_ns=$((ns - idle))"
}

one_remote() {
  "$tally" --workers 2 --port 0 --publish 0 --plaintext 1 >"$work/agg.log" 2>&1 &
  local agg=$!
  pids+=("$agg")
  local tcp
  tcp=$(wait_for "$work/agg.log" 's|.*aggregators published on tcp 127\.0\.0\.1:\([0-9]*\)$|\1|p')
  "$tally" --workers 2 --port 0 --aggregators "127.0.0.1:$tcp" --plaintext 1 \
    >"$work/ingest.log" 2>&1 &
  local ing=$!
  pids+=("$ing")
  local udp
  udp=$(wait_for "$work/ingest.log" 's|.*listening on udp 127\.0\.0\.1:\([0-9]*\) .*|\1|p')
  wait_for "$work/ingest.log" 's|.*\(connected to the aggregator node\).*|\1|p' >/dev/null
  local qa qi a0 i0 r a1 i1
  qa=$(cpu_ticks "$agg"); qi=$(cpu_ticks "$ing"); sleep "$quiet_s"
  a0=$(cpu_ticks "$agg"); i0=$(cpu_ticks "$ing")
  r=$(run_load "$udp")
  a1=$(cpu_ticks "$agg"); i1=$(cpu_ticks "$ing")
  kill -TERM "$ing" "$agg"; wait "$ing" || true; wait "$agg" || true
  local lines=${r% *}
  local ing_ns=$(( (i1 - i0) * 1000000000 / hz / lines ))
  local agg_ns=$(( (a1 - a0) * 1000000000 / hz / lines ))
  local idle=$(( (a0 - qa + i0 - qi) * 1000000000 / hz / lines ))
  local total=$((ing_ns + agg_ns))
  echo "remote lines=$lines exact=${r#* } cpu_ns_per_line=$total ingest=$ing_ns aggregator=$agg_ns idle_ns=$idle net_ns=$((total - idle))"
}

for i in $(seq 1 "$reps"); do
  results+=("$(one_local)")
  echo "${results[-1]}"
  results+=("$(one_remote)")
  echo "${results[-1]}"
done

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s (range %s-%s)", m, a[1], a[NR]}'; }
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p"; }
echo "median local  cpu ns/line: $(printf '%s\n' "${results[@]}" | grep '^local' | field cpu_ns_per_line | median)"
echo "median remote cpu ns/line: $(printf '%s\n' "${results[@]}" | grep '^remote' | field cpu_ns_per_line | median)"
echo "  of which ingest:         $(printf '%s\n' "${results[@]}" | grep '^remote' | field ingest | median)"
echo "  of which aggregator:     $(printf '%s\n' "${results[@]}" | grep '^remote' | field aggregator | median)"
echo "median local  net ns/line (idle subtracted): $(printf '%s\n' "${results[@]}" | grep '^local' | field net_ns | median)"
echo "median remote net ns/line (idle subtracted): $(printf '%s\n' "${results[@]}" | grep '^remote' | field net_ns | median)"

#!/usr/bin/env bash
# integration.Distribution: two mayfly-tally processes on 127.0.0.1, an
# ingest node forwarding over CAF's middleman to an aggregator node, over
# mutual TLS with throwaway certificates made at run time.
#
#   distribution_test.sh TALLY LOAD OUTDIR CERTS-SCRIPT
#
# 1. Exact totals across the two processes: mayfly-load sends tally traffic
#    to the ingest node and checks '?*' (answered by the remote aggregators)
#    against what it sent.
# 2. The aggregator process is killed (SIGKILL) in the middle of a run and
#    restarted on the same TCP port: the ingest node survives, counts the
#    disconnect, routes nothing while it is down (lines counted as
#    unrouted), reconnects with backoff, and the counts add up: every line
#    the ingest node parsed was forwarded or counted unrouted, and every line
#    forwarded over the new connection was applied by the new aggregators.
# 3. Exact totals again after the restart; both processes stop cleanly with
#    all balances zero.
#
# Loopback only (UDP and TCP ports chosen by the kernel); every wait is
# bounded. Needs curl and jq (checked by CMake).
set -euo pipefail

tally=${1:?usage: distribution_test.sh TALLY LOAD OUTDIR}
load=${2:?usage: distribution_test.sh TALLY LOAD OUTDIR}
out=${3:?usage: distribution_test.sh TALLY LOAD OUTDIR CERTS-SCRIPT}
certs_script=${4:?usage: distribution_test.sh TALLY LOAD OUTDIR CERTS-SCRIPT}
mkdir -p "$out"
rm -f "$out"/*.log
# Throwaway CA and node keys, removed at exit: never committed.
certs=$(mktemp -d)
"$certs_script" "$certs" aggregator ingest >/dev/null
tls() { # NODE
  echo --tls-cert "$certs/$1.pem" --tls-key "$certs/$1.key" --tls-ca "$certs/ca.pem"
}

pids=()
fail() {
  echo "FAIL: $*" >&2
  for f in "$out"/*.log; do
    [[ -f $f ]] && sed "s|^|$(basename "$f"): |" "$f" >&2
  done
  exit 1
}

cleanup() {
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$certs"
}
trap cleanup EXIT

# wait_for FILE SED-EXPRESSION PID: prints the first match (up to 30 s:
# sanitizer builds start slowly).
wait_for() {
  local file=$1 expr=$2 pid=$3 hit=
  for _ in $(seq 1 300); do
    hit=$(sed -n "$expr" "$file" 2>/dev/null | head -n1)
    [[ -n $hit ]] && { echo "$hit"; return 0; }
    kill -0 "$pid" 2>/dev/null || fail "process $pid exited while waiting for $expr in $file"
    sleep 0.1
  done
  fail "timed out waiting for $expr in $file"
}

# stat URL JQ-FILTER
stat() {
  curl -s --max-time 5 "$1/stats" | jq -r "$2"
}

# until_stat URL JQ-FILTER VALUE: waits up to 20 s for the value.
until_stat() {
  local v=
  for _ in $(seq 1 200); do
    v=$(stat "$1" "$2" || true)
    [[ $v == "$3" ]] && return 0
    sleep 0.1
  done
  fail "$2 at $1 is '$v', expected '$3'"
}

start_aggregator() { # LOGNAME PUBLISH-PORT
  # shellcheck disable=SC2046
  "$tally" --workers 2 --port 0 --publish "$2" --stats 127.0.0.1:0 \
    $(tls aggregator) >"$out/$1.log" 2>&1 &
  agg_pid=$!
  pids+=("$agg_pid")
  tcp=$(wait_for "$out/$1.log" \
    's|.*aggregators published on tcp 127\.0\.0\.1:\([0-9]*\)$|\1|p' "$agg_pid")
  grep -q 'protected by: TLS, mutual authentication' "$out/$1.log" \
    || fail "the aggregator node does not say its port is behind mutual TLS"
  agg_stats=http://$(wait_for "$out/$1.log" \
    's|.*statistics on http://\([0-9.:]*\)/.*|\1|p' "$agg_pid")
}

lines_sent() { # the load generator's JSON line
  jq -r '.lines' <<<"$(grep '^{' "$1" | tail -n1)"
}

# -- the two nodes ------------------------------------------------------------------
start_aggregator aggregator1 0
first_agg=$agg_pid
# shellcheck disable=SC2046
"$tally" --workers 2 --port 0 --aggregators "127.0.0.1:$tcp" \
  --stats 127.0.0.1:0 $(tls ingest) >"$out/ingest.log" 2>&1 &
ingest_pid=$!
pids+=("$ingest_pid")
udp=$(wait_for "$out/ingest.log" \
  's|.*listening on udp 127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$ingest_pid")
ingest_stats=http://$(wait_for "$out/ingest.log" \
  's|.*statistics on http://\([0-9.:]*\)/.*|\1|p' "$ingest_pid")
until_stat "$ingest_stats" .tally.remote.connected true
echo "aggregator node on tcp $tcp, ingest node on udp $udp"

# -- 1. exact totals across the processes --------------------------------------------
"$load" tally --target "127.0.0.1:$udp" --datagrams 3000 --rate 20000 \
  --names 500 --seconds 30 >"$out/load1.log" 2>&1 \
  || fail "phase 1: totals differ across the two processes"
grep -q 'totals exact' "$out/load1.log" || fail "phase 1: no exact totals"
sent=$(lines_sent "$out/load1.log")
echo "phase 1: $sent lines, exact totals through the remote aggregators"

# -- 2. kill the aggregator node mid-run, restart it ---------------------------------------
"$load" tally --target "127.0.0.1:$udp" --datagrams 24000 --rate 8000 \
  --names 500 --seconds 30 >"$out/load2.log" 2>&1 &
load_pid=$!
pids+=("$load_pid")
sleep 1
kill -KILL "$first_agg"
wait "$first_agg" 2>/dev/null || true
until_stat "$ingest_stats" .tally.remote.disconnects 1
kill -0 "$ingest_pid" || fail "the ingest node died with the aggregator node"
sleep 0.5 # lines arriving now are unrouted
start_aggregator aggregator2 "$tcp"
until_stat "$ingest_stats" .tally.remote.connects 2
wait "$load_pid" || true # its totals differ by design: the node lost state
grep -q '^{' "$out/load2.log" || fail "phase 2: the load generator did not finish"
sent=$((sent + $(lines_sent "$out/load2.log")))

# Quiet now: compare the counts of both nodes.
sleep 0.5
doc=$(curl -s --max-time 5 "$ingest_stats/stats")
forwarded=$(jq -r .tally.lines_forwarded <<<"$doc")
unrouted=$(jq -r .tally.lines_unrouted <<<"$doc")
this_connection=$(jq -r .tally.remote.lines_forwarded_this_connection <<<"$doc")
drops=$(jq -r '[.net[] | .kernel_drops? // 0] | add' <<<"$doc")
applied=$(stat "$agg_stats" .tally.lines_applied)
echo "phase 2: sent $sent lines; ingest forwarded $forwarded, unrouted" \
  "$unrouted (kernel drops $drops); new connection carried $this_connection," \
  "new aggregators applied $applied; lost with the killed node:" \
  "$((forwarded - this_connection)) lines forwarded over the old connection" \
  "(of which phase 1 accounts for its exact part)"
[[ $unrouted -gt 0 ]] || fail "no line was counted unrouted while the aggregator node was down"
[[ $applied -eq $this_connection ]] \
  || fail "the new connection carried $this_connection lines, the aggregators applied $applied"
if [[ $drops -eq 0 ]]; then
  [[ $((forwarded + unrouted)) -eq $sent ]] \
    || fail "sent $sent lines, ingest forwarded $forwarded + unrouted $unrouted"
fi

# -- 3. exact again ----------------------------------------------------------------
"$load" tally --target "127.0.0.1:$udp" --datagrams 2000 --rate 20000 \
  --names 500 --seconds 30 >"$out/load3.log" 2>&1 \
  || fail "phase 3: totals differ after the restart"
echo "phase 3: exact totals again after the reconnect"

# -- clean stop ---------------------------------------------------------------------
kill -TERM "$ingest_pid" "$agg_pid"
wait "$ingest_pid" || fail "the ingest node exited with status $?"
wait "$agg_pid" || fail "the aggregator node exited with status $?"
grep -q 'balance after stop: all zero' "$out/ingest.log" \
  || fail "ingest node unbalanced"
grep -q 'balance after stop: all zero' "$out/aggregator2.log" \
  || fail "aggregator node unbalanced"
pids=()
echo "PASS"

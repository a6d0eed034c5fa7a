#!/usr/bin/env bash
# Issue 16, as a new user met it: `mayfly-dns --address 0.0.0.0` answered
# `dig @127.0.0.2` from 127.0.0.1, and dig's connected socket dropped the
# answer (a timeout). Each reply must leave from the address its query was
# sent to.
#
#   dig_test.sh DNS ZONE DIG OUTDIR
#
# 1. mayfly-dns on 0.0.0.0: dig @127.0.0.2, @127.0.0.3 and @127.0.0.1 each
#    get the A record of ns1.example.test.
# 2. mayfly-dns on [::], dual-stack (configuration "net": {"dual_stack":
#    true}): dig @::1 and dig @127.0.0.2 (IPv4, v4-mapped on the socket)
#    each get it (the ::1 part is left out where ::1 is not configured).
# Each server then stops on SIGTERM with exit status 0 (balance zero).
#
# DIG is the path of dig, or "" when CMake found none: then the test FAILS
# (it never skips silently): install dnsutils (tools/setup-debian.sh).
# Loopback only; every wait is bounded; the servers end by themselves
# (--exit-after) should this script die.
set -euo pipefail

dns=${1:?usage: dig_test.sh DNS ZONE DIG OUTDIR}
zone=${2:?}
dig=${3:-}
out=${4:?}
if [[ -z $dig || ! -x $dig ]]; then
  echo "FAIL: dig not found: install dnsutils (tools/setup-debian.sh)" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$out"/*.log; do
    [[ -f $f ]] && sed "s|^|$(basename "$f"): |" "$f" >&2
  done
  exit 1
}

# start NAME ARGS...: runs mayfly-dns, sets $pid and $port.
start() {
  local name=$1
  shift
  "$dns" --zone "$zone" --port 0 --exit-after 60 "$@" >"$out/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=
  for _ in $(seq 1 300); do
    port=$(sed -n 's|.*listening on udp .*:\([0-9][0-9]*\) .*|\1|p' \
      "$out/$name.log" | head -n1)
    [[ -n $port ]] && return 0
    kill -0 "$pid" 2>/dev/null || fail "$name exited before listening"
    sleep 0.1
  done
  fail "$name did not report its port"
}

# ask SERVER: dig must get ns1.example.test's A record from SERVER:$port.
ask() {
  local answer
  answer=$("$dig" @"$1" -p "$port" ns1.example.test A +time=2 +tries=2 \
    +short 2>&1) || true
  [[ $answer == 192.0.2.1 ]] ||
    fail "dig @$1 -p $port ns1.example.test: expected 192.0.2.1, got: $answer"
  echo "ok: dig @$1 -p $port ns1.example.test -> $answer"
}

# stop NAME: SIGTERM, then exit status 0 within 15 s.
stop() {
  kill -TERM "$pid"
  local status=0
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  wait "$pid" || status=$?
  [[ $status == 0 ]] || fail "$1 exited with status $status after SIGTERM"
}

start v4 --address 0.0.0.0
for server in 127.0.0.2 127.0.0.3 127.0.0.1; do
  ask "$server"
done
stop v4

echo '{"net": {"dual_stack": true}}' >"$out/dual_stack.json"
start v6 --address :: --config "$out/dual_stack.json"
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then
  ask ::1
else
  echo "note: ::1 is not configured here: the IPv6 query is left out"
fi
ask 127.0.0.2
stop v6
echo PASS

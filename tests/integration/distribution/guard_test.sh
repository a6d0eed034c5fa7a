#!/usr/bin/env bash
# What protects mayfly-tally's TCP port between nodes (issue 18, item 1;
# docs/design/distribution.md, "What protects the port").
#
#   guard_test.sh CASE TALLY OUTDIR CERTS-SCRIPT PEER-SCRIPT
#
# CASE:
#   garbage-to-published     the 32 bytes of issue 18 (b'\x01' + 31 zeros),
#                            which crash CAF 0.17.6's BASP parser, sent 20
#                            times to a published aggregator node: TLS
#                            refuses them before BASP (no header checked);
#                            sent once more by a peer with a valid
#                            certificate: the header check rejects and
#                            counts it; the node survives, and still serves
#                            an authenticated ingest node (a query answered
#                            through it)
#   garbage-to-plaintext     the same bytes 20 times to a node publishing
#                            plaintext on loopback (--plaintext 1): each
#                            counted in basp.headers_rejected, the node
#                            survives and serves (this fails if the stricter
#                            header check, basp_guard.hpp, is not in effect)
#   garbage-from-aggregator  an ingest node whose --aggregators answers those
#                            bytes: it survives, reports the aggregator
#                            unreachable (connect_failures, the log),
#                            counts lines unrouted; over TLS no BASP header
#                            is read, over plaintext (loopback) each is
#                            rejected and counted
#   unauthenticated-peer     a TLS client without certificate, one with a
#                            certificate of another CA, an ingest node of
#                            another CA and a plaintext ingest node: none
#                            reaches the aggregator (no byte of BASP comes
#                            back; connect_failures, never connected); the
#                            node then serves an authenticated one
#   plaintext-refused        plaintext BASP on a non-loopback address, or
#                            without --plaintext 1, and a key that does not
#                            match its certificate: exit status 2, a message
#
# Loopback only; throwaway certificates made at run time in a temporary
# directory, removed at exit; every wait bounded.
set -euo pipefail

case=${1:?usage: guard_test.sh CASE TALLY OUTDIR CERTS-SCRIPT PEER-SCRIPT}
tally=${2:?}
out=${3:?}/$case
certs_script=${4:?}
peer=${5:?}
rm -rf "$out"
mkdir -p "$out"

pids=()
certs=$(mktemp -d)
cleanup() {
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$certs"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$out"/*.log; do
    [[ -f $f ]] && sed "s|^|$(basename "$f"): |" "$f" >&2
  done
  exit 1
}

"$certs_script" "$certs" aggregator ingest >/dev/null
"$certs_script" "$certs/other" rogue >/dev/null # another CA
tls() { # DIR NODE
  echo --tls-cert "$1/$2.pem" --tls-key "$1/$2.key" --tls-ca "$1/ca.pem"
}

wait_for() { # FILE SED-EXPRESSION PID (up to 30 s)
  local file=$1 expr=$2 pid=$3 hit=
  for _ in $(seq 1 300); do
    hit=$(sed -n "$expr" "$file" 2>/dev/null | head -n1)
    [[ -n $hit ]] && { echo "$hit"; return 0; }
    kill -0 "$pid" 2>/dev/null || fail "process $pid exited while waiting for $expr in $file"
    sleep 0.1
  done
  fail "timed out waiting for $expr in $file"
}
stat() { curl -s --max-time 5 "$1/stats" | jq -r "$2"; }
until_stat() { # URL JQ-FILTER-GIVING-true (up to 30 s)
  local v=
  for _ in $(seq 1 300); do
    v=$(stat "$1" "$2" || true)
    [[ $v == true ]] && return 0
    sleep 0.1
  done
  fail "$2 at $1 never held"
}

start_aggregator() { # LOGNAME
  # shellcheck disable=SC2046
  "$tally" --workers 2 --port 0 --publish 0 --stats 127.0.0.1:0 \
    $(tls "$certs" aggregator) >"$out/$1.log" 2>&1 &
  agg_pid=$!
  pids+=("$agg_pid")
  tcp=$(wait_for "$out/$1.log" \
    's|.*aggregators published on tcp 127\.0\.0\.1:\([0-9]*\)$|\1|p' "$agg_pid")
  agg_stats=http://$(wait_for "$out/$1.log" \
    's|.*statistics on http://\([0-9.:]*\)/.*|\1|p' "$agg_pid")
}

start_ingest() { # LOGNAME TCP-PORT FLAGS...
  local name=$1 port=$2
  shift 2
  "$tally" --workers 2 --port 0 --aggregators "127.0.0.1:$port" \
    --stats 127.0.0.1:0 "$@" >"$out/$name.log" 2>&1 &
  ingest_pid=$!
  pids+=("$ingest_pid")
  udp=$(wait_for "$out/$name.log" \
    's|.*listening on udp 127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$ingest_pid")
  ingest_stats=http://$(wait_for "$out/$name.log" \
    's|.*statistics on http://\([0-9.:]*\)/.*|\1|p' "$ingest_pid")
}

stop() { # PID LOGNAME: SIGTERM, exit status 0, balanced
  kill -TERM "$1"
  wait "$1" || fail "$2 exited with status $?"
  grep -q 'balance after stop: all zero' "$out/$2.log" || fail "$2 unbalanced"
}

# An authenticated ingest node that forwards through the aggregator node and
# gets its query answered: the aggregator node still serves.
still_serves() {
  # shellcheck disable=SC2046
  start_ingest ingest "$tcp" $(tls "$certs" ingest)
  until_stat "$ingest_stats" .tally.remote.connected
  "$peer" udp "$udp" 'guard.a:5|c\nguard.b:2|c'
  "$peer" udp "$udp" '?guard.a' 'guard.a:5\n' \
    || fail "the aggregator node did not answer through the ingest node"
  [[ $(stat "$ingest_stats" .tally.tls.handshakes_completed) -ge 1 ]] \
    || fail "the ingest node's handshake was not counted"
  stop "$ingest_pid" ingest
}

case $case in
  garbage-to-published)
    start_aggregator aggregator
    "$peer" garbage "$tcp" 20 >"$out/peer.log" 2>&1 \
      || fail "the garbage client failed"
    sleep 0.5
    kill -0 "$agg_pid" 2>/dev/null || fail "32 bytes killed the aggregator node"
    [[ $(stat "$agg_stats" .tally.basp.headers_checked) == 0 ]] \
      || fail "bytes from a peer without a certificate reached BASP"
    # ... and they were counted where they ended: a failed TLS handshake.
    until_stat "$agg_stats" '.tally.tls.handshakes_failed >= 1'
    grep -q 'TLS handshake failed (accepting a peer)' "$out/aggregator.log" \
      || fail "the failed handshake was not logged"
    # A peer with a valid certificate gets through TLS; its garbage is
    # then the header check's to reject. (Exit status: it did get BASP's
    # server handshake, as an admitted peer does.)
    "$peer" tls "$tcp" "$certs/ingest.pem" "$certs/ingest.key" \
      >>"$out/peer.log" 2>&1 || true
    until_stat "$agg_stats" '.tally.basp.headers_rejected == 1'
    kill -0 "$agg_pid" 2>/dev/null || fail "32 bytes over TLS killed the aggregator node"
    still_serves
    stop "$agg_pid" aggregator
    ;;
  garbage-to-plaintext)
    "$tally" --workers 2 --port 0 --publish 0 --stats 127.0.0.1:0 \
      --plaintext 1 >"$out/aggregator.log" 2>&1 &
    agg_pid=$!
    pids+=("$agg_pid")
    tcp=$(wait_for "$out/aggregator.log" \
      's|.*aggregators published on tcp 127\.0\.0\.1:\([0-9]*\)$|\1|p' "$agg_pid")
    agg_stats=http://$(wait_for "$out/aggregator.log" \
      's|.*statistics on http://\([0-9.:]*\)/.*|\1|p' "$agg_pid")
    "$peer" garbage "$tcp" 20 >"$out/peer.log" 2>&1 \
      || fail "the garbage client failed"
    until_stat "$agg_stats" '.tally.basp.headers_rejected == 20'
    kill -0 "$agg_pid" 2>/dev/null || fail "32 bytes killed the plaintext node"
    grep -q 'rejected a malformed BASP header' "$out/aggregator.log" \
      || fail "the rejection was not logged"
    start_ingest ingest "$tcp" --plaintext 1
    until_stat "$ingest_stats" .tally.remote.connected
    "$peer" udp "$udp" 'guard.a:5|c'
    "$peer" udp "$udp" '?guard.a' 'guard.a:5\n' \
      || fail "the plaintext node did not answer through the ingest node"
    stop "$ingest_pid" ingest
    stop "$agg_pid" aggregator
    ;;
  garbage-from-aggregator)
    "$peer" fake-aggregator "$out/fake.port" 60 >"$out/fake.log" 2>&1 &
    fake_pid=$!
    pids+=("$fake_pid")
    for _ in $(seq 1 100); do [[ -f $out/fake.port ]] && break; sleep 0.1; done
    [[ -f $out/fake.port ]] || fail "the fake aggregator did not start"
    # shellcheck disable=SC2046
    start_ingest ingest "$(cat "$out/fake.port")" $(tls "$certs" ingest)
    until_stat "$ingest_stats" '.tally.remote.connect_failures >= 3'
    [[ $(grep -c '^accepted' "$out/fake.log") -ge 2 ]] \
      || fail "the ingest node did not connect to the fake aggregator"
    kill -0 "$ingest_pid" 2>/dev/null || fail "the garbage killed the ingest node"
    [[ $(stat "$ingest_stats" .tally.remote.connected) == false ]] \
      || fail "the ingest node says it is connected to garbage"
    grep -q 'cannot reach the aggregator node' "$out/ingest.log" \
      || fail "the ingest node did not report the aggregator unreachable"
    [[ $(stat "$ingest_stats" .tally.basp.headers_checked) == 0 ]] \
      || fail "bytes from a server without a certificate reached BASP"
    "$peer" udp "$udp" 'guard.a:5|c\nguard.b:2|c'
    until_stat "$ingest_stats" '.tally.lines_unrouted == 2'
    stop "$ingest_pid" ingest
    # A plaintext ingest node (loopback) reads the garbage as BASP: the
    # header check rejects it, counted, and the node survives.
    start_ingest plain "$(cat "$out/fake.port")" --plaintext 1
    until_stat "$ingest_stats" '.tally.basp.headers_rejected >= 2'
    kill -0 "$ingest_pid" 2>/dev/null || fail "the garbage killed the plaintext ingest node"
    [[ $(stat "$ingest_stats" .tally.remote.connects) == 0 ]] \
      || fail "the plaintext ingest node says it connected to garbage"
    stop "$ingest_pid" plain
    ;;
  unauthenticated-peer)
    start_aggregator aggregator
    "$peer" tls "$tcp" >>"$out/peer.log" 2>&1 \
      || fail "a TLS client without a certificate got BASP bytes"
    "$peer" tls "$tcp" "$certs/other/rogue.pem" "$certs/other/rogue.key" \
      >>"$out/peer.log" 2>&1 \
      || fail "a TLS client with another CA's certificate got BASP bytes"
    # Refused peers end as failed handshakes, none completed. (At least
    # one: a client that hangs up right after its last flight may be gone
    # before CAF reads it, and then OpenSSL is not called again.)
    until_stat "$agg_stats" '.tally.tls.handshakes_failed >= 1'
    [[ $(stat "$agg_stats" .tally.tls.handshakes_completed) == 0 ]] \
      || fail "a handshake without a valid certificate completed"
    # shellcheck disable=SC2046
    start_ingest rogue "$tcp" $(tls "$certs/other" rogue)
    rogue_pid=$ingest_pid rogue_stats=$ingest_stats
    start_ingest plain "$tcp" --plaintext 1
    plain_pid=$ingest_pid plain_stats=$ingest_stats
    until_stat "$rogue_stats" '.tally.remote.connect_failures >= 2'
    until_stat "$rogue_stats" '.tally.tls.handshakes_failed >= 1'
    until_stat "$plain_stats" '.tally.remote.connect_failures >= 1'
    [[ $(stat "$rogue_stats" .tally.remote.connects) == 0 ]] \
      || fail "a node of another CA reached the aggregators"
    [[ $(stat "$plain_stats" .tally.remote.connects) == 0 ]] \
      || fail "a plaintext node reached the aggregators"
    stop "$rogue_pid" rogue
    stop "$plain_pid" plain
    kill -0 "$agg_pid" 2>/dev/null || fail "the aggregator node died"
    still_serves
    stop "$agg_pid" aggregator
    ;;
  plaintext-refused)
    expect_2() { # LOGNAME EXPECTED-MESSAGE ARGS...
      local name=$1 msg=$2 rc=0
      shift 2
      "$tally" --port 0 "$@" >"$out/$name.log" 2>&1 || rc=$?
      [[ $rc -eq 2 ]] || fail "$name: exit status $rc, expected 2"
      grep -q -- "$msg" "$out/$name.log" || fail "$name: no message '$msg'"
    }
    expect_2 no-tls 'give --tls-cert' --publish 0
    expect_2 wildcard "plaintext BASP on '0.0.0.0' refused" \
      --publish 0.0.0.0:0 --plaintext 1
    expect_2 remote "plaintext BASP on '192.0.2.1' refused" \
      --aggregators 192.0.2.1:7001 --plaintext 1
    expect_2 port "'99999' is not an .ADDRESS:.PORT" --publish 99999 \
      --plaintext 1
    expect_2 v6 "is not an .ADDRESS:.PORT" --publish ::1:7001 --plaintext 1
    expect_2 wrong-key 'does not match' --publish 0 \
      --tls-cert "$certs/aggregator.pem" --tls-key "$certs/ingest.key" \
      --tls-ca "$certs/ca.pem"
    expect_2 other-ca 'does not chain to the CA' --publish 0 \
      --tls-cert "$certs/other/rogue.pem" --tls-key "$certs/other/rogue.key" \
      --tls-ca "$certs/ca.pem"
    expect_2 partial 'all three' --publish 0 --tls-cert "$certs/aggregator.pem"
    ;;
  *)
    fail "unknown case $case"
    ;;
esac
pids=()
echo "PASS $case"

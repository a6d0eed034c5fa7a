#!/usr/bin/env bash
# integration.CollectorLogger: the guide's first page (examples/collector) as
# a new user runs it: start mayfly-collector on a loopback port the kernel
# picks, send N syslog messages with util-linux `logger -d` (UDP), stop it
# with SIGTERM, and require the printed count to be exactly N, the exit
# status 0 (every pooled resource back) and no kernel drop in the summary.
# Usage: collector_logger_test.sh COLLECTOR_BINARY [N]
set -euo pipefail
bin=$1
n=${2:-10000}
if ! command -v logger >/dev/null; then
  echo "logger (util-linux) not installed"; exit 77
fi
out=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$out"' EXIT
"$bin" --port 0 --exit-after 120 >"$out/stdout" 2>"$out/stderr" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on udp 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out/stdout")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "collector did not start"; cat "$out/stderr"; exit 1; }
seq "$n" | logger -n 127.0.0.1 -P "$port" -d -t collector-test
sleep 0.5 # let the last datagrams be read before the stop
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
cat "$out/stdout" "$out/stderr"
[ "$status" -eq 0 ] || { echo "exit status $status, expected 0"; exit 1; }
grep -q ": $n syslog messages$" "$out/stdout" \
  || { echo "expected exactly $n syslog messages"; exit 1; }
grep -q "kernel drops 0," "$out/stderr" \
  || { echo "kernel drops reported"; exit 1; }
echo "ok: $n messages counted exactly"

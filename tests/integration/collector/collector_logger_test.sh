#!/usr/bin/env bash
# integration.CollectorLogger: the guide's first page (examples/collector) as
# a new user runs it: start mayfly-collector on a loopback port the kernel
# picks, send N syslog messages with util-linux `logger -d` (UDP), stop it
# with SIGTERM, and require the printed count to be exactly N, the user
# counter "messages" to say N in /stats and /metrics (the stats endpoint on
# a loopback port the kernel picks, read over bash's /dev/tcp), the exit
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
"$bin" --port 0 --stats 127.0.0.1:0 --exit-after 120 >"$out/stdout" 2>"$out/stderr" &
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
stats_port=$(sed -n 's|.*statistics on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$out/stdout")
[ -n "$stats_port" ] || { echo "no stats endpoint"; cat "$out/stdout"; exit 1; }
http_get() { # PATH: the response body's lines
  exec 3<>"/dev/tcp/127.0.0.1/$stats_port"
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
  timeout 10 cat <&3
  exec 3<&-
}
http_get /stats >"$out/stats"
http_get /metrics >"$out/metrics"
grep -Eq "\"messages\": ?$n([,}]|\$)" "$out/stats" \
  || { echo "/stats: counters.messages is not $n"; grep -o '"counters":{[^}]*}' "$out/stats"; exit 1; }
grep -Eq "^mayfly_counters_messages_total(\{[^}]*\})? $n\$" "$out/metrics" \
  || { echo "/metrics: mayfly_counters_messages_total is not $n"; grep messages "$out/metrics"; exit 1; }
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

#!/usr/bin/env bash
# integration.StatsPage: mayfly's stats page (GET /) in headless Chromium.
#
#   stats_page_test.sh SERVER CHROMIUM OUTDIR
#
# Starts SERVER (tests/integration/stats_page_server.cpp: echo endpoint,
# stats endpoint and traffic on 127.0.0.1), loads its page in Chromium with a
# virtual time budget of 5 s, and checks in the dumped DOM that the page
# polled /stats several times without error, drew every chart, showed the
# runtime running and a datagram rate above zero, and that the charts of
# "Where the time goes" (the three latency histograms per handler type and
# the stalls) filled with points while the traffic ran, that the stall table
# lists the handler type with its stalls (the server stalls once a second),
# and that the holder table filled (with the server's long-lived keeper). Then takes a screenshot
# (OUTDIR/stats_page.png, for a human to look at) and stops the server, whose
# exit status says whether the runtime's balances were zero. Everything stays
# on loopback; every wait is bounded. tools/test-all.sh installs chromium and
# fails if this test is not registered (it runs on every CI run, ~5 s).
set -euo pipefail

server=${1:?usage: stats_page_test.sh SERVER CHROMIUM OUTDIR}
chromium=${2:?usage: stats_page_test.sh SERVER CHROMIUM OUTDIR}
out=${3:?usage: stats_page_test.sh SERVER CHROMIUM OUTDIR}

mkdir -p "$out"
rm -f "$out/dom.html" "$out/stats_page.png" "$out/server.log" \
  "$out/chromium.log"
profile=$(mktemp -d)
server_pid=

fail() {
  echo "FAIL: $*" >&2
  [[ -f $out/server.log ]] && sed 's/^/server: /' "$out/server.log" >&2
  exit 1
}

cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$profile"
}
trap cleanup EXIT

# -- the server -------------------------------------------------------------------
"$server" 120 >"$out/server.log" 2>&1 &
server_pid=$!
url=
for _ in $(seq 1 300); do # up to 30 s: a sanitizer build starts slowly
  url=$(sed -n 's|^stats \(http://127\.0\.0\.1:[0-9][0-9]*/\)$|\1|p' \
    "$out/server.log")
  [[ -n $url ]] && break
  kill -0 "$server_pid" 2>/dev/null || fail "server exited before serving"
  sleep 0.1
done
[[ -n $url ]] || fail "server printed no URL"
echo "page: $url"

# -- the browser ------------------------------------------------------------------
chrome=("$chromium" --headless --no-sandbox --disable-gpu
  --disable-background-networking --disable-component-update --disable-sync
  --no-first-run --no-default-browser-check --user-data-dir="$profile"
  --window-size=1280,1100 --virtual-time-budget=5000)

timeout 120 "${chrome[@]}" --dump-dom "$url" >"$out/dom.html" \
  2>>"$out/chromium.log" || fail "chromium --dump-dom failed (see $out/chromium.log)"

# <body data-polls="N" data-errors="N" data-dgram-rate="X">
attr() { # file attribute -> first value
  grep -o "$2=\"[^\"]*\"" "$1" | head -1 | sed 's/^[^"]*"\([^"]*\)"$/\1/'
}
# The value of data-draws on the <section> of chart $2.
draws() {
  grep -o "<section[^>]*id=\"chart-$2\"[^>]*>" "$1" |
    grep -o 'data-draws="[0-9]*"' | grep -o '[0-9][0-9]*' || echo 0
}

polls=$(attr "$out/dom.html" data-polls)
errors=$(attr "$out/dom.html" data-errors)
rate=$(attr "$out/dom.html" data-dgram-rate)
echo "polls=$polls errors=$errors datagrams/s=$rate"
[[ ${polls:-0} -ge 3 ]] || fail "page polled /stats ${polls:-0} times (want >= 3)"
[[ ${errors:-1} -eq 0 ]] || fail "page saw $errors failed polls"
awk -v r="${rate:-0}" 'BEGIN { exit !(r > 0) }' ||
  fail "datagram rate on the page is ${rate:-0} (want > 0)"
grep -q 'id="state" class="running">running<' "$out/dom.html" ||
  fail "page does not show the runtime running"
for chart in datagrams send sendfill inflight pools arenas pinned; do
  n=$(draws "$out/dom.html" "$chart")
  echo "chart $chart: drawn $n times"
  # The rate chart needs two polls for its first point.
  [[ $n -ge 2 ]] || fail "chart $chart drawn $n times (want >= 2)"
done
# Where the time goes: each latency chart needs two polls with traffic in
# between for its first point (quantiles of the histogram's growth), so
# >= 2 points means it filled from live traffic.
points() {
  grep -o "<section[^>]*id=\"chart-$2\"[^>]*>" "$1" |
    grep -o 'data-points="[0-9]*"' | grep -o '[0-9][0-9]*' || echo 0
}
for chart in lat-receive lat-run lat-send stalls; do
  n=$(draws "$out/dom.html" "$chart")
  p=$(points "$out/dom.html" "$chart")
  echo "chart $chart: drawn $n times, $p points"
  [[ $n -ge 2 ]] || fail "chart $chart drawn $n times (want >= 2)"
  [[ $p -ge 2 ]] || fail "chart $chart has $p points (want >= 2)"
done
grep -q '<canvas' "$out/dom.html" || fail "no canvas in the page"
# The number in attribute $3 of table <section id="$2"> (0 if absent).
table_attr() {
  grep -o "<section[^>]*id=\"$2\"[^>]*>" "$1" | grep -o "$3=\"[0-9]*\"" |
    grep -o '[0-9][0-9]*' || echo 0
}
# The stall table: per handler type, stalls, reported while running and the
# longest (handlers.*.stalls, stall_reports, stall_max_us).
grep -q '<section[^>]*id="stalls-table"' "$out/dom.html" ||
  fail "no stall table on the page"
srows=$(table_attr "$out/dom.html" stalls-table data-rows)
scount=$(table_attr "$out/dom.html" stalls-table data-stalls)
echo "stall table: $srows rows, $scount stalls"
[[ $srows -ge 1 ]] || fail "stall table has $srows rows (want >= 1)"
[[ $scount -ge 1 ]] || fail "stall table shows $scount stalls (want >= 1)"
grep -q '<th>reported while running</th><th>longest</th>' "$out/dom.html" ||
  fail "stall table lacks its reported/longest columns"
grep -q 'threshold [0-9][0-9]* ms' "$out/dom.html" ||
  fail "stall table does not show the threshold"
# The holder table (issue 17): filled while the traffic runs, with the
# server's long-lived keeper among its rows.
grep -q '<section[^>]*id="holders"' "$out/dom.html" ||
  fail "no holder table on the page"
rows=$(table_attr "$out/dom.html" holders data-rows)
filled=$(table_attr "$out/dom.html" holders data-filled)
echo "holder table: $rows rows, filled $filled times"
[[ $rows -ge 1 ]] || fail "holder table has $rows rows (want >= 1)"
[[ $filled -ge 2 ]] || fail "holder table filled $filled times (want >= 2)"
grep -q '<td>page keeper</td>' "$out/dom.html" ||
  fail "holder table does not list the long-lived 'page keeper'"

# -- a screenshot, for a human ------------------------------------------------------
(cd "$out" && timeout 120 "${chrome[@]}" --hide-scrollbars \
  --screenshot="$out/stats_page.png" "$url" >>"$out/chromium.log" 2>&1) ||
  fail "chromium --screenshot failed (see $out/chromium.log)"
[[ -s $out/stats_page.png ]] || fail "no screenshot written"
[[ $(head -c 8 "$out/stats_page.png" | od -An -tx1 | tr -d ' \n') == \
  89504e470d0a1a0a ]] || fail "screenshot is not a PNG"
echo "screenshot: $out/stats_page.png"

# -- stop: the server's status is its balance check ----------------------------------
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
[[ $status -eq 0 ]] || fail "server exited with $status (unbalanced?)"
tail -1 "$out/server.log"
echo "PASS"

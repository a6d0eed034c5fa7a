#!/usr/bin/env bash
# Soak (issue 7): the three examples side by side under a steady, mixed,
# verified load for a long time; resident memory must stay flat after the
# warm-up and nothing may leak.
#
#   tools/reliability/soak.sh                   # 600 s (not in CI)
#   SOAK_SECONDS=60 tools/reliability/soak.sh   # short mode
#
# mayfly-echo, mayfly-tally and mayfly-dns (release build, MAYFLY_BUILD) run
# on ephemeral loopback ports with the configuration of common.sh. Each gets
# mayfly-load in rounds of CHUNK_SECONDS (30), which check every answer:
# echo (window 4, 64..1400-byte requests), tally (2000 datagrams/s
# of 40 lines, exact totals checked after each round), dns (window 4, the
# queries of tools/bench/dns_queries.txt). Between rounds a few malformed
# datagrams are sent too. Every SAMPLE_SECONDS (10) the RSS of each server
# is recorded.
#
# Checks (exit 1 on any violation):
#  - every load round passed (correct answers, exact tally totals);
#  - flat memory: after WARMUP_SECONDS (60; 20% of a short run), the highest
#    RSS of the second half is at most the highest of the first half plus
#    FLAT_TOLERANCE_PCT (5%) plus 2 MiB;
#  - at the end nothing is outstanding in /stats, and each server exits 0
#    on SIGTERM with every balance zero.
# Prints the RSS table, a sparkline per server and the throughput.
set -euo pipefail
source "$(dirname "$0")/common.sh"

DURATION=${SOAK_SECONDS:-600}
CHUNK=${CHUNK_SECONDS:-30}
SAMPLE=${SAMPLE_SECONDS:-10}
WARMUP=${WARMUP_SECONDS:-$((DURATION >= 300 ? 60 : DURATION / 5))}
TOL=${FLAT_TOLERANCE_PCT:-5}
((CHUNK > DURATION)) && CHUNK=$DURATION
((SAMPLE * 4 > DURATION)) && SAMPLE=$(((DURATION + 3) / 4))

need_programs
write_config "$WORK/config.json" pause
violations=()
violation() {
  violations+=("$1")
  echo "  VIOLATION: $1"
}

declare -A PID UDP HTTP
for ex in echo tally dns; do
  start_example "$ex" "$WORK/$ex"
  PID[$ex]=$SERVER_PID UDP[$ex]=$UDP_ADDR HTTP[$ex]=$STATS_ADDR
  echo "mayfly-$ex: pid $SERVER_PID, udp $UDP_ADDR, stats $STATS_ADDR"
done
END=$(($(date +%s) + DURATION))

# A load loop per example: rounds until the end, one JSON line per round in
# $WORK/<ex>.rounds, "FAIL <exit code>" for a failed round.
load_round() { # ex seconds
  local ex=$1 s=$2 size
  case $ex in
  echo)
    size=$((64 + RANDOM % 1337))
    "$BUILD/tools/mayfly-load" echo --target "${UDP[echo]}" --window 4 \
      --size "$size" --requests 100000000 --seconds "$s" ;;
  tally)
    "$BUILD/tools/mayfly-load" tally --target "${UDP[tally]}" \
      --datagrams $((2000 * s)) --rate 2000 --names 1000 --seconds $((s + 30)) ;;
  dns)
    "$BUILD/tools/mayfly-load" dns --target "${UDP[dns]}" --window 4 \
      --queries "$REPO/tools/bench/dns_queries.txt" --requests 100000000 \
      --seconds "$s" ;;
  esac
}
malformed() { # ex: a few datagrams the server must count and survive
  local host=${UDP[$1]%:*} port=${UDP[$1]##*:}
  printf '' >"/dev/udp/$host/$port"
  printf 'x' >"/dev/udp/$host/$port"
  head -c 700 /dev/urandom >"/dev/udp/$host/$port"
}
for ex in echo tally dns; do
  (
    while (($(date +%s) + 5 < END)); do
      left=$((END - $(date +%s)))
      s=$((left < CHUNK ? left : CHUNK))
      if out=$(load_round "$ex" "$s" 2>"$WORK/$ex.round.err"); then
        echo "$out" | tail -1 >>"$WORK/$ex.rounds"
      else
        echo "FAIL $? $(echo "$out" | tail -1)" >>"$WORK/$ex.rounds"
      fi
      malformed "$ex"
    done
  ) &
  STARTED_PIDS+=($!)
  LOOPS+=($!)
done

# RSS samples until the end.
echo "t_s echo_MiB tally_MiB dns_MiB" >"$WORK/rss.tsv"
start=$(date +%s)
while (($(date +%s) < END)); do
  sleep "$SAMPLE"
  line="$(($(date +%s) - start))"
  for ex in echo tally dns; do
    kill -0 "${PID[$ex]}" 2>/dev/null || violation "mayfly-$ex died"
    line+=" $(python3 -c "print(round($(rss_kb "${PID[$ex]}")/1024, 1))")"
  done
  echo "$line" >>"$WORK/rss.tsv"
done
for p in "${LOOPS[@]}"; do
  wait "$p" || true
done

echo "=== RSS over time (MiB)"
column -t "$WORK/rss.tsv" | sed 's/^/  /'

# Flatness, sparklines and throughput.
python3 - "$WORK" "$WARMUP" "$TOL" <<'EOF' >"$WORK/report.txt"
import json, sys
work, warmup, tol = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = [l.split() for l in open(f"{work}/rss.tsv").read().splitlines()[1:]]
bars = "▁▂▃▄▅▆▇█"
for i, ex in enumerate(["echo", "tally", "dns"], start=1):
    t = [float(r[0]) for r in rows]
    v = [float(r[i]) for r in rows]
    after = [x for tt, x in zip(t, v) if tt > warmup]
    lo, hi = min(v), max(v)
    spark = "".join(bars[int((x - lo) / (hi - lo + 1e-9) * 7)] for x in v)
    if len(after) >= 2:
        half = len(after) // 2
        first, last = max(after[:half]), max(after[half:])
        flat = last <= first * (1 + tol / 100) + 2
        verdict = f"first half max {first} MiB, second half max {last} MiB: {'flat' if flat else 'GROWING'}"
    else:
        flat, verdict = True, "too few samples after warm-up to judge"
    print(f"RSS {ex:5s} {spark} min {lo} max {hi} MiB; after {warmup:.0f}s warm-up {verdict}")
    if not flat:
        print(f"VIOLATION mayfly-{ex}: RSS grows after warm-up")
for ex in ["echo", "tally", "dns"]:
    rounds = open(f"{work}/{ex}.rounds").read().splitlines() if __import__("os").path.exists(f"{work}/{ex}.rounds") else []
    ok = [json.loads(r) for r in rounds if r.startswith("{")]
    bad = [r for r in rounds if not r.startswith("{")]
    secs = sum(r.get("seconds", 0) for r in ok)
    if ex == "echo":
        n = sum(r["received"] for r in ok); what = "replies"
        bad += [json.dumps(r) for r in ok if r["mismatched"] or r["received"] == 0]
    elif ex == "tally":
        n = sum(r["datagrams"] for r in ok); what = "datagrams (exact totals)"
        bad += [json.dumps(r) for r in ok if not r["exact"]]
    else:
        n = sum(r["received"] for r in ok); what = "answers"
        bad += [json.dumps(r) for r in ok if r["received"] == 0]
    rate = n / secs if secs else 0
    print(f"load  {ex:5s} {len(ok)} rounds passed, {len(bad)} failed; {n} {what} in {secs:.0f}s of load = {rate:.0f}/s")
    for b in bad:
        print(f"VIOLATION mayfly-{ex}: round failed: {b[:200]}")
EOF
echo "=== memory and throughput"
sed 's/^/  /' "$WORK/report.txt"
while read -r v; do
  violations+=("${v#VIOLATION }")
done < <(grep '^VIOLATION' "$WORK/report.txt" || true)

echo "=== end: nothing outstanding, balances zero at shutdown"
for ex in echo tally dns; do
  SERVER_PID=${PID[$ex]} UDP_ADDR=${UDP[$ex]} STATS_ADDR=${HTTP[$ex]}
  q=$(wait_quiet 15)
  stats_to "$WORK/end.json" >/dev/null
  summary=$(field "$WORK/end.json" 'udp["datagrams_in"]' 'udp["kernel_drops"]' 'h["failed"]' 's["runtime"]["balance"]')
  echo "  $ex: quiet after ${q}s; datagrams_in, kernel_drops, failed, balance: $summary"
  [[ $q == timeout ]] && violation "$ex: not quiet at the end"
  stop_example
  [[ $EXIT_CODE == 0 ]] || violation "$ex: exit code $EXIT_CODE after SIGTERM"
  if balanced_at_exit "$ex" "$WORK/$ex"; then
    echo "  $ex: exit $EXIT_CODE, balance at shutdown: all zero"
  else
    violation "$ex: balance not zero at shutdown: $(tail -2 "$WORK/$ex.err")"
  fi
done

if ((${#violations[@]})); then
  echo "=== ${#violations[@]} violation(s):"
  printf '  %s\n' "${violations[@]}"
  exit 1
fi
echo "=== soak ${DURATION}s: no violation"

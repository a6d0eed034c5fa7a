# Shared by overload.sh and soak.sh (sourced, not run): start an example on
# ephemeral loopback ports, read its /stats, sample its RSS, check that
# nothing is outstanding, stop it gracefully. Needs bash, curl, python3
# (tools/setup-debian.sh installs them). Only 127.0.0.1 is used.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${MAYFLY_BUILD:-$REPO/build/release}
WORK=$(mktemp -d /tmp/mayfly-reliability.XXXXXX)
STARTED_PIDS=()

# SERVER_CPU_QUOTA=F (a fraction of one CPU, e.g. 0.25): every server runs
# in a CPU cgroup limited to F of a core, so that a sender on this machine
# can offer a multiple of what the server sustains (issue 18: 3x an echo
# server that keeps up with one sending core). Needs root and the cgroup
# "cpu" controller (v1 or v2); the calibrated rate is then the limited
# server's, and the scripts say so.
CPU_CGROUP=""

# Kill what we started (by pid), remove the work directory and the cgroup.
cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  [[ -n $CPU_CGROUP ]] && rmdir "$CPU_CGROUP" 2>/dev/null
  rm -rf "$WORK"
}

# limit_cpu PID: moves PID into the SERVER_CPU_QUOTA cgroup (made once).
limit_cpu() {
  [[ -n ${SERVER_CPU_QUOTA:-} ]] || return 0
  local period=100000 quota
  quota=$(python3 -c "import sys; q = float(sys.argv[1]); assert 0 < q <= 64; print(int(q * $period))" \
    "$SERVER_CPU_QUOTA") || die "SERVER_CPU_QUOTA=$SERVER_CPU_QUOTA: not a fraction of a CPU in (0, 64]"
  if [[ -z $CPU_CGROUP ]]; then
    if [[ -d /sys/fs/cgroup/cpu ]]; then # v1
      CPU_CGROUP=/sys/fs/cgroup/cpu/mayfly-reliability-$$
      mkdir "$CPU_CGROUP" || die "cannot make $CPU_CGROUP (root? cgroup cpu controller?)"
      echo "$period" >"$CPU_CGROUP/cpu.cfs_period_us"
      echo "$quota" >"$CPU_CGROUP/cpu.cfs_quota_us"
    elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then # v2
      CPU_CGROUP=/sys/fs/cgroup/mayfly-reliability-$$
      mkdir "$CPU_CGROUP" || die "cannot make $CPU_CGROUP (root? cgroup cpu controller?)"
      echo "$quota $period" >"$CPU_CGROUP/cpu.max" \
        || die "cannot limit $CPU_CGROUP (is +cpu in cgroup.subtree_control?)"
    else
      die "SERVER_CPU_QUOTA needs a cgroup cpu controller (none under /sys/fs/cgroup)"
    fi
  fi
  echo "$1" >"$CPU_CGROUP/cgroup.procs" || die "cannot move pid $1 into $CPU_CGROUP"
}
trap cleanup EXIT

die() {
  echo "${0##*/}: $*" >&2
  exit 2
}

need_programs() {
  local p
  for p in "$BUILD/examples/mayfly-echo" "$BUILD/examples/mayfly-tally" \
    "$BUILD/examples/mayfly-dns" "$BUILD/tools/mayfly-load" \
    "$BUILD/tools/reliability/mayfly-flood"; do
    [[ -x $p ]] || die "$p missing: cmake --preset release && cmake --build build/release --target mayfly_example_echo mayfly_example_tally mayfly_example_dns mayfly_load mayfly_flood (or set MAYFLY_BUILD)"
  done
  command -v curl >/dev/null || die "curl missing (tools/setup-debian.sh)"
  command -v python3 >/dev/null || die "python3 missing (tools/setup-debian.sh)"
}

# The runtime configuration every run uses, spelled out so that the memory
# bound can be computed from it: pools = standard + jumbo + arena blocks.
write_config() { # file overload(pause|drop)
  cat >"$1" <<EOF
{ "runtime": { "workers": 2, "max_in_flight": 4096, "overload": "$2" },
  "memory": {
    "buffers": { "standard_slot_size": 2048, "standard_capacity": 8192,
                 "jumbo_slot_size": 65536, "jumbo_capacity": 128 },
    "arenas": { "block_size": 16384, "capacity": 2048 } } }
EOF
}
POOL_MB=$(((2048 * 8192 + 65536 * 128 + 16384 * 2048) / 1048576)) # 56

# start_example NAME LOGPREFIX [extra flags...]: sets SERVER_PID, UDP_ADDR,
# STATS_ADDR (waits up to 15 s for the addresses on stdout).
start_example() {
  local name=$1 log=$2
  shift 2
  local args=(--port 0 --stats 127.0.0.1:0 --config "$WORK/config.json" "$@")
  [[ $name == dns ]] && args+=(--zone "$REPO/examples/dns/example.zone")
  "$BUILD/examples/mayfly-$name" "${args[@]}" >"$log.out" 2>"$log.err" &
  SERVER_PID=$!
  STARTED_PIDS+=("$SERVER_PID")
  limit_cpu "$SERVER_PID"
  UDP_ADDR="" STATS_ADDR=""
  local i
  for ((i = 0; i < 150; i++)); do
    UDP_ADDR=$(grep -o 'on udp [0-9.]*:[0-9]*' "$log.out" | head -1 | cut -d' ' -f3 || true)
    STATS_ADDR=$(grep -o 'statistics on http://[0-9.]*:[0-9]*' "$log.out" | head -1 | sed 's#.*http://##' || true)
    [[ -n $UDP_ADDR && -n $STATS_ADDR ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$log.out" "$log.err" >&2
  die "mayfly-$name did not start"
}

STATS_PY="$REPO/tools/reliability/stats.py"
# stats_to FILE: GET /stats into FILE; prints the latency in seconds, or
# "fail" when it did not answer 200 within STATS_TIMEOUT (2) seconds.
stats_to() { python3 "$STATS_PY" get "$STATS_ADDR" "$1"; }
# field FILE EXPR...: Python expressions over the document (stats.py).
field() { python3 "$STATS_PY" field "$@"; }
rss_kb() { # pid
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}
# wait_quiet SECONDS: polls /stats until nothing is outstanding; prints the
# seconds it took, or "timeout".
wait_quiet() { python3 "$STATS_PY" quiet "$STATS_ADDR" "$1"; }

# One datagram the server counts (it makes the kernel report earlier drops:
# SO_RXQ_OVFL rides on the next datagram received).
flush_datagram() {
  local host=${UDP_ADDR%:*} port=${UDP_ADDR##*:}
  printf 'x' >"/dev/udp/$host/$port"
}

# stop_example: SIGTERM, wait up to 30 s; sets EXIT_CODE ("killed" if it
# had to be killed). Not in a subshell: `wait` needs the parent shell.
stop_example() {
  local i
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    [[ $(ps -o stat= -p "$SERVER_PID" 2>/dev/null) == Z* ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null \
    && [[ $(ps -o stat= -p "$SERVER_PID" 2>/dev/null) != Z* ]]; then
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    EXIT_CODE=killed
    return 0
  fi
  EXIT_CODE=0
  wait "$SERVER_PID" || EXIT_CODE=$?
}

# Whether the program's shutdown report says every balance is zero (every
# example prints it through examples/common/service.cpp and exits 3 if not).
balanced_at_exit() { # name logprefix
  grep -q 'balance after stop: all zero' "$2.err"
}

# A short correct workload: exit 0 when every answer was right.
probe() { # name
  case $1 in
  echo) "$BUILD/tools/mayfly-load" echo --target "$UDP_ADDR" --window 8 \
    --requests 2000 --seconds 10 ;;
  tally) "$BUILD/tools/mayfly-load" tally --target "$UDP_ADDR" \
    --datagrams 200 --rate 2000 --names 50 --seconds 20 ;;
  dns) "$BUILD/tools/mayfly-load" dns --target "$UDP_ADDR" \
    --queries "$REPO/tools/bench/dns_queries.txt" --window 8 \
    --requests 2000 --seconds 10 ;;
  esac
}

#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run) and the README documents:
# installs what is missing, then builds and tests
#   1. ci      : Debug, ASan+UBSan, runtime checks, -Werror (gcc)
#   2. release : optimized, where the allocation-counting tests run unsanitized
#   3. tsan    : ThreadSanitizer on the memory layer (no CAF involved)
#   4. install : find_package(mayfly) from an installed tree
#   5. fuzz    : every libFuzzer target for a bounded time (clang)
# and fails if any step fails, if a ctest run executed no test, or if the
# browser test (integration.StatsPage, headless Chromium) is not registered.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-debian.sh --with-chromium

jobs=${MAYFLY_JOBS:-$(nproc)}
summary=()
run_preset() { # preset [targets...]
  local preset=$1
  shift
  echo "=== $preset: configure and build"
  cmake --preset "$preset" >/dev/null
  # The browser test registers only where chromium is found: that must not
  # turn into a silent skip here. (The listing also names the fixture that
  # builds its server, build.mayfly_stats_page_server.)
  if ! ctest --preset "$preset" -N -R '^integration\.StatsPage$' 2>/dev/null |
      grep -qE 'Test +#[0-9]+: integration\.StatsPage$'; then
    echo "=== $preset: integration.StatsPage is not registered (chromium?)" >&2
    summary+=("$preset: FAILED (no browser test)")
    return 1
  fi
  if (($#)); then
    cmake --build --preset "$preset" -j "$jobs" --target "$@"
  else
    cmake --build --preset "$preset" -j "$jobs"
  fi
  echo "=== $preset: test"
  local log
  log=$(mktemp)
  # --no-tests=error: a run that executes no test fails.
  # (_NOT_BUILT: placeholders for test binaries a preset does not build.)
  if ! ctest --preset "$preset" -j "$jobs" --no-tests=error -E '_NOT_BUILT' \
      2>&1 | tee "$log"; then
    summary+=("$preset: FAILED")
    rm -f "$log"
    return 1
  fi
  summary+=("$preset: $(grep -E 'tests passed|tests failed' "$log" | tail -1)")
  rm -f "$log"
}

status=0
run_preset ci || status=1
# Release: the test binaries only (the ci preset built everything else); the
# allocation-counting tests run here, unsanitized. The programs the
# integration tests run are built by ctest itself: each such test requires a
# `build.<target>` fixture (tests/integration/CMakeLists.txt,
# mayfly_test_runs); the wire and serve tests depend on theirs.
run_preset release mayfly_runtime_tests mayfly_actors_tests mayfly_net_tests \
  mayfly_dns_tests mayfly_tally_tests || status=1
# TSan: the memory layer only (Debian's CAF is not instrumented).
echo "=== tsan: configure and build"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs" --target mayfly_runtime_tests
if ctest --preset tsan -j "$jobs" --no-tests=error 2>&1 | tee /tmp/mayfly-tsan.log; then
  summary+=("tsan: $(grep -E 'tests passed|tests failed' /tmp/mayfly-tsan.log | tail -1)")
else
  summary+=("tsan: FAILED"); status=1
fi

echo "=== install test"
rm -rf build/stage build/install-test
if cmake --install build/release --prefix "$PWD/build/stage" >/dev/null \
  && cmake -S tests/install -B build/install-test -G Ninja \
       -DCMAKE_PREFIX_PATH="$PWD/build/stage" >/dev/null \
  && cmake --build build/install-test \
  && build/install-test/mayfly_install_consumer \
  && tests/integration/collector/collector_logger_test.sh \
       build/install-test/mayfly_install_collector 10000; then
  summary+=("install: ok")
else
  summary+=("install: FAILED")
  status=1
fi

echo "=== fuzz: every target for a bounded time"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"
if ctest --test-dir build/fuzz -R '^fuzz\.' -j "$jobs" --no-tests=error 2>&1 | tee /tmp/mayfly-fuzz.log; then
  summary+=("fuzz: $(grep -E 'tests passed|tests failed' /tmp/mayfly-fuzz.log | tail -1)")
else
  summary+=("fuzz: FAILED"); status=1
fi

echo "=== summary"
printf '  %s\n' "${summary[@]}"
exit $status

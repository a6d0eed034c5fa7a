#!/usr/bin/env bash
# Installs what mayfly needs on Debian 12 (as root), skipping what is there.
# Idempotent; prints what it installs. Used by the README commands and CI.
#
# Options:
#   --with-chromium  also install Debian's chromium (a large package, some
#                    hundreds of MB with its dependencies), so that CTest
#                    registers integration.StatsPage: the stats page loaded
#                    in a headless browser (tests/integration/). The test
#                    command, tools/test-all.sh, always passes it (CI runs
#                    the browser test); the README's build-and-run command
#                    does not need it. MAYFLY_WITH_CHROMIUM=1 does the same.
#                    A build directory configured before chromium was there
#                    finds it at its next configure.
set -euo pipefail

with_chromium=${MAYFLY_WITH_CHROMIUM:-0}
for arg in "$@"; do
  case $arg in
    --with-chromium) with_chromium=1 ;;
    *)
      echo "setup: unknown option '$arg' (known: --with-chromium)" >&2
      exit 2
      ;;
  esac
done

packages=(
  build-essential cmake ninja-build git pkg-config
  libcaf-dev libmimalloc-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  liburing-dev libmicrohttpd-dev
  clang libclang-rt-14-dev
  dnsutils curl jq python3
)
[[ $with_chromium == 1 ]] && packages+=(chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all dependencies present"

#!/usr/bin/env bash
# Builds NSD from a git checkout of github.com/NLnetLabs/nsd at a tag, with
# recvmmsg/sendmmsg, for the DNS baseline of tools/bench/e2e.sh (NSD=...).
# Debian's package (and upstream's default build) has no recvmmsg: one
# recvfrom and one sendto per query, which costs twice the CPU per query on
# this machine (docs/benchmarks.md, "Why NSD costs more per query here").
#
#   tools/baselines/build_nsd.sh NSD_GIT_DIR OUT_DIR [TAG] [extra configure options]
#   (default TAG NSD_4_6_1_REL; then: NSD=OUT_DIR/nsd tools/bench/e2e.sh ...)
#
# Needs autoconf, flex, bison, libevent-dev, libssl-dev. Installs nothing:
# the binary stays in OUT_DIR. Configure options are Debian's, but
# --enable-recvmmsg instead of --disable-recvmmsg (and without systemd and
# dnstap, which the benchmark does not use). Run it under the build lock.
set -euo pipefail
src=${1:?NSD git directory}
out=${2:?output directory}
tag=${3:-NSD_4_6_1_REL}
shift $(($# < 3 ? $# : 3))
rm -rf "$out" && mkdir -p "$out"
# the test-suite tree (tpkg/) is not needed and may be absent from a mirror
# (git may still print "invalid object ... tpkg/..." for it: harmless)
git -C "$src" ls-tree -r --name-only "$tag" | grep -v '^tpkg/' |
  xargs git -C "$src" archive "$tag" -- | tar -x -C "$out"
cd "$out"
autoconf && autoheader
cp /usr/share/autoconf/build-aux/config.guess /usr/share/autoconf/build-aux/config.sub .
./configure --prefix="$out/inst" --disable-largefile --enable-recvmmsg \
  --enable-root-server --enable-mmap --enable-ratelimit --enable-zone-stats \
  --enable-checking --with-configdir="$out/etc" --with-pidfile="$out/nsd.pid" \
  --with-dbfile= --with-zonesdir="$out" --with-xfrdfile="$out/xfrd.state" "$@" >configure.log
grep -q '^#define HAVE_RECVMMSG 1' config.h || { echo "no recvmmsg in $out/config.h" >&2; exit 1; }
make -j2 nsd >make.log
"$out/nsd" -v 2>&1 | sed -n 's/^Configure line: /built: /p'

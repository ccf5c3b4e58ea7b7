#!/bin/bash
# bench/suite_cron.sh - suite `cron` of bench/run: creation lateness of
# scheduled jobs behind their ticks (bench/bench_cron.c) on every backend
# this build has: memory, SQLite (a file in a fresh directory under $TMPDIR,
# sync=normal) and Redis (a server started here on a free loopback port,
# stopped by PID at exit).
#
# Environment (set by bench/run): BUILD, QUICK, REPEAT.  Prints BENCH lines
# on stdout, progress on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:?BUILD must name the build directory}
QUICK=${QUICK-}
REPEAT=${REPEAT:-3}
bench=$BUILD/bench/bench_cron
[ -x "$bench" ] || { echo "suite_cron: $bench is missing (make bench)" >&2; exit 1; }
. "$here/stores.sh" cron.db
# shellcheck disable=SC2086 # QUICK is empty or one word
"$bench" $QUICK --repeat "$REPEAT" "${stores[@]}"

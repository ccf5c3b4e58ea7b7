#!/bin/bash
# bench/suite_workflow.sh - suite `workflow` of bench/run: a 10,000-node
# fan-out/fan-in and a 1,000-step chain end to end (bench/bench_workflow.c)
# on every backend this build has: memory, SQLite (fresh files under a new
# directory in $TMPDIR, sync=normal) and Redis (a server started here on a
# free loopback port, stopped by PID at exit).
#
# Environment (set by bench/run): BUILD, QUICK, REPEAT.  Prints BENCH lines
# on stdout, progress on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:?BUILD must name the build directory}
QUICK=${QUICK-}
REPEAT=${REPEAT:-3}
bench=$BUILD/bench/bench_workflow
[ -x "$bench" ] || { echo "suite_workflow: $bench is missing (make bench)" >&2; exit 1; }
. "$here/stores.sh" wf.db
# shellcheck disable=SC2086 # QUICK is empty or one word
"$bench" $QUICK --repeat "$REPEAT" "${stores[@]}"

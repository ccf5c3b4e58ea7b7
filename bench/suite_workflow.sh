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
dir=$(mktemp -d "${TMPDIR:-/tmp}/bench_workflow.XXXXXX")
trap 'rm -rf "$dir"' EXIT
stores=(memory=memory:)
grep -q '^#define AT_HAVE_SQLITE 1' "$BUILD/config.h" && stores+=("sqlite=sqlite:$dir/wf.db?sync=normal")
if grep -q '^#define AT_HAVE_REDIS 1' "$BUILD/config.h"; then
  . "$here/../tests/redis_server.sh" # its EXIT trap stops the server by PID
  trap 'rm -rf "$dir"; redis_cleanup' EXIT
  redis_start
  export AT_REDIS_WARN=0
  stores+=("redis=redis://127.0.0.1:$REDIS_PORT")
fi
# shellcheck disable=SC2086 # QUICK is empty or one word
"$bench" $QUICK --repeat "$REPEAT" "${stores[@]}"

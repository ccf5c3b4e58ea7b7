#!/bin/bash
# tests/chaos/check.sh - the bounded chaos runs of `make check`, small
# versions of every chaos program (about 20 s for both backends together
# in a plain -O1 build):
#
#   tests/chaos/check.sh sqlite   worker kills and stale completers against
#                                 a temporary SQLite directory
#   tests/chaos/check.sh redis    the same against a redis-server started
#                                 here (tests/redis_server.sh), then Redis
#                                 restarts (appendfsync always and everysec)
#                                 and connection faults, whose programs
#                                 start, kill and stop their own servers
#
# Run from the build directory (programs in ./tests/chaos, or $CHAOS_BIN).
# Every server is stopped by its PID and every temporary directory removed
# on exit; a missing redis-server fails with how to install it.  `make
# chaos` and `make soak` run the larger versions (tests/chaos/run.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${CHAOS_BIN:-./tests/chaos}
backend=${1-}
case "$backend" in
  sqlite|redis) ;;
  *) echo "usage: $0 sqlite|redis" >&2; exit 2 ;;
esac

failed=0
runs=0
run() {
  local t0 t1
  t0=$(date +%s%N)
  runs=$((runs + 1))
  "$@" || failed=$((failed + 1))
  t1=$(date +%s%N)
  echo "  ($(( (t1 - t0) / 1000000 )) ms: $*)"
}

if [ "$backend" = sqlite ]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/at-chaos-check.XXXXXX") || exit 1
  trap 'rm -rf "$dir"' EXIT
  trap 'exit 130' INT TERM
  run "$bin/worker_kills" "sqlite:$dir" --jobs 300 --workers 2 --kills 3 --seconds 60
  run "$bin/stale_completers" "sqlite:$dir" --rounds 6
else
  # Sourcing starts nothing yet; it fails (with the apt-get line) when
  # redis-server is missing, and installs the EXIT trap that stops by PID
  # every server redis_start starts.
  . "$here/../redis_server.sh"
  redis_start
  export AT_REDIS_WARN=0
  run "$bin/worker_kills" "redis://127.0.0.1:$REDIS_PORT" --jobs 600 --workers 2 --kills 4 --seconds 60
  run "$bin/stale_completers" "redis://127.0.0.1:$REDIS_PORT" --rounds 6
  redis_stop
  run "$bin/redis_restart" --fsync always --seconds 3 --restarts 2 --down 200
  run "$bin/redis_restart" --fsync everysec --seconds 2 --restarts 1 --down 200
  run "$bin/conn_faults" --seconds 3
fi

if [ "$failed" -ne 0 ]; then
  echo "chaos check ($backend): $failed of $runs runs FAILED"
  exit 1
fi
echo "chaos check ($backend): $runs of $runs runs passed"

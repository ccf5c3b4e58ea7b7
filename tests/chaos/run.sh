#!/bin/bash
# tests/chaos/run.sh - the chaos tests (worker_kills, stale_completers)
# against a temporary SQLite directory and against a redis-server started
# here on a free loopback port (tests/redis_server.sh); the server is stopped
# by its PID and the directory removed when the script exits.  Then
# redis_restart (appendfsync always, then everysec) and conn_faults, which
# start, kill, restart and stop their own servers (tests/chaos/redis_proc.c).
#
#   tests/chaos/run.sh [--full]
#
# Run from the build directory (the programs are ./tests/chaos/*, or the
# directory in $CHAOS_BIN).  `make chaos` runs the defaults, medium runs of
# a few minutes; `make soak` runs --full, the reliability issue's figures
# (20,000 jobs, 4 workers, 30 SIGKILLs, a 600 s deadline; 500
# stale-completer rounds; 60 s of load with 15 Redis restarts per fsync
# policy; 60 s of connection faults).  `make check` runs smaller ones
# (tests/chaos/check.sh).  Exits 0 only if every run passed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${CHAOS_BIN:-./tests/chaos}
wk_args=()
sc_args=()
rr_args=(--seconds 10 --restarts 4)
cf_args=(--seconds 10)
if [ "${1-}" = --full ]; then
  wk_args=(--jobs 20000 --workers 4 --kills 30 --seconds 600)
  sc_args=(--rounds 500)
  rr_args=(--seconds 60 --restarts 15)
  cf_args=(--seconds 60)
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--full]" >&2
  exit 2
fi
for p in worker_kills stale_completers redis_restart conn_faults; do
  if [ ! -x "$bin/$p" ]; then
    echo "FAIL: $bin/$p is not built (make chaos builds it)" >&2
    exit 1
  fi
done

# Sourcing starts nothing yet; it installs the EXIT trap that stops, by PID,
# every server redis_start starts.
. "$here/../redis_server.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/at-chaos.XXXXXX") || exit 1
# One trap for both: redis_server.sh's own EXIT trap would be replaced.
trap 'redis_cleanup; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM

failed=0
run() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" || failed=$((failed + 1))
  t1=$(date +%s%N)
  echo "  ($(( (t1 - t0) / 1000000 )) ms: $*)"
}

run "$bin/worker_kills" "sqlite:$dir" "${wk_args[@]}"
run "$bin/stale_completers" "sqlite:$dir" "${sc_args[@]}"

redis_start
# Redis warns once per process that appendonly is off; here that is intended.
export AT_REDIS_WARN=0
run "$bin/worker_kills" "redis://127.0.0.1:$REDIS_PORT" "${wk_args[@]}"
run "$bin/stale_completers" "redis://127.0.0.1:$REDIS_PORT" "${sc_args[@]}"
redis_stop

run "$bin/redis_restart" --fsync always "${rr_args[@]}"
run "$bin/redis_restart" --fsync everysec "${rr_args[@]}"
run "$bin/conn_faults" "${cf_args[@]}"

if [ "$failed" -ne 0 ]; then
  echo "chaos: $failed of 7 runs FAILED"
  exit 1
fi
echo "chaos: 7 of 7 runs passed"

#!/bin/bash
# bench/suite_redis.sh - suite `redis` of bench/run: the Redis backend against
# servers this script starts (no persistence, then AOF with appendfsync
# everysec), and redis-benchmark's EVALSHA of a trivial script against the
# same server at -P 1 and -P 16 for scale.
#
# Environment (set by bench/run): BUILD (the build directory holding
# bench/bench_redis), QUICK (--quick or empty), REPEAT (runs per figure; the
# median is printed).  Prints BENCH lines on stdout, progress on stderr.
# Figures of the AOF server carry the suffix _aof.  redis.cycle_ratio is the
# better of cycle_1p and cycle_2p over the -P 16 rate.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/redis_server.sh"
BUILD=${BUILD:?BUILD must name the build directory}
QUICK=${QUICK-}
REPEAT=${REPEAT:-3}
bench=$BUILD/bench/bench_redis
[ -x "$bench" ] || { echo "suite_redis: $bench is missing (make bench)" >&2; exit 1; }
export AT_REDIS_WARN=0

# rate PORT PIPELINE: requests/s of EVALSHA <trivial script> 0.
rate() {
  local port=$1 p=$2 n sha
  n=$([ -n "$QUICK" ] && echo 100000 || echo 500000)
  sha=$(redis-cli -h 127.0.0.1 -p "$port" SCRIPT LOAD "return 1")
  redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -P "$p" -q EVALSHA "$sha" 0 2>/dev/null |
    tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n1
}

run_server() {
  local suffix=$1 m
  shift
  redis_start "$@"
  local uri="redis://127.0.0.1:$REDIS_PORT"
  echo "-- redis-server $* on port $REDIS_PORT" >&2
  for m in enqueue batch cycle1 cycle2 latency lateness; do
    "$bench" "$uri" "$m" $QUICK --repeat "$REPEAT" --suffix "$suffix"
  done
  [ -z "$suffix" ] && "$bench" "$uri" memory --suffix "$suffix"
  local p1 p16
  p1=$(rate "$REDIS_PORT" 1)
  p16=$(rate "$REDIS_PORT" 16)
  echo "BENCH redis.raw_evalsha_p1$suffix ${p1%.*} ops/s"
  echo "BENCH redis.raw_evalsha_p16$suffix ${p16%.*} ops/s"
  redis_stop
}

out=$(mktemp)
trap 'rm -f "$out"; redis_cleanup' EXIT
run_server "" | tee "$out"
run_server "_aof" --appendonly yes --appendfsync everysec | tee -a "$out"
awk '$2 == "redis.cycle_1p" || $2 == "redis.cycle_2p" { if ($3 > c) c = $3 }
     $2 == "redis.raw_evalsha_p16" { p = $3 }
     END { if (p > 0) printf "BENCH redis.cycle_ratio %.3f x\n", c / p }' "$out"

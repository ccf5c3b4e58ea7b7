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
#
# redis.floor_cycle is the floor any design with a time/priority-ordered READY
# index and a lease index pays per job: the server's own execution time
# (INFO commandstats usec_per_call, no network, no Lua) of the six commands
# one job's cycle cannot do without - HSET of the record, ZADD into READY,
# ZPOPMIN out of it, ZADD into the lease index, ZREM out of it, HDEL of the
# record - each run by redis-benchmark at -P 16 over a million random
# members.  redis.floor_ratio is that rate over the -P 16 script rate: the
# best cycle_ratio such a design could reach on this machine.
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

# floor PORT: redis.floor_cycle_usec and redis.floor_cycle (see the header).
floor() {
  local port=$1 n rec cmd
  n=$([ -n "$QUICK" ] && echo 100000 || echo 300000)
  rec=$(head -c 88 /dev/zero | tr '\0' x)  # a plain job's record: 24 B head + 64 B payload
  redis-cli -h 127.0.0.1 -p "$port" CONFIG RESETSTAT >/dev/null
  for cmd in "HSET floor:j __rand_int__ $rec" "ZADD floor:r 1 __rand_int__" "ZPOPMIN floor:r" \
             "ZADD floor:l 1 __rand_int__" "ZREM floor:l __rand_int__" "HDEL floor:j __rand_int__"; do
    # shellcheck disable=SC2086  # the command's words are meant to split
    redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" -r 1000000 -P 16 -q $cmd >/dev/null 2>&1
  done
  redis-cli -h 127.0.0.1 -p "$port" INFO commandstats | tr -d '\r' | awk -F'[_:,=]' '
    /^cmdstat_(hset|zadd|zpopmin|zrem|hdel):/ {
      for (i = 1; i <= NF; i++) if ($i == "per") u[$2] = $(i + 2) }
    END { t = u["hset"] + 2 * u["zadd"] + u["zpopmin"] + u["zrem"] + u["hdel"]
          printf "BENCH redis.floor_cycle_usec %.2f us\n", t
          if (t > 0) printf "BENCH redis.floor_cycle %.0f jobs/s\n", 1e6 / t }'
  redis-cli -h 127.0.0.1 -p "$port" DEL floor:j floor:r floor:l >/dev/null
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
  [ -z "$suffix" ] && floor "$REDIS_PORT"
  redis_stop
}

out=$(mktemp)
trap 'rm -f "$out"; redis_cleanup' EXIT
run_server "" | tee "$out"
run_server "_aof" --appendonly yes --appendfsync everysec | tee -a "$out"
awk '$2 == "redis.cycle_1p" || $2 == "redis.cycle_2p" { if ($3 > c) c = $3 }
     $2 == "redis.raw_evalsha_p16" { p = $3 }
     $2 == "redis.floor_cycle" { f = $3 }
     END { if (p > 0) printf "BENCH redis.cycle_ratio %.3f x\n", c / p
           if (p > 0 && f > 0) printf "BENCH redis.floor_ratio %.3f x\n", f / p
           if (f > 0) printf "BENCH redis.cycle_over_floor %.3f x\n", c / f }' "$out"

#!/bin/bash
# tests/faults/clock_faketime_redis.sh - worker processes whose wall clock is
# an hour ahead or behind (libfaketime) against a redis-server this script
# starts on a free loopback port and stops afterwards by PID.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/clock_faketime.sh"
. "$here/../redis_server.sh"
redis_start
export AT_REDIS_WARN=0
./tests/faults/clock_procs "redis://127.0.0.1:$REDIS_PORT"

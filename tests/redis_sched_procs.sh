#!/bin/bash
# tests/redis_sched_procs.sh - scheduler processes sharing one Redis
# (tests/sched_procs.c), against a redis-server this script starts on a free
# loopback port and stops afterwards by PID.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/redis_server.sh"
redis_start
export AT_REDIS_WARN=0
./tests/sched_procs "redis://127.0.0.1:$REDIS_PORT"

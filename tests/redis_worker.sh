#!/bin/bash
# tests/redis_worker.sh - the worker runtime (tests/test_worker.c) and worker
# processes sharing one Redis (tests/worker_procs.c), against a redis-server
# this script starts on a free loopback port and stops afterwards by PID.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/redis_server.sh"
redis_start
export AT_REDIS_WARN=0
./tests/test_worker "redis://127.0.0.1:$REDIS_PORT" && ./tests/worker_procs "redis://127.0.0.1:$REDIS_PORT"

#!/bin/bash
# tests/faults/hostile_redis.sh - runs tests/faults/hostile_redis.c against a
# redis-server started here on a free loopback port (AT_TEST_REDIS_PORT),
# stopped by PID at exit.
[ -n "${BASH_VERSION-}" ] || exec bash "$0" "$@"
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../redis_server.sh"
redis_start
export AT_TEST_REDIS_PORT=$REDIS_PORT
./tests/faults/hostile_redis

#!/bin/bash
# tests/bad_input_redis.sh - the bad-input table (tests/bad_input.c) on the
# Redis backend, against a redis-server this script starts on a free
# loopback port and stops by PID (tests/redis_server.sh; a missing
# redis-server fails with how to install it).  Every row gets a fresh key
# prefix.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/redis_server.sh"
redis_start
export AT_REDIS_WARN=0 # the appendonly warning, once per forked row, is noise here
./tests/bad_input "redis://127.0.0.1:$REDIS_PORT"

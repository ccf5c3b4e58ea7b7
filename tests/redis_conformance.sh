#!/bin/bash
# tests/redis_conformance.sh - the whole conformance suite (tests/conformance*.c)
# against a redis-server this script starts on a free loopback port and stops
# afterwards.  The fixture gives every test a fresh key prefix.  Check's
# "Checks: N, Failures: F, Errors: E" line stays in the log for CI.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/redis_server.sh"
redis_start
export AT_REDIS_WARN=0 # one line per forked test about appendonly no is noise here
./tests/check_conformance "redis://127.0.0.1:$REDIS_PORT"

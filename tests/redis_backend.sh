#!/bin/bash
# tests/redis_backend.sh - the Redis backend's own tests (tests/redis_test.c)
# against servers this script starts: one with AOF (restarted mid-run by a
# test through `redis_server.sh restart`), one with requirepass and an ACL
# user.  All are stopped by PID at exit.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/redis_server.sh"
redis_start --appendonly yes --appendfsync everysec
export AT_TEST_REDIS_PORT=$REDIS_PORT
export AT_TEST_REDIS_RESTART="bash '$here/redis_server.sh' restart '$REDIS_DIR'"
redis_start --requirepass 's3cret pass'
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --no-auth-warning -a 's3cret pass' \
  ACL SETUSER worker on '>w0rker:pw' '~*' '&*' '+@all' >/dev/null || exit 1
export AT_TEST_REDIS_AUTH_PORT=$REDIS_PORT
./tests/redis_test

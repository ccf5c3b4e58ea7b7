#!/bin/bash
# tests/faults/redis_limits.sh - runs tests/faults/redis_limits.c against
# servers started here, on free loopback ports, stopped by PID at exit:
#   AT_TEST_CFG_PORT    plain server; the tests change its appendonly and
#                       maxmemory-policy with CONFIG SET and add ACL users
#   AT_TEST_NOCFG_PORT  a server whose CONFIG command is renamed away (not
#                       settable at runtime) and whose settings are risky:
#                       the store must open without warning about them
#   AT_TEST_FULL_PORT   plain server the full-server tests set maxmemory on
[ -n "${BASH_VERSION-}" ] || exec bash "$0" "$@"
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../redis_server.sh"
redis_start
export AT_TEST_CFG_PORT=$REDIS_PORT
redis_start --maxmemory-policy allkeys-lru --rename-command CONFIG ""
export AT_TEST_NOCFG_PORT=$REDIS_PORT
redis_start --maxmemory-policy noeviction
export AT_TEST_FULL_PORT=$REDIS_PORT
./tests/faults/redis_limits

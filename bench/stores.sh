# bench/stores.sh - sourced by the suites that run one benchmark program on
# every backend of the build (suite_cron.sh, suite_workflow.sh): sets
# `stores` to NAME=URI words for memory, SQLite (a file named $1 in a fresh
# directory under $TMPDIR, sync=normal) and Redis (a server started here on
# a free loopback port); the EXIT trap removes the directory and stops the
# server by PID.  Needs BUILD (the build directory).
dir=$(mktemp -d "${TMPDIR:-/tmp}/bench_stores.XXXXXX")
trap 'rm -rf "$dir"' EXIT
stores=(memory=memory:)
grep -q '^#define AT_HAVE_SQLITE 1' "$BUILD/config.h" && stores+=("sqlite=sqlite:$dir/$1?sync=normal")
if grep -q '^#define AT_HAVE_REDIS 1' "$BUILD/config.h"; then
  . "$(dirname "${BASH_SOURCE[0]}")/../tests/redis_server.sh"
  trap 'rm -rf "$dir"; redis_cleanup' EXIT
  redis_start
  export AT_REDIS_WARN=0
  stores+=("redis=redis://127.0.0.1:$REDIS_PORT")
fi

#!/bin/sh
# tests/fuzz/make-seeds.sh BUILDDIR - rewrite the redis_reply seeds
# (tests/fuzz/redis_reply/) from a throwaway redis-server on a free loopback
# port, in a temporary directory, stopped by its PID.  Not part of any test:
# run it after a script's reply shape changed, and commit the new seeds.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: make-seeds.sh BUILDDIR}
make -C "$build" tests/fuzz/record_redis_seeds >/dev/null
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no --daemonize yes \
  --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
i=0
until redis-cli -p "$port" ping >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 50 ] || { echo "redis-server did not start"; exit 1; }; sleep 0.1
done
rc=0
"$build/tests/fuzz/record_redis_seeds" "$port" "$src/tests/fuzz/redis_reply" || rc=$?
kill "$(cat "$dir/redis.pid")"
sleep 0.2
rm -rf "$dir"
exit $rc

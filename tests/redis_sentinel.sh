#!/bin/bash
# tests/redis_sentinel.sh - the Redis backend behind Sentinel, through a real
# failover: a master, two replicas (--replicaof) and three sentinels (quorum
# 2, down-after-milliseconds 1000, failover-timeout 3000), all on free
# loopback ports in a temporary directory and stopped by PID at exit.
# tests/redis_sentinel.c enqueues continuously through redis-sentinel://,
# kills the master with SIGKILL, checks that the store keeps working against
# the promoted replica and reports how many acknowledged enqueues were lost
# (asynchronous replication may lose some; with wait_replicas=1 none).
# The second replica is what a WAIT 1 can count on after the failover.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/redis_server.sh"
export AT_REDIS_WARN=0

redis_start
master_port=$REDIS_PORT master_pid=$REDIS_PID
redis_start --replicaof 127.0.0.1 "$master_port"
replica1=$REDIS_PORT
redis_start --replicaof 127.0.0.1 "$master_port"
replica2=$REDIS_PORT

# sentinel_start: one sentinel on a free port, its own config file (Sentinel
# rewrites it) in its own directory, so redis_cleanup stops it by PID too.
sentinels=
sentinel_start() {
  local try port dir i
  for try in $(seq 1 20); do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    dir=$REDIS_TMP/$port
    [ -e "$dir" ] && continue
    mkdir -p "$dir"
    cat > "$dir/sentinel.conf" <<CONF
port $port
bind 127.0.0.1
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
sentinel monitor m 127.0.0.1 $master_port 2
sentinel down-after-milliseconds m 1000
sentinel failover-timeout m 3000
sentinel parallel-syncs m 1
CONF
    redis-server "$dir/sentinel.conf" --sentinel >/dev/null 2>&1 || continue
    for i in $(seq 1 100); do
      if [ -s "$dir/redis.pid" ] && redis_port_open "$port"; then
        sentinels=${sentinels:+$sentinels,}127.0.0.1:$port
        return 0
      fi
      sleep 0.05
    done
    redis_kill "$dir"
  done
  echo "FAIL: could not start a sentinel (redis-server --sentinel; logs: $REDIS_TMP/*/redis.log)" >&2
  exit 1
}
sentinel_start
sentinel_start
sentinel_start

# Wait until the replicas are in sync and every sentinel knows both replicas
# and the two other sentinels (hello messages every 2 s): a failover needs
# all of that.
ready=0
for i in $(seq 1 200); do
  ok=1
  for p in $replica1 $replica2; do
    redis-cli -p "$p" info replication | grep -q 'master_link_status:up' || ok=0
  done
  for s in ${sentinels//,/ }; do
    info=$(redis-cli -p "${s##*:}" sentinel master m 2>/dev/null | tr '\n' ' ')
    echo "$info" | grep -q 'num-slaves 2 ' || ok=0
    echo "$info" | grep -q 'num-other-sentinels 2 ' || ok=0
  done
  [ $ok = 1 ] && { ready=1; break; }
  sleep 0.1
done
if [ $ready != 1 ]; then
  echo "FAIL: the sentinels did not see the replicas and each other within 20 s" >&2
  exit 1
fi

echo "servers up and the sentinels agreed after $SECONDS s" >&2
export AT_TEST_SENTINELS=$sentinels AT_TEST_MASTER_PID=$master_pid AT_TEST_MASTER_PORT=$master_port
./tests/redis_sentinel

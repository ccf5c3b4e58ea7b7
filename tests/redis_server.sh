# tests/redis_server.sh - throwaway redis-server processes for the Redis
# backend's tests and benchmarks.
#
# Sourced by bash scripts:
#   . tests/redis_server.sh
#   redis_start [redis-server options...]   # sets REDIS_PORT, REDIS_PID, REDIS_DIR
#   redis_stop [DIR]                        # by PID: TERM, then wait until gone
# Run as a command (from a test program, e.g. with system()):
#   bash tests/redis_server.sh restart DIR  # same port, options and data dir
#
# Each server listens on 127.0.0.1 on a free port, in a temporary directory
# of its own, without persistence unless the options ask for it.
# redis-server has no "--port 0": a random port is tried and, when the server
# cannot bind it (taken), another one.  Every server started here is stopped
# by the EXIT trap of the script that sourced this file, by the PID in its
# pid file (also after a restart by another process).  A missing redis-server
# is a failure that says how to install it, never a skip.

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "FAIL: redis-server and redis-cli are needed by the Redis backend's tests;" >&2
  echo "      install them with: apt-get install redis-server" >&2
  exit 1
fi

# redis_port_open PORT: the server answers (a password-protected one says so).
redis_port_open() {
  local out
  out=$(redis-cli -h 127.0.0.1 -p "$1" ping 2>&1) || return 1
  case "$out" in *PONG*|*NOAUTH*|*"Authentication required"*) return 0 ;; esac
  return 1
}

# redis_launch DIR PORT: start the server described by DIR/args; 0 when it
# answers, 1 when it could not start (the port was taken).
redis_launch() {
  local dir=$1 port=$2 i pid
  local -a args=()
  mapfile -t args < "$dir/args"
  rm -f "$dir/redis.pid"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
    --logfile "$dir/redis.log" "${args[@]}" --daemonize yes --pidfile "$dir/redis.pid" >/dev/null 2>&1 ||
    return 1
  for i in $(seq 1 100); do
    if [ -s "$dir/redis.pid" ] && redis_port_open "$port"; then
      echo "$port" > "$dir/port"
      return 0
    fi
    sleep 0.05
  done
  pid=$(cat "$dir/redis.pid" 2>/dev/null) && kill "$pid" 2>/dev/null
  return 1
}

# redis_kill DIR: stop the server of DIR by its PID and wait until it exits.
redis_kill() {
  local dir=$1 pid i
  pid=$(cat "$dir/redis.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null
  return 0
}

if [ "${1-}" = restart ] && [ -n "${2-}" ]; then
  redis_kill "$2"
  redis_launch "$2" "$(cat "$2/port")" || { echo "FAIL: redis-server did not come back" >&2; exit 1; }
  exit 0
fi

REDIS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/at-redis.XXXXXX")

redis_cleanup() {
  local d
  for d in "$REDIS_TMP"/*/; do
    [ -d "$d" ] && redis_kill "$d"
  done
  rm -rf "$REDIS_TMP"
}
trap redis_cleanup EXIT

# Start one server on a free port; extra arguments go to redis-server.
redis_start() {
  local try port dir
  for try in $(seq 1 20); do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    dir=$REDIS_TMP/$port
    [ -e "$dir" ] && continue
    mkdir -p "$dir"
    : > "$dir/args"
    [ $# -gt 0 ] && printf '%s\n' "$@" > "$dir/args"
    if redis_launch "$dir" "$port"; then
      REDIS_PORT=$port REDIS_DIR=$dir REDIS_PID=$(cat "$dir/redis.pid")
      return 0
    fi
  done
  echo "FAIL: could not start redis-server on a free port (logs: $REDIS_TMP/*/redis.log)" >&2
  exit 1
}

redis_stop() {
  redis_kill "${1:-$REDIS_DIR}"
}

#!/usr/bin/env bash
# .ci/setup.sh - install every Debian 12 package that building, testing and
# benchmarking libasynctask needs.  Run as root on a fresh machine; the
# README's two commands and .ci/run call it.  Already-installed packages
# make it a quick no-op.
set -euo pipefail

PACKAGES=(
  build-essential autoconf automake libtool pkg-config   # build
  check                                                   # unit tests (libcheck)
  libsqlite3-dev sqlite3                                  # SQLite backend
  libhiredis-dev redis-server redis-tools                 # Redis backend and its tests
  libjansson-dev prometheus                               # atctl JSON, promtool for atctl metrics
  valgrind mandoc                                         # memcheck runs, man page lint
  tzdata clang libclang-rt-14-dev                         # cron time zones, fuzz targets (libFuzzer)
  faketime                                                # wall-clock shift tests of worker processes
  libuv1-dev                                              # the event-loop example
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages like prometheus start a daemon from their install script; only
# promtool is wanted.  A policy-rc.d that refuses (101) keeps every service
# down during the install; it is removed again unless it was there before.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  own_policy=1
fi
trap '[ -n "$own_policy" ] && rm -f "$policy"' EXIT
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts a system redis-server on port 6379; the tests start their own
# on free ports and never use it, so leave it alone.

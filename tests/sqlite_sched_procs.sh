#!/bin/sh
# sqlite_sched_procs.sh - scheduler processes sharing one SQLite file
# (tests/sched_procs.c) in a temporary directory removed afterwards.
dir=$(mktemp -d "${TMPDIR:-/tmp}/at_sqlite_sp.XXXXXX") || exit 99
trap 'rm -rf "$dir"' EXIT INT TERM
./tests/sched_procs "sqlite:$dir"

#!/bin/sh
# tests/faults/clock_faketime_sqlite.sh - worker processes whose wall clock is
# an hour ahead or behind (libfaketime) on SQLite files in a temporary
# directory removed afterwards.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/clock_faketime.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/at_clock_sq.XXXXXX") || exit 99
trap 'rm -rf "$dir"' EXIT INT TERM
./tests/faults/clock_procs "sqlite:$dir"

#!/bin/sh
# sqlite_worker.sh - the worker runtime (tests/test_worker.c) and worker
# processes sharing a file (tests/worker_procs.c) on SQLite, in a temporary
# directory removed afterwards.
dir=$(mktemp -d "${TMPDIR:-/tmp}/at_sqlite_wk.XXXXXX") || exit 99
trap 'rm -rf "$dir"' EXIT INT TERM
./tests/test_worker "sqlite:$dir" && ./tests/worker_procs "sqlite:$dir"

#!/bin/sh
# sqlite_conformance.sh - the backend conformance suite against the SQLite
# backend: every test gets a fresh database file in a temporary directory
# (tests/conformance.h).  sync=normal keeps the 100,000-enqueue case quick;
# durability has its own tests (tests/sqlite_test.c).  Check's summary line
# ("Checks: N, Failures: F, Errors: E") lands in the log for CI.
dir=$(mktemp -d "${TMPDIR:-/tmp}/at_sqlite_ct.XXXXXX") || exit 99
trap 'rm -rf "$dir"' EXIT INT TERM
./tests/check_conformance "sqlite:$dir?sync=normal"

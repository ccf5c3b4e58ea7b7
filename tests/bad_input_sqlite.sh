#!/bin/sh
# tests/bad_input_sqlite.sh - the bad-input table (tests/bad_input.c) on the
# SQLite backend: every row gets a fresh database file in a temporary
# directory, removed afterwards.
dir=$(mktemp -d "${TMPDIR:-/tmp}/at_bad_input.XXXXXX") || exit 99
trap 'rm -rf "$dir"' EXIT INT TERM
./tests/bad_input "sqlite:$dir"

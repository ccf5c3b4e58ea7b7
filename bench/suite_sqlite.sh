#!/bin/bash
# bench/suite_sqlite.sh - suite `sqlite` of bench/run: the SQLite backend
# through the public API, next to a raw SQLite baseline (bench/bench_sqlite.c
# says what each figure measures), all with sync=normal.
#
# Environment (set by bench/run): BUILD (the build directory holding
# bench/bench_sqlite), QUICK (--quick or empty), REPEAT (runs per figure; the
# median is printed).  Prints BENCH lines on stdout, progress on stderr.
# Database files go to a fresh directory under $TMPDIR (a local disk: the
# figures are meaningless on tmpfs or a network file system).
set -euo pipefail
BUILD=${BUILD:?BUILD must name the build directory}
QUICK=${QUICK-}
REPEAT=${REPEAT:-3}
bench=$BUILD/bench/bench_sqlite
[ -x "$bench" ] || { echo "suite_sqlite: $bench is missing (make bench)" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/bench_sqlite.XXXXXX")
trap 'rm -rf "$dir"' EXIT
echo "  files in $dir ($(df -T "$dir" | awk 'NR==2 {print $2}'))" >&2
# shellcheck disable=SC2086 # QUICK is empty or one word
"$bench" $QUICK --repeat "$REPEAT" --sync normal --dir "$dir"

#!/bin/sh
# check-exports.sh - the shared library exports exactly tests/exports.txt.
#
# tests/exports.txt is the sorted list of every function declared with
# AT_EXTERN in include/asynctask.h and include/asynctask/store.h: the public
# ABI.  This test fails when the built library exports a function that is not
# on the list (a missing "static" or a visibility leak) or lacks one that is
# (a function declared but not built).  It also checks that the list still
# matches the headers, so the list cannot drift from the API.
#
# Usage: check-exports.sh [SRCDIR [LIB]]
#   SRCDIR  top source directory (default: $SRCDIR, $top_srcdir, $srcdir,
#           or the parent of this script's directory)
#   LIB     the built shared library (default: $LIB, else the first of
#           .libs/libasynctask.so, lib/.libs/libasynctask.so under the
#           current directory)
# Exit status: 0 pass, 1 fail, 77 skip (no shared library, or no nm).

set -u

here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${1:-${SRCDIR:-${top_srcdir:-${srcdir:-$here/..}}}}
LIB=${2:-${LIB:-}}
LC_ALL=C
export LC_ALL

if [ -z "$LIB" ]; then
    for cand in .libs/libasynctask.so lib/.libs/libasynctask.so; do
        if [ -f "$cand" ]; then LIB=$cand; break; fi
    done
fi

list=$SRCDIR/tests/exports.txt
if [ ! -f "$list" ]; then
    echo "check-exports: FAIL: $list not found (set SRCDIR)"
    exit 1
fi

tmp=${TMPDIR:-/tmp}/check-exports.$$
mkdir "$tmp" || exit 1
trap 'rm -rf "$tmp"' 0
trap 'exit 1' HUP INT TERM

status=0
sort -u "$list" > "$tmp/list"

# 1. The list matches the headers: every AT_EXTERN function name.
#    Preprocessor lines and comments are dropped first, then each
#    "AT_EXTERN <type> name(" gives a name.
cat "$SRCDIR/include/asynctask.h" "$SRCDIR/include/asynctask/store.h" |
    grep -v '^[[:space:]]*#' | tr '\n' ' ' |
    sed -e 's:/\*[^*]*\*\{1,\}\([^/*][^*]*\*\{1,\}\)*/::g' |
    grep -o 'AT_EXTERN [^(;]*(' |
    sed -e 's/($//' -e 's/.*[ *]//' | sort -u > "$tmp/headers"
if ! cmp -s "$tmp/headers" "$tmp/list"; then
    echo "check-exports: tests/exports.txt differs from the AT_EXTERN functions of the headers:"
    comm -23 "$tmp/headers" "$tmp/list" | sed 's/^/  declared but not listed: /'
    comm -13 "$tmp/headers" "$tmp/list" | sed 's/^/  listed but not declared: /'
    status=1
fi

# 2. The library exports exactly the list.
if [ -z "$LIB" ] || [ ! -f "$LIB" ]; then
    if [ $status -ne 0 ]; then
        echo "check-exports: FAIL (no shared library to compare; set LIB)"
        exit 1
    fi
    echo "check-exports: SKIP: no shared library found (set LIB=path/to/libasynctask.so)"
    exit 77
fi
if ! command -v nm >/dev/null 2>&1; then
    echo "check-exports: SKIP: nm not found"
    exit 77
fi

# Type T: functions defined in the text section.  _init/_fini come from
# the C runtime on some toolchains; symbol versions (name@@V) are cut off.
if ! nm -D --defined-only "$LIB" > "$tmp/nm"; then
    echo "check-exports: FAIL: nm -D --defined-only $LIB failed"
    exit 1
fi
awk '$2 == "T" { print $3 }' "$tmp/nm" | sed 's/@.*//' |
    grep -v -x -e _init -e _fini | sort -u > "$tmp/lib"

if ! cmp -s "$tmp/lib" "$tmp/list"; then
    echo "check-exports: $LIB differs from tests/exports.txt:"
    comm -13 "$tmp/lib" "$tmp/list" | sed 's/^/  listed but not exported: /'
    comm -23 "$tmp/lib" "$tmp/list" | sed 's/^/  exported but not listed: /'
    status=1
fi

n=$(wc -l < "$tmp/list" | tr -d ' ')
if [ $status -eq 0 ]; then
    echo "check-exports: PASS: $LIB exports the $n functions of tests/exports.txt"
else
    echo "check-exports: FAIL: exports differ from tests/exports.txt ($n listed)"
fi
exit $status

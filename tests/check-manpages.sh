#!/bin/sh
# check-manpages.sh - every exported function has a man page, and every man
# page documents exported functions only.
#
# The exported functions are read from the built library (nm -D, type T)
# when LIB names one, else from tests/exports.txt.  The rules:
#   - every exported function NAME has man/NAME.3;
#   - every man/NAME.3 other than libasynctask.3 is for an exported NAME;
#   - a link page holds a single ".so man3/FAMILY.3" line, FAMILY.3 exists
#     and lists NAME in its NAME section (.Nm);
#   - every .Nm of a family page is exported, has a prototype (.Fn/.Fo) in
#     its SYNOPSIS, and its own man/NAME.3;
#   - when mandoc is installed (and MANLINT is not "no"), family pages pass
#     "mandoc -T lint -W warning".
#
# Usage: check-manpages.sh [SRCDIR [LIB]]   (or SRCDIR=... LIB=... in the
# environment; SRCDIR defaults to $top_srcdir, $srcdir or this script's
# parent directory).  Exit status: 0 pass, 1 fail.

set -u

here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${1:-${SRCDIR:-${top_srcdir:-${srcdir:-$here/..}}}}
LIB=${2:-${LIB:-}}
MANLINT=${MANLINT:-auto}
LC_ALL=C
export LC_ALL

man=$SRCDIR/man
if [ ! -d "$man" ]; then
    echo "check-manpages: FAIL: $man not found (set SRCDIR)"
    exit 1
fi

tmp=${TMPDIR:-/tmp}/check-manpages.$$
mkdir "$tmp" || exit 1
trap 'rm -rf "$tmp"' 0
trap 'exit 1' HUP INT TERM

if [ -n "$LIB" ] && [ -f "$LIB" ] && command -v nm >/dev/null 2>&1; then
    nm -D --defined-only "$LIB" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' |
        grep -v -x -e _init -e _fini | sort -u > "$tmp/syms"
    from=$LIB
else
    sort -u "$SRCDIR/tests/exports.txt" > "$tmp/syms"
    from=tests/exports.txt
fi

status=0
bad() {
    echo "  $*"
    status=1
}
exported() {
    grep -q -x -e "$1" "$tmp/syms"
}

# Every exported function has a page.
while read -r sym; do
    [ -f "$man/$sym.3" ] || bad "no man page for exported function: man/$sym.3"
done < "$tmp/syms"

pages=0
families=0
for page in "$man"/*.3; do
    [ -f "$page" ] || continue
    pages=$((pages + 1))
    name=$(basename "$page" .3)
    [ "$name" = libasynctask ] && continue
    exported "$name" || bad "man/$name.3 documents a function that is not exported"

    first=$(sed -n 1p "$page")
    case $first in
    .so\ *)
        # A link page: one .so line to a family page that names it.
        [ "$(wc -l < "$page" | tr -d ' ')" -eq 1 ] ||
            bad "man/$name.3: a link page must hold only its .so line"
        target=${first#.so }
        fam=$(basename "$target" .3)
        case $target in
        man3/*.3) ;;
        *) bad "man/$name.3: .so target must be man3/FAMILY.3, not $target" ;;
        esac
        if [ ! -f "$man/$fam.3" ]; then
            bad "man/$name.3: .so target man/$fam.3 does not exist"
        elif ! grep -q -e "^\.Nm $name\( ,\)\{0,1\}\$" "$man/$fam.3"; then
            bad "man/$name.3: man/$fam.3 does not list $name in its NAME section"
        fi
        ;;
    *)
        # A family page: every name it documents is exported, has a
        # prototype and a page of its own.
        families=$((families + 1))
        sed -n 's/^\.Nm \([A-Za-z0-9_]*\).*/\1/p' "$page" | sort -u > "$tmp/nm"
        sed -n '/^\.Sh SYNOPSIS/,/^\.Sh DESCRIPTION/p' "$page" > "$tmp/synopsis"
        grep -q -x -e "$name" "$tmp/nm" ||
            bad "man/$name.3 does not list $name in its NAME section"
        while read -r fn; do
            exported "$fn" || bad "man/$name.3 documents $fn, which is not exported"
            grep -q -e "^\.F[no] $fn\( \|\$\)" "$tmp/synopsis" ||
                bad "man/$name.3 has no prototype (.Fn/.Fo) for $fn"
            [ -f "$man/$fn.3" ] || bad "man/$name.3 documents $fn, but man/$fn.3 is missing"
        done < "$tmp/nm"
        if [ "$MANLINT" != no ] && command -v mandoc >/dev/null 2>&1; then
            out=$(mandoc -T lint -W warning "$page" 2>&1)
            [ -z "$out" ] || bad "mandoc -T lint: $out"
        fi
        ;;
    esac
done

nsyms=$(wc -l < "$tmp/syms" | tr -d ' ')
if [ $status -eq 0 ]; then
    echo "check-manpages: PASS: $nsyms functions (from $from), $pages pages, $families family pages"
else
    echo "check-manpages: FAIL: man pages do not match the $nsyms exported functions (from $from)"
fi
exit $status

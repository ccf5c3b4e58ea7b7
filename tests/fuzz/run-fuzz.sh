#!/bin/sh
# tests/fuzz/run-fuzz.sh SRCDIR BUILDDIR - what `make fuzz` runs: build the
# libFuzzer targets with $FUZZ_CC and -fsanitize=fuzzer,address,undefined
# (the library compiled into each from source, so all of it is instrumented),
# run each for $FUZZ_SECONDS on its seeds, $FUZZ_PARALLEL at a time, and
# fail if any crashes, leaks, hangs or breaks one of its checks.  Prints per
# target the executions, their rate and the corpus size.  Work files (objects,
# grown corpora, crash inputs) go to BUILDDIR/fuzz-work; the seed directories
# in the source tree are only read.  A crash input belongs in the target's
# corpus directory, with the fix, as a regression test (`make check` replays
# it).
#
# $FUZZ_SEED (empty: libFuzzer picks one) fixes the random stream, and the
# grown corpora start empty: CI uses a fixed seed so that its bounded runs
# repeat the runs a developer checked with the same seed and a longer time
# (the first executions of a longer run are those of a shorter one, but for
# paths whose coverage depends on timing).
#
# From the Makefile: CPPFLAGS_ALL (defines and include paths), DEP_CFLAGS and
# DEP_LIBS (sqlite3, hiredis).
set -u
src=$1
build=$2
work=$build/fuzz-work
cc=${FUZZ_CC:-clang}
secs=${FUZZ_SECONDS:-20}
par=${FUZZ_PARALLEL:-1}
seed=${FUZZ_SEED:-}
cppflags=${CPPFLAGS_ALL:--I$build -I$src/include -I$src/lib -D_GNU_SOURCE -DHAVE_CONFIG_H}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-std=c11 -g -O1 -pthread $san -DAT_BUILDING_LIBRARY $cppflags ${DEP_CFLAGS:-}"

have() { grep -q "^#define $1 1" "$build/config.h"; }

mkdir -p "$work/obj" "$work/corpus" || exit 1
command -v "$cc" >/dev/null 2>&1 || { echo "make fuzz: $cc not found (set FUZZ_CC)"; exit 1; }

# The library as libat_core has it, but with the fake connection layer's
# copy of the Redis backend (fake_redis.c includes backends/redis.c).
lib=$(cd "$src" && ls lib/*.c) || exit 1
lib="$lib backends/memory.c backends/memory_sched.c"
targets="cron"
if have AT_HAVE_SQLITE; then
  lib="$lib backends/sqlite.c"
fi
if have AT_HAVE_REDIS; then
  lib="$lib tests/fuzz/fake_redis.c"
  have AT_HAVE_SQLITE && lib="$lib tests/fuzz/sqlite_uri.c"
  targets="$targets uri record redis_reply"
fi

source_of() { # target -> its source
  case $1 in
    cron) echo tests/fuzz_cron.c ;;
    *) echo "tests/fuzz/fuzz_$1.c" ;;
  esac
}
max_len_of() { # a bound on inputs that still says everything the target reads
  case $1 in
    cron) echo 256 ;;
    uri) echo 512 ;;
    record) echo 1024 ;;
    redis_reply) echo 4096 ;;
  esac
}

# Compile what changed (any header change recompiles all), two at a time.
newest_h=$(ls -t "$src"/include/*.h "$src"/include/asynctask/*.h "$src"/lib/*.h "$src"/backends/*.h \
  "$src"/tests/fuzz/*.h "$build/config.h" | head -n1)
objs=
todo=
for f in $lib $(for t in $targets; do source_of "$t"; done); do
  o=$work/obj/$(echo "$f" | tr / _ | sed 's/\.c$/.o/')
  case $f in tests/fuzz_cron.c|tests/fuzz/fuzz_*) ;; *) objs="$objs $o" ;; esac
  # fake_redis.c and sqlite_uri.c include a backend's source.
  dep=$src/$f
  case $f in
    tests/fuzz/fake_redis.c) dep="$dep $src/backends/redis.c" ;;
    tests/fuzz/sqlite_uri.c) dep="$dep $src/backends/sqlite.c" ;;
  esac
  stale=0
  [ -f "$o" ] || stale=1
  for d in $dep $newest_h; do [ "$stale" = 1 ] || [ "$d" -nt "$o" ] && stale=1; done
  [ "$stale" = 1 ] && todo="$todo $f"
done
echo "fuzz: compiling$(echo "$todo" | wc -w | sed 's/^/ /') files with $cc"
fail=0
if [ -n "$todo" ]; then
  # shellcheck disable=SC2086
  printf '%s\n' $todo | xargs -P 2 -I{} sh -c '
    f={}; o="$1/obj/$(echo "$f" | tr / _ | sed "s/\.c\$/.o/")"
    $2 $3 -fsanitize=fuzzer-no-link -c "$4/$f" -o "$o" || { rm -f "$o"; exit 1; }' sh "$work" "$cc" "$cflags" "$src" ||
    fail=1
fi
[ "$fail" = 0 ] || { echo "make fuzz: compilation failed"; exit 1; }
for t in $targets; do
  o=$work/obj/$(source_of "$t" | tr / _ | sed 's/\.c$/.o/')
  # shellcheck disable=SC2086
  $cc $san -fsanitize=fuzzer -pthread "$o" $objs ${DEP_LIBS:-} -lm -o "$work/fuzz_$t" ||
    { echo "make fuzz: linking fuzz_$t failed"; exit 1; }
done

# Run, $par at a time.  AT_REDIS_WARN=0: the fake server's settings are
# not worth a warning.
run_one() {
  t=$1
  if [ -n "$seed" ]; then
    rm -rf "$work/corpus/$t"
    seedopt=-seed=$seed
  else
    seedopt=
  fi
  mkdir -p "$work/corpus/$t"
  # shellcheck disable=SC2086  # seedopt is empty or one word
  AT_REDIS_WARN=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$work/fuzz_$t" $seedopt -max_total_time="$secs" -max_len="$(max_len_of "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/crash-$t-" "$work/corpus/$t" "$src/tests/fuzz/$t" \
    >"$work/$t.log" 2>&1
  echo $? >"$work/$t.rc"
}
set -- $targets
while [ $# -gt 0 ]; do
  i=0
  while [ $# -gt 0 ] && [ "$i" -lt "$par" ]; do
    run_one "$1" &
    shift
    i=$((i + 1))
  done
  wait
done

for t in $targets; do
  rc=$(cat "$work/$t.rc")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log" | tail -n1)
  corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$work/$t.log" | tail -n1 | sed 's/corp: //')
  if [ "$rc" = 0 ]; then
    printf 'fuzz %-12s ok: %s execs (%s/s), corpus %s inputs/bytes\n' "$t" "${execs:-?}" "${rate:-?}" "${corp:-?}"
  else
    fail=1
    printf 'fuzz %-12s FAILED (exit %s) after %s execs; log %s\n' "$t" "$rc" "${execs:-?}" "$work/$t.log"
    grep -E 'ERROR|SUMMARY|fuzz_[a-z_]*: |returned|Test unit written' "$work/$t.log" | head -n 20
    for a in "$work"/crash-"$t"-*; do
      [ -f "$a" ] && echo "  input: $a (add it to tests/fuzz/$t/ with the fix)"
    done
  fi
done
exit $fail

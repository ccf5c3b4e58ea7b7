#!/bin/bash
# bindings/python/run_tests.sh - the Python binding's unittest suite, run by
# `make check` (TESTS in bindings/python/python.am).
#
#   run_tests.sh [LIBRARY]
#
# LIBRARY is the libasynctask.so to test: the first argument, else $LIB (set
# by the Makefile's AM_TESTS_ENVIRONMENT to the build tree's .libs copy).
# The suite runs against memory:, SQLite files and a redis-server started
# here on a free loopback port (stopped by PID at exit; see
# tests/redis_server.sh), and against the build tree's tools/atctl.  Ends
# with a Check-style line "Checks: N, Failures: F, Errors: E" for CI.
set -u
srcdir=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
lib=${1:-${LIB:-}}
if [ -z "$lib" ] || [ ! -f "$lib" ]; then
  echo "FAIL: give the path of libasynctask.so as the first argument or in LIB (got '${lib}')" >&2
  exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "FAIL: python3 is needed by the Python binding's tests" >&2
  exit 1
fi

# A sanitizer build of the library (the CI's ASan+UBSan pass) needs its
# runtime loaded before anything else in the interpreter; Python's own
# allocations are not ours to leak-check.
asan_rt=$(ldd "$lib" 2>/dev/null | awk '/libasan\.so/ {print $3; exit}')
if [ -n "$asan_rt" ]; then
  export LD_PRELOAD="$asan_rt${LD_PRELOAD:+:$LD_PRELOAD}"
  # Last, so it wins over a detect_leaks=1 the caller (CI) set.
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi

# Redis is tested when this build has the backend (its config.h says so);
# then a missing redis-server is a failure, as for the C tests.
builddir=$(cd "$(dirname "$lib")/.." && pwd)
if grep -q '^#define AT_HAVE_REDIS 1' "$builddir/config.h" 2>/dev/null; then
  . "$srcdir/tests/redis_server.sh"
  redis_start
  export ASYNCTASK_TEST_REDIS="redis://127.0.0.1:$REDIS_PORT"
fi

export ASYNCTASK_LIB=$lib
export AT_REDIS_WARN=0
export PYTHONPATH="$srcdir/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree (distcheck's is read-only)

python3 - "$srcdir/bindings/python/tests" <<'PY'
import sys
import unittest

start = sys.argv[1]
sys.path.insert(0, start)
suite = unittest.defaultTestLoader.discover(start, top_level_dir=start)
result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
checks = result.testsRun - len(result.skipped)
print(f"Skipped: {len(result.skipped)}")
print(f"Checks: {checks}, Failures: {len(result.failures)}, Errors: {len(result.errors)}")
sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
PY
